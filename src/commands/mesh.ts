import { connect } from '../cluster/list.js';
import { loadConfig } from '../config/load.js';
import { explainAll } from '../engine/explain.js';
import { buildProfile } from '../mesh/build.js';
import { summarize, type ProfileSummary } from '../mesh/describe.js';
import type { DiscoveredMesh, MeshProfile } from '../mesh/profile.js';
import { policies } from '../policies/index.js';
import { readManifests } from '../manifests.js';
import { helpText, istioNamespaceFlag, istioNamespaceOf, oneOf, parseFlags, str, type Flag } from './flags.js';

const flags: Flag[] = [
  { name: 'config', type: 'string', arg: 'FILE', help: 'configuration whose mesh: section declares the profile' },
  {
    name: 'kubeconfig',
    type: 'string',
    arg: 'FILE',
    help: 'discover from this cluster (else in-cluster, KUBECONFIG, ~/.kube/config)',
  },
  istioNamespaceFlag,
  { name: 'output', type: 'string', arg: 'text|json', help: 'output format', default: 'text' },
];

export const meshHelp = helpText(
  'meshguard mesh [PATH|- ...] [flags]',
  'Shows the mesh profile in force — which Istio the guardrails follow — and, per guardrail, whether\n' +
    "its trap exists on that mesh. With PATHs, Istio's objects among those manifests are read (as\n" +
    'check reads them); without, the cluster of the current credentials, if any; then the configuration.',
  flags,
);

/** The profile `check` (with paths) or `serve`/`audit` (a cluster) would use. */
export async function mesh(argv: string[], env: NodeJS.ProcessEnv, stdin: () => Promise<string>): Promise<number> {
  const { values, positionals, help } = parseFlags(argv, flags, env, true);
  if (help) {
    process.stdout.write(meshHelp);
    return 0;
  }
  const output = oneOf(values, 'output', ['text', 'json'] as const);
  const { config } = await loadConfig(str(values, 'config'));
  const connection = positionals.length > 0 ? undefined : await connect(str(values, 'kubeconfig'), env);
  const built = await buildProfile(config.mesh, {
    ...(positionals.length > 0 && {
      manifests: {
        objects: (await readManifests(positionals, stdin)).manifests.map((m) => m.object),
        paths: positionals,
      },
    }),
    ...(connection && { cluster: { connection, istioNamespace: istioNamespaceOf(values) } }),
  });
  // A cluster that answered nothing: no profile "discovered from" it (check exits 2 the same way).
  if (built.unread) throw built.unread;
  const { from } = built;
  const profile = built.mesh.current;
  const found = built.mesh.discovered;
  const order = ordering(found);
  process.stdout.write(
    output === 'json'
      ? JSON.stringify({ ...profileJson(profile, from), webhookOrdering: order }, null, 2) + '\n'
      : profileText(profile, from) + order.map((l) => `${l}\n`).join(''),
  );
  return 0;
}

/**
 * Whether meshguard's mutations reach Istio's injector: the API server calls mutating
 * configurations in name order, so meshguard's must sort before every injector's.
 */
function ordering(found: DiscoveredMesh): string[] {
  const ours = found.meshguardConfigurations ?? [];
  const injectors = [...new Set(found.webhooks.map((w) => w.configuration))];
  return ours.map((name) => {
    const before = injectors.filter((i) => i < name);
    return before.length === 0
      ? `webhook ordering: ${name} runs before ${injectors.join(', ') || "Istio's injector"}: ok`
      : `webhook ordering: ${name} runs AFTER ${before.join(', ')}: Istio injects before meshguard's changes; rename it to sort first (the chart names it 0-meshguard)`;
  });
}

/** The profile as `meshguard mesh --output json` shows it (meshguard doctor too). */
export function profileJson(profile: MeshProfile, from: string) {
  return { discoveredFrom: from, profile: summarize(profile), guardrails: guardrailNotes(profile) };
}

/** Per guardrail, what it does on this mesh (each policy's own explanation). */
function guardrailNotes(profile: MeshProfile): Record<string, string> {
  return Object.fromEntries(Object.entries(explainAll(policies, profile)).map(([id, e]) => [id, e.why]));
}

/** How the revision's classic proxies drain on termination, with where that came from. */
function drainOf(r: ProfileSummary['revisions'][number], o: (key: string) => string): string {
  if (r.terminationDrainDuration !== undefined)
    return `terminationDrainDuration ${r.terminationDrainDuration}${o('terminationDrainDuration')}`;
  if (r.exitOnZeroActiveConnections !== undefined)
    return `EXIT_ON_ZERO_ACTIVE_CONNECTIONS ${r.exitOnZeroActiveConnections}${o('exitOnZeroActiveConnections')}`;
  return "drain Istio's default 5s (default)";
}

/** The profile as `meshguard mesh` prints it (meshguard doctor too): each setting with where it came from. */
export function profileText(profile: MeshProfile, from: string): string {
  const s = summarize(profile);
  const o = (key: string) => (s.origins[key] ? ` (${s.origins[key]})` : '');
  const lines = [
    `mesh profile, discovered from ${from}`,
    `  Istio ${s.istioVersion}${o('istioVersion')}, root namespace ${s.rootNamespace}${o('rootNamespace')}, DNS capture ${s.dnsCapture ? 'on' : 'off'}${o('dnsCapture')}`,
    `  kubelets all >= 1.33 (native sidecars under auto): ${s.kubeletsSupportNative}${o('kubeletVersion')}`,
    `  revisions${o('webhooks')}:`,
    ...s.revisions.flatMap((r) => [
      `    ${r.name}: Istio ${r.version}, nativeSidecars ${r.nativeSidecars}, rewriteProbes ${r.rewriteProbes}, holdApplicationUntilProxyStarts ${r.holdApplicationUntilProxyStarts}, injection policy ${r.policy}`,
      `      cni ${r.cni}${o('cni')}, ${drainOf(r, o)}, proxyPreStop ${r.proxyPreStop}${o('proxyPreStop')}`,
    ]),
    '  injector webhooks, in the order the API server calls them:',
    ...s.webhooks.map((w) => `    ${w}`),
    ...(s.problems.length > 0 ? ['  not read or not understood:', ...s.problems.map((p) => `    ${p}`)] : []),
    'guardrails on this mesh:',
    ...Object.entries(guardrailNotes(profile)).map(([id, note]) => `  ${id}: ${note}`),
  ];
  return lines.join('\n') + '\n';
}
