import type { KubeConfig } from '@kubernetes/client-node';
import { discoverMesh } from '../mesh/discover.js';
import { str, type Flag, type Parsed } from './flags.js';
import type { DiscoveredMesh } from '../mesh/profile.js';

// Istio's objects listed once (audit, `meshguard mesh`): the server watches the same ones
// (watch.ts). What cannot be read is said, never guessed: the configured profile then holds.

/** The flag of every command that reads Istio's objects in a cluster. */
export const istioNamespaceFlag: Flag = {
  name: 'istio-namespace',
  type: 'string',
  arg: 'NS',
  help: 'where istiod and its ConfigMaps live, read for the mesh profile',
  default: 'istio-system',
};

export const istioNamespaceOf = (values: Parsed['values']): string => str(values, 'istio-namespace') ?? 'istio-system';

const sources = (istioNamespace: string) => [
  { kind: 'MutatingWebhookConfiguration', apiVersions: ['admissionregistration.k8s.io/v1'] },
  { kind: 'ConfigMap', apiVersions: ['v1'], namespace: istioNamespace },
  { kind: 'Deployment', apiVersions: ['apps/v1'], namespace: istioNamespace },
  { kind: 'Node', apiVersions: ['v1'] },
];

export async function discoverFromCluster(kc: KubeConfig, istioNamespace: string): Promise<DiscoveredMesh> {
  const { KubernetesObjectApi } = await import('@kubernetes/client-node');
  const { listAll } = await import('../cluster/reflector.js');
  const client = KubernetesObjectApi.makeApiClient(kc);
  const objects: unknown[] = [];
  const problems: string[] = [];
  for (const spec of sources(istioNamespace)) {
    try {
      const listed = await listAll(client, spec);
      for (const item of listed?.items ?? []) objects.push({ ...item, kind: spec.kind });
    } catch (err) {
      const where = spec.namespace ? ` in ${spec.namespace}` : '';
      problems.push(`${spec.kind}s${where} could not be read (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const found = discoverMesh(objects);
  return { ...found, problems: [...problems, ...found.problems] };
}
