import type { KubeObject } from '../admission/types.js';
import { kubeConfigFor } from '../cluster/connect.js';
import { UsageError } from './flags.js';

const istio = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'];

export interface KindSpec {
  kind: string;
  apiVersions: string[];
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

/** A cluster that cannot be read: the CLI says so in one line and exits 2. */
export class ClusterError extends Error {}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; body?: unknown; cause?: { code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  const message = typeof e.message === 'string' ? e.message.split('\n')[0] : String(err);
  return code && !message?.includes(code) ? `${code}: ${message}` : (message ?? 'unknown error');
}

/**
 * Every object of these kinds in the cluster, with apiVersion and kind set (lists leave them
 * out). Credentials as `serve` finds them; none, or a cluster that does not answer, is an error.
 */
export async function listCluster(
  kubeconfig: string | undefined,
  env: NodeJS.ProcessEnv,
  kinds: readonly KindSpec[],
): Promise<KubeObject[]> {
  let connection;
  try {
    connection = await kubeConfigFor(kubeconfig, env);
  } catch (err) {
    throw new ClusterError(`kubeconfig ${kubeconfig ?? ''}: ${reason(err)}`);
  }
  if (!connection)
    throw new UsageError('no cluster credentials: in-cluster, --kubeconfig, KUBECONFIG or ~/.kube/config');
  const { KubernetesObjectApi } = await import('@kubernetes/client-node');
  const { listAll } = await import('../cluster/reflector.js');
  const client = KubernetesObjectApi.makeApiClient(connection.kc);
  const server = connection.kc.getCurrentCluster()?.server ?? connection.from;
  const out: KubeObject[] = [];
  for (const spec of kinds) {
    let listed;
    try {
      listed = await listAll(client, spec);
    } catch (err) {
      throw new ClusterError(`cluster ${server}: listing ${spec.kind}: ${reason(err)}`);
    }
    for (const item of listed?.items ?? [])
      out.push({ ...item, apiVersion: listed?.apiVersion, kind: spec.kind } as KubeObject);
  }
  return out;
}
