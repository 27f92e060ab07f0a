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
/** An Istio object as discovery reads it, and its JSON text (a watch event that changes nothing kept changes nothing). */
interface Kept {
  slim: unknown;
  text: string;
}

export function watchIstioObjects(
  kc: KubeConfig,
  logger: Logger,
  istioNamespace: string,
  onChange: (objects: unknown[]) => void,
): { stop(): void } {
  const kept = new Map<string, Kept>();
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      onChange([...kept.values()].map((v) => v.slim));
    }, 50);
    timer.unref?.();
  };
  const sink = (source: IstioSource): Sink<[string, Kept]> => {
    const key = (o: unknown) => `${source.kind}/${idOf(o).namespace}/${idOf(o).name}`;
    // A list's items carry no kind (the list does): the source's kind is theirs.
    const keep = (o: unknown): [string, Kept] | undefined => {
      if (!isOf(source, o)) return undefined;
      const slim = trimIstioObject(source, o);
      return [key(o), { slim, text: JSON.stringify(slim) }];
    };
    return {
      keep,
      reset: (list) => {
        for (const k of [...kept.keys()]) if (k.startsWith(`${source.kind}/`)) kept.delete(k);
        for (const [k, v] of list) kept.set(k, v);
        changed();
      },
      upsert: (o) => {
        const found = keep(o);
        if (!found) {
          if (kept.delete(key(o))) changed();
        } else if (kept.get(found[0])?.text !== found[1].text) {
          kept.set(found[0], found[1]);
          changed();
        }
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
