import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Connection } from '../cluster/connect.js';
import { ClusterError, listKind } from '../cluster/list.js';
import { Reflector, type Sink } from '../cluster/reflector.js';
import { idOf } from '../cluster/watch.js';
import { isOf, istioSources, trimIstioObject, type IstioSource } from './sources.js';

// Istio's objects in a cluster, as sources.ts lists them: listed once (audit, check, meshguard
// mesh) or watched (serve), kept slim either way. What cannot be read is said, never guessed: the
// configured profile then holds.

const namespaceOf = (source: IstioSource, istioNamespace: string) =>
  source.inIstioNamespace ? istioNamespace : undefined;

export interface IstioObjects {
  /** Slim copies (trimIstioObject) of what could be read. */
  objects: unknown[];
  /** What could not be read, one line each. */
  problems: string[];
  /** Set when nothing at all could be read (a cluster that does not answer): the first failure. */
  unread?: ClusterError;
}

export async function listIstioObjects(connection: Connection, istioNamespace: string): Promise<IstioObjects> {
  const objects: unknown[] = [];
  const problems: string[] = [];
  const failures: ClusterError[] = [];
  for (const source of istioSources) {
    const namespace = namespaceOf(source, istioNamespace);
    try {
      const listed = await listKind(connection, { kind: source.kind, apiVersions: [source.apiVersion], namespace });
      for (const o of listed) if (isOf(source, o)) objects.push(trimIstioObject(source, o));
    } catch (err) {
      if (!(err instanceof ClusterError)) throw err;
      failures.push(err);
      const why = err.cause instanceof Error ? err.cause.message : err.message;
      problems.push(`${source.kind}s${namespace ? ` in ${namespace}` : ''} could not be read (${why.split('\n')[0]})`);
    }
  }
  return { objects, problems, ...(failures.length === istioSources.length && { unread: failures[0] }) };
}

/**
 * Istio's objects watched, each kept slim by kind/namespace/name, handed over whole after every
 * burst of changes (a list of many Nodes is one). A change that leaves the slim copy as it was (a
 * Node's heartbeat) hands over nothing. Not waited for by readiness: until they are read, or when
 * they can't be, the configured profile holds.
 */
export function watchIstioObjects(
  kc: KubeConfig,
  logger: Logger,
  istioNamespace: string,
  onChange: (objects: unknown[]) => void,
): { stop(): void } {
  const kept = new Map<string, { slim: unknown; text: string }>();
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      onChange([...kept.values()].map((v) => v.slim));
    }, 50);
    timer.unref?.();
  };
  const sink = (source: IstioSource): Sink => {
    const key = (o: unknown) => `${source.kind}/${idOf(o).namespace}/${idOf(o).name}`;
    /** Whether what is kept changed. */
    const put = (o: unknown) => {
      if (!isOf(source, o)) return kept.delete(key(o));
      const slim = trimIstioObject(source, o);
      const text = JSON.stringify(slim);
      if (kept.get(key(o))?.text === text) return false;
      kept.set(key(o), { slim, text });
      return true;
    };
    return {
      reset: (objects) => {
        for (const k of [...kept.keys()]) if (k.startsWith(`${source.kind}/`)) kept.delete(k);
        for (const o of objects) put(o);
        changed();
      },
      upsert: (o) => {
        if (put(o)) changed();
      },
      remove: (o) => {
        if (kept.delete(key(o))) changed();
      },
    };
  };
  const reflectors = istioSources.map((source) => {
    const namespace = namespaceOf(source, istioNamespace);
    const spec = {
      name: source.resource,
      kind: source.kind,
      apiVersions: [source.apiVersion],
      ...(namespace && { namespace }),
      path: (v: string) =>
        `${v === 'v1' ? '/api/v1' : `/apis/${v}`}${namespace ? `/namespaces/${namespace}` : ''}/${source.resource}`,
    };
    return new Reflector(kc, spec, sink(source), logger).start();
  });
  return {
    stop() {
      for (const r of reflectors) r.stop();
      clearTimeout(timer);
    },
  };
}
