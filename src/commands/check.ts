import { once } from 'node:events';
import type { KubeObject } from '../admission/types.js';
import { MemoryClusterView } from '../cluster/memory.js';
import { loadConfig } from '../config/load.js';
import type { Engine } from '../engine/evaluate.js';
import { Registry } from '../engine/registry.js';
import { compileScope } from '../config/scope.js';
import { KindScopes } from '../kinds.js';
import { manifestSources, sourceInputs, type Inputs, type Source } from '../manifests.js';
import { policies } from '../policies/index.js';
import { formats, judge, type Judged, type Totals } from '../report/index.js';
import { reportStream } from '../report/stream.js';
import { UNKNOWN_NAMESPACE } from '../report/judge.js';
import type { Connection } from '../cluster/connect.js';
import { connect, listKinds, viewKinds } from '../cluster/list.js';
import { buildProfile } from '../mesh/build.js';
import type { MeshProfile } from '../mesh/profile.js';
import type { MeshSettings } from '../config/types.js';
import {
  helpText,
  istioNamespaceFlag,
  istioNamespaceOf,
  oneOf,
  parseFlags,
  str,
  UsageError,
  type Flag,
} from './flags.js';
import { mayHoldClusterObject } from './check-view.js';

/** The flags of the commands that report findings (check, audit). */
export const reportFlags: Flag[] = [
  { name: 'config', type: 'string', arg: 'FILE', help: 'configuration file (else the embedded defaults)' },
  { name: 'no-diff', type: 'boolean', help: 'leave the diffs of patched objects out of the reports' },
];
const outputFlag = (allowed: readonly string[]): Flag => ({
  name: 'output',
  type: 'string',
  arg: allowed.join('|'),
  help: 'report format',
  default: 'text',
});

const flags: Flag[] = [
  outputFlag(formats),
  ...reportFlags,
  {
    name: 'namespace',
    type: 'string',
    arg: 'NS',
    help: 'namespace of objects that name none (as kubectl apply -n); without it theirs is unknown',
    env: 'MESHGUARD_CHECK_NAMESPACE',
  },
  {
    name: 'kubeconfig',
    type: 'string',
    arg: 'FILE',
    help: "read the namespaces' labels, Services and ServiceEntries the inputs lack from this cluster",
  },
  { name: 'verbose', type: 'boolean', help: 'list the files skipped as not Kubernetes objects' },
  istioNamespaceFlag,
  {
    name: 'services-complete',
    type: 'boolean',
    help: 'the inputs hold every Service of the namespaces they touch (else probe ports are never excluded)',
  },
];

export const checkHelp = helpText(
  'meshguard check PATH|- ... [flags]',
  'Runs the policies on manifests (files, directories, - for stdin) as the webhook would on admission.\n' +
    'Namespaces, Services and ServiceEntries among the inputs (and the cluster, with --kubeconfig) are the\n' +
    'cluster view; only with --services-complete (or --kubeconfig) are they every Service of their namespaces.\n' +
    "Istio's own objects among the inputs (or in the cluster) give the mesh profile. Files that hold no\n" +
    'Kubernetes objects (values, Chart.yaml, CI workflows, Helm templates) are skipped; render charts\n' +
    'first: helm template ... | meshguard check -\n' +
    "PolicyReports are audit's (meshguard audit --output policyreport): they describe a cluster's objects.\n" +
    'Exit codes: 0 nothing denied, 1 something would be denied, 2 usage, input, cluster or configuration\n' +
    'errors (after every readable object is reported and every error listed), or no objects at all.',
  flags,
);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export async function check(argv: string[], env: NodeJS.ProcessEnv, stdin: () => Promise<string>): Promise<number> {
  const { values, positionals, help } = parseFlags(argv, flags, env, true);
  if (help) {
    process.stdout.write(checkHelp);
    return 0;
  }
  // Said, not just refused: audit takes it, and nothing else tells the user the two differ.
  if (str(values, 'output') === 'policyreport')
    throw new UsageError(
      "--output policyreport is meshguard audit's: PolicyReports describe objects in a cluster; for files use json, sarif or junit",
    );
  const output = oneOf(values, 'output', formats);
  const namespace = str(values, 'namespace');
  if (namespace !== undefined && !DNS_LABEL.test(namespace))
    throw new UsageError(`--namespace: expected a namespace name, got ${JSON.stringify(namespace)}`);
  if (positionals.length === 0) throw new UsageError('check needs at least one PATH (or - for stdin)');
  const { config } = await loadConfig(str(values, 'config'));
  const sources = await manifestSources(positionals, stdin);
  const kubeconfig = str(values, 'kubeconfig');
  // Explicit, so never undefined: a kubeconfig that cannot be loaded is an error.
  const connection = kubeconfig === undefined ? undefined : await connect(kubeconfig, env);
  // The inputs are read twice, so that memory does not grow with the tree: first only what every
  // object is judged against, then file by file to judge and report.
  const { scopes, view, mesh } = await judgedAgainst(sources, {
    services: connection !== undefined || values['services-complete'] === true,
    connection,
    namespace,
    declared: config.mesh,
    paths: positionals,
    istioNamespace: istioNamespaceOf(values),
  });
  const engine: Engine = {
    registry: new Registry(policies),
    scope: compileScope(config),
    cluster: view,
    mesh,
  };
  const report = reportStream(output);
  const problems: Pick<Inputs, 'skipped' | 'errors'> = { skipped: [], errors: [] };
  for (const source of sources) {
    const inputs = await sourceInputs(source);
    problems.skipped.push(...inputs.skipped);
    problems.errors.push(...inputs.errors);
    const items: Judged[] = inputs.manifests.map((m) => ({ ...m, namespace: scopes.namespaceOf(m.object, namespace) }));
    let text = '';
    for (const r of judge(items, engine, { diff: values['no-diff'] !== true })) text += report.add(r);
    await write(text);
  }
  await write(await report.end());
  return finish(report.totals, problems, values.verbose === true);
}

