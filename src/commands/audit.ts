import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeObject } from '../admission/types.js';
import { kubeConfigFor } from '../cluster/connect.js';
import { MemoryClusterView } from '../cluster/memory.js';
import { loadConfig } from '../config/load.js';
import type { Engine } from '../engine/evaluate.js';
import { Registry } from '../engine/registry.js';
import { compileScope } from '../config/scope.js';
import type { Manifest } from '../manifests.js';
import { policies } from '../policies/index.js';
import { judge, report, reportFlags } from './check.js';
import { helpText, oneOf, parseFlags, str, UsageError, type Flag } from './flags.js';
import { resolveProfile } from '../mesh/profile.js';
import { discoverFromCluster } from '../cluster/istio-objects.js';

const flags: Flag[] = [
  { name: 'kubeconfig', type: 'string', arg: 'FILE', help: 'kubeconfig (else in-cluster, KUBECONFIG, ~/.kube/config)' },
  {
    name: 'istio-namespace',
    type: 'string',
    arg: 'NS',
    help: 'where istiod and its ConfigMaps live, read for the mesh profile',
    default: 'istio-system',
  },
  ...reportFlags,
];

export const auditHelp = helpText(
  'meshguard audit [flags]',
  'Runs the policies on what a cluster already holds: DestinationRules, Services, workloads and\n' +
    'Pods not owned by a controller (the controller is audited instead).\n' +
    'Exit codes: 0 nothing denied, 1 something would be denied, 2 usage or configuration errors.',
  flags,
);

// What the policies judge, and what the cluster view needs. CronJob is batch/v1beta1 before 1.21.
const kinds: { kind: string; apiVersions: string[]; optional?: boolean }[] = [
  { kind: 'Namespace', apiVersions: ['v1'] },
  { kind: 'Service', apiVersions: ['v1'] },
  {
    kind: 'ServiceEntry',
    apiVersions: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
    optional: true,
  },
  {
    kind: 'DestinationRule',
    apiVersions: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
    optional: true,
  },
  { kind: 'Deployment', apiVersions: ['apps/v1'] },
  { kind: 'StatefulSet', apiVersions: ['apps/v1'] },
  { kind: 'DaemonSet', apiVersions: ['apps/v1'] },
  { kind: 'ReplicaSet', apiVersions: ['apps/v1'] },
  { kind: 'Job', apiVersions: ['batch/v1'] },
  { kind: 'CronJob', apiVersions: ['batch/v1', 'batch/v1beta1'], optional: true },
  { kind: 'Pod', apiVersions: ['v1'] },
];

const controlled = (o: KubernetesObject) => o.metadata?.ownerReferences?.some((r) => r.controller === true) ?? false;

export async function audit(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(argv, flags, env);
  if (help) {
    process.stdout.write(auditHelp);
    return 0;
  }
  const output = oneOf(values, 'output', ['text', 'json'] as const);
  const { config } = await loadConfig(str(values, 'config'));
  const connection = await kubeConfigFor(str(values, 'kubeconfig'), env);
  if (!connection)
    throw new UsageError('audit needs cluster credentials: in-cluster, --kubeconfig, KUBECONFIG or ~/.kube/config');
  const { KubernetesObjectApi } = await import('@kubernetes/client-node');
  const { listAll } = await import('../cluster/reflector.js');
  const client = KubernetesObjectApi.makeApiClient(connection.kc);

  const manifests: Manifest[] = [];
  const view = new MemoryClusterView();
  for (const spec of kinds) {
    const listed = await listAll(client, spec);
    for (const item of listed?.items ?? []) {
      // Lists leave out each item's apiVersion and kind; the engine selects policies by them.
      const object = { ...item, apiVersion: listed?.apiVersion, kind: spec.kind } as KubeObject;
      view.addObject(object);
      if (!controlled(item)) manifests.push({ source: 'cluster', document: 0, object });
    }
  }
  const engine: Engine = {
    registry: new Registry(policies),
    scope: compileScope(config),
    cluster: view,
    // The Istio in the cluster, under what the configuration declares.
    mesh: resolveProfile(
      config.mesh,
      await discoverFromCluster(connection.kc, str(values, 'istio-namespace') ?? 'istio-system'),
    ),
  };
  return report(judge(manifests, engine), output);
}
