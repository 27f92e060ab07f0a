import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { KubernetesObjectApi, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** Where a reflector's objects go: slim records, never the objects themselves. */
export interface Sink<R = unknown> {
  /**
   * What is kept of a listed object, made as each page of a list arrives, so that a list of 100 000
   * Services never holds 100 000 whole objects; undefined keeps nothing.
   */
  keep(object: unknown): R | undefined;
  /** Everything there is now (what `keep` made of a whole list): replaces what the sink held. */
  reset(kept: readonly R[]): void;
  upsert(object: unknown): void;
  remove(object: unknown): void;
}

export interface ReflectorSpec {
  /** For logs: "services", "serviceentries", … */
  name: string;
  kind: string;
  /** Tried in order; an optional resource (a CRD) may serve none of them. */
  apiVersions: readonly string[];
  /** The collection's URL path for an apiVersion, for the watch. */
  path(apiVersion: string): string;
  namespace?: string;
  fieldSelector?: string;
  /** A CRD that may not be installed: its absence is an empty list, re-checked every `retryMissingMs`. */
  optional?: boolean;
}

const PAGE = 500;

/**
 * What `keep` makes of every object of a kind, page by page, from the first of its apiVersions the
 * server serves; undefined when an optional resource (a CRD) is served in none of them. Each page's
 * objects are garbage once kept: only what `keep` returns lives to the end of the list.
 */
export async function listAll<R>(
  client: KubernetesObjectApi,
  spec: Pick<ReflectorSpec, 'kind' | 'apiVersions' | 'namespace' | 'fieldSelector' | 'optional'>,
  keep: (object: KubernetesObject, apiVersion: string) => R | undefined,
): Promise<{ items: R[]; resourceVersion: string; apiVersion: string } | undefined> {
  for (const apiVersion of spec.apiVersions) {
    try {
      const items: R[] = [];
      let token: string | undefined;
      let resourceVersion = '';
      do {
        const page = await client.list(
          apiVersion,
          spec.kind,
          spec.namespace,
          undefined,
          undefined,
          undefined,
          spec.fieldSelector,
          undefined,
          PAGE,
          token,
        );
        for (const item of page.items) {
          const kept = keep(item, apiVersion);
          if (kept !== undefined) items.push(kept);
        }
        token = page.metadata?._continue || undefined;
        resourceVersion = page.metadata?.resourceVersion ?? '';
      } while (token);
      return { items, resourceVersion, apiVersion };
    } catch (err) {
      // 404, or the discovery of a group or version that does not exist: try the next version.
      const missing =
        statusOf(err) === 404 ||
        /Unrecognized API version|Unrecognized resource|404/i.test(String((err as Error).message));
      if (!(spec.optional && missing)) throw err;
    }
  }
  return undefined;
}
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
const statusOf = (err: unknown): number | undefined => {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
};

/**
 * List, then watch from the list's resourceVersion, feeding a sink; re-watch when the server ends
 * a watch, re-list when the version expired (410), back off (1 s doubling to 30 s) on errors.
 * Like client-go's reflector, without its cache of whole objects.
 */
export class Reflector<R = unknown> {
  synced = false;
  /** The optional resource is not installed. */
  missing = false;
  private readonly abort = new AbortController();
  private watchAbort: AbortController | undefined;
  private readonly client: KubernetesObjectApi;
  private readonly watch: Watch;

  constructor(
    kc: KubeConfig,
    private readonly spec: ReflectorSpec,
    private readonly sink: Sink<R>,
    private readonly logger: Logger,
    private readonly opts: { retryMissingMs?: number; maxBackoffMs?: number } = {},
  ) {
    this.client = KubernetesObjectApi.makeApiClient(kc);
    this.watch = new Watch(kc);
  }

  start(): this {
    void this.run();
    return this;
  }

  stop(): void {
    this.abort.abort();
    this.watchAbort?.abort();
  }

  private async run(): Promise<void> {
    let backoff = 1000;
    let failing = false;
    const { signal } = this.abort;
    while (!signal.aborted) {
      try {
        const listed = await this.list();
        if (signal.aborted) return;
        if (!listed) {
          if (!this.missing)
            this.logger.info(
              { resource: this.spec.name },
              `${this.spec.name}: not installed in the cluster; that part of the view stays empty until it is`,
            );
          this.missing = true;
          this.sink.reset([]);
          this.synced = true;
          await sleep(this.opts.retryMissingMs ?? 10_000, signal);
          continue;
        }
        if (this.missing) this.logger.info({ resource: this.spec.name }, `${this.spec.name}: now installed, watching`);
        if (failing) this.logger.info({ resource: this.spec.name }, `${this.spec.name}: watching again`);
        this.missing = false;
        failing = false;
        backoff = 1000;
        this.sink.reset(listed.items);
        this.synced = true;
        let version = listed.resourceVersion;
        // Watch until the version expires; a watch the server closes resumes where it was.
        for (;;) {
          const ended = await this.watchFrom(listed.apiVersion, version);
          if (signal.aborted || ended.expired) break;
          if (ended.error) throw ended.error;
          version = ended.resourceVersion;
        }
      } catch (err) {
        if (signal.aborted) return;
        if (!failing)
          this.logger.warn(
            { resource: this.spec.name, err: (err as Error).message },
            `${this.spec.name}: list/watch failed, retrying with backoff`,
          );
        failing = true;
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 30_000);
      }
    }
  }

  private list() {
    return listAll(this.client, this.spec, (o) => this.sink.keep(o));
  }

  private watchFrom(
    apiVersion: string,
    resourceVersion: string,
  ): Promise<{ expired: boolean; resourceVersion: string; error?: Error }> {
    return new Promise((resolve) => {
      let version = resourceVersion;
      let expired = false;
      const query = {
        resourceVersion,
        allowWatchBookmarks: true,
        fieldSelector: this.spec.fieldSelector,
        timeoutSeconds: 300,
      };
      void this.watch
        .watch(
          this.spec.path(apiVersion),
          query,
          (type: string, obj: unknown) => {
            const rv = (obj as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion;
            if (type === 'ADDED' || type === 'MODIFIED') this.sink.upsert(obj);
            else if (type === 'DELETED') this.sink.remove(obj);
            else if (type === 'ERROR') {
              // 410 Gone: the version is too old to resume; list again.
              expired = (obj as { code?: number })?.code === 410;
              this.watchAbort?.abort();
              return;
            }
            if (rv) version = rv;
          },
          (err: unknown) =>
            resolve({ expired, resourceVersion: version, ...(err && !expired ? { error: err as Error } : {}) }),
        )
        .then((controller) => {
          this.watchAbort = controller;
          if (this.abort.signal.aborted) controller.abort();
        });
    });
  }
}