/**
 * What every object is judged against, from the documents that may hold it (check-view.ts): the
 * kind scopes of CRDs, the cluster view (the cluster's, then the inputs'), the mesh profile. The
 * objects read for it are dropped once it is built.
 */
async function judgedAgainst(
  sources: readonly Source[],
  o: {
    /** The view holds every Service of its namespaces (a live cluster, or --services-complete). */
    services: boolean;
    connection: Connection | undefined;
    namespace: string | undefined;
    declared: MeshSettings;
    paths: readonly string[];
    istioNamespace: string;
  },
): Promise<{ scopes: KindScopes; view: MemoryClusterView; mesh: MeshProfile }> {
  const objects: KubeObject[] = [];
  for (const source of sources)
    for (const m of (await sourceInputs(source, mayHoldClusterObject)).manifests) objects.push(m.object);
  const scopes = new KindScopes().addObjects(objects);
  const view = new MemoryClusterView(true, o.services);
  // The cluster first: the inputs are what will be applied over it.
  if (o.connection) for (const c of await listKinds(o.connection, viewKinds)) view.addObject(c);
  for (const object of objects) view.addObject(inNamespace(object, scopes.namespaceOf(object, o.namespace)));
  // The mesh profile: Istio's own objects among the inputs (helm template, istioctl manifest
  // generate), else the cluster's, under the configuration's mesh: section.
  const { mesh } = await buildProfile(o.declared, {
    manifests: { objects, paths: o.paths },
    ...(o.connection && { cluster: { connection: o.connection, istioNamespace: o.istioNamespace } }),
  });
  return { scopes, view, mesh: mesh.current };
}

/** Writes to stdout, waiting while a slow reader (a pipe) catches up: the report never piles up in memory. */
function write(text: string): Promise<void> {
  if (text === '' || process.stdout.write(text)) return Promise.resolve();
  return once(process.stdout, 'drain').then(() => undefined);
}

/** The object as stored in its namespace (the cluster view indexes Services by it). */
function inNamespace(object: KubeObject, ns: string | null): KubeObject {
  const target = ns ?? UNKNOWN_NAMESPACE;
  if (ns === '' || object.metadata?.namespace === target) return object;
  return { ...object, metadata: { ...object.metadata, namespace: target } };
}

/** Skipped files and input errors on stderr; the exit code: 2 on any input error or no objects. */
function finish(totals: Totals, inputs: Pick<Inputs, 'skipped' | 'errors'>, verbose: boolean): number {
  const err = (line: string) => process.stderr.write(`meshguard: ${line}\n`);
  if (inputs.skipped.length > 0) {
    if (verbose) for (const s of inputs.skipped) err(`skipped ${s.source}: ${s.reason}`);
    err(
      `${inputs.skipped.length} file${inputs.skipped.length === 1 ? '' : 's'} skipped: not Kubernetes objects${verbose ? '' : ' (--verbose lists them)'}`,
    );
  }
  for (const e of inputs.errors) err(e.message);
  if (inputs.errors.length > 0) {
    err(`${inputs.errors.length} input error${inputs.errors.length === 1 ? '' : 's'}: exit 2`);
    return 2;
  }
  if (totals.objects === 0) {
    err('no Kubernetes objects in the input');
    return 2;
  }
  return totals.denied > 0 ? 1 : 0;
}
