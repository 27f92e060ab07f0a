import type { KubeObject } from '../admission/types.js';
import { kubeConfigFor, type Connection } from './connect.js';

// One-off listings of a cluster (audit, check --kubeconfig, meshguard mesh); the server watches instead.

const istio = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'];

export interface KindSpec {
  kind: string;
  apiVersions: readonly string[];
  /** Listed in this namespace only; else in every namespace (or cluster-scoped). */
  namespace?: string;
  optional?: boolean;
}

/** What the cluster view is made of: namespace labels, Services, ServiceEntries, PeerAuthentications, DestinationRules. */
export const viewKinds: KindSpec[] = [
  { kind: 'Namespace', apiVersions: ['v1'] },
  { kind: 'Service', apiVersions: ['v1'] },
  { kind: 'ServiceEntry', apiVersions: istio, optional: true },
  { kind: 'PeerAuthentication', apiVersions: ['security.istio.io/v1', 'security.istio.io/v1beta1'], optional: true },
  { kind: 'DestinationRule', apiVersions: istio, optional: true },
];

/** What the policies judge, beside the view's kinds. CronJob is batch/v1beta1 before 1.21. */
export const judgedKinds: KindSpec[] = [
  { kind: 'Deployment', apiVersions: ['apps/v1'] },
  { kind: 'StatefulSet', apiVersions: ['apps/v1'] },
  { kind: 'DaemonSet', apiVersions: ['apps/v1'] },
  { kind: 'ReplicaSet', apiVersions: ['apps/v1'] },
  { kind: 'Job', apiVersions: ['batch/v1'] },
  { kind: 'CronJob', apiVersions: ['batch/v1', 'batch/v1beta1'], optional: true },
  { kind: 'Pod', apiVersions: ['v1'] },
];

/** A cluster that cannot be read: the CLI says so in one line and exits 2. `cause` is the client's error. */
export class ClusterError extends Error {}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; body?: unknown; cause?: { code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  const message = typeof e.message === 'string' ? e.message.split('\n')[0] : String(err);
  return code && !message?.includes(code) ? `${code}: ${message}` : (message ?? 'unknown error');
}

/**
 * The credentials of a one-off run, loaded once and handed to every listing of the run; undefined
 * when there are none. A kubeconfig that cannot be loaded is a ClusterError.
 */
export async function connect(kubeconfig: string | undefined, env: NodeJS.ProcessEnv): Promise<Connection | undefined> {
  try {
    return await kubeConfigFor(kubeconfig, env);
  } catch (err) {
    throw new ClusterError(`kubeconfig ${kubeconfig ?? ''}: ${reason(err)}`, { cause: err });
  }
}

/**
 * Every object of a kind, with apiVersion and kind set (lists leave them out); none when an
 * optional kind is not served. A cluster that does not answer is a ClusterError naming it and the kind.
 */
export async function listKind(connection: Connection, spec: KindSpec): Promise<KubeObject[]> {
  const { KubernetesObjectApi } = await import('@kubernetes/client-node');
  const { listAll } = await import('./reflector.js');
  try {
    const listed = await listAll(
      KubernetesObjectApi.makeApiClient(connection.kc),
      spec,
      (item, apiVersion) => ({ ...item, apiVersion, kind: spec.kind }) as KubeObject,
    );
    return listed?.items ?? [];
  } catch (err) {
    const server = connection.kc.getCurrentCluster()?.server ?? connection.from;
    throw new ClusterError(`cluster ${server}: listing ${spec.kind}: ${reason(err)}`, { cause: err });
  }
}

/** Every object of these kinds, in order; the first that cannot be listed is a ClusterError. */
export async function listKinds(connection: Connection, kinds: readonly KindSpec[]): Promise<KubeObject[]> {
  const out: KubeObject[] = [];
  // One by one: spreading a large cluster's Pods into push() would overflow the call stack.
  for (const spec of kinds) for (const o of await listKind(connection, spec)) out.push(o);
  return out;
}
