import { MemoryClusterView } from '../cluster/memory.js';
import { loadConfig } from '../config/load.js';
import type { Engine } from '../engine/evaluate.js';
import { Registry } from '../engine/registry.js';
import { compileScope } from '../config/scope.js';
import { buildProfile } from '../mesh/build.js';
import { KindScopes } from '../kinds.js';
import { policies } from '../policies/index.js';
import { exitCode, formats, judge, render, type Judged } from '../report/index.js';
import { reportApis } from '../report/policyreport.js';
import { reportFlags } from './check.js';
import { connect, judgedKinds, listKinds, viewKinds } from '../cluster/list.js';
import {
  helpText,
  istioNamespaceFlag,
  istioNamespaceOf,
  kubeconfigFlag,
  oneOf,
  parseFlags,
  str,
  UsageError,
  type Flag,
} from './flags.js';

const outputs = [...formats, 'policyreport'] as const;
const flags: Flag[] = [
  kubeconfigFlag,
  istioNamespaceFlag,
  { name: 'output', type: 'string', arg: outputs.join('|'), help: 'report format', default: 'text' },
  {
    name: 'report-api',
    type: 'string',
    arg: 'GROUP/VERSION',
    help: `API of --output policyreport: ${reportApis.join(' or ')}`,
    default: reportApis[0],
  },
  ...reportFlags,
];

export const auditHelp = helpText(
  'meshguard audit [flags]',
  'Runs the policies on what a cluster already holds: Namespaces, DestinationRules, PeerAuthentications,\n' +
    'Services, ServiceEntries, workloads and Pods not owned by a controller (the controller is audited\n' +
    'instead); injected Pods are counted per namespace. --output policyreport writes\n' +
    'OpenReports Reports (one per namespace) and a ClusterReport for cluster-scoped objects, or with\n' +
    '--report-api wgpolicyk8s.io/v1alpha2 PolicyReports and a ClusterPolicyReport, for kubectl apply.\n' +
    'Exit codes: 0 nothing denied, 1 something would be denied, 2 usage, cluster or configuration errors.',
  flags,
);

const controlled = (o: { metadata?: { ownerReferences?: { controller?: boolean }[] } }) =>
  o.metadata?.ownerReferences?.some((r) => r.controller === true) ?? false;

export async function audit(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(argv, flags, env);
  if (help) {
    process.stdout.write(auditHelp);
    return 0;
  }
  const output = oneOf(values, 'output', outputs);
  const reportApi = oneOf(values, 'report-api', reportApis);
  const { config } = await loadConfig(str(values, 'config'));
  const connection = await connect(str(values, 'kubeconfig'), env);
  if (!connection)
    throw new UsageError('no cluster credentials: in-cluster, --kubeconfig, KUBECONFIG or ~/.kube/config');
  const objects = await listKinds(connection, [...viewKinds, ...judgedKinds]);
  const scopes = new KindScopes();
  const items: Judged[] = objects
    .filter((o) => !controlled(o))
    .map((object) => ({
      source: 'cluster',
      document: 0,
      line: 0,
      object,
      namespace: scopes.namespaceOf(object, undefined),
    }));
  // The Istio in the cluster, under what the configuration declares.
  const { mesh } = await buildProfile(config.mesh, {
    cluster: { connection, istioNamespace: istioNamespaceOf(values) },
  });
  const engine: Engine = {
    registry: new Registry(policies),
    scope: compileScope(config),
    // A live cluster's listing holds every Service and Pod (namespace-injection counts the injected ones).
    cluster: MemoryClusterView.fromObjects(objects, true, true),
    mesh: mesh.current,
  };
  const reports = judge(items, engine, { diff: values['no-diff'] !== true });
  process.stdout.write(await render(reports, output, { reportApi }));
  return exitCode(reports);
}
