// Conformance of meshguard's Istio model with what Istio itself recorded: its injector's golden
// files (inject/INDEX.yaml) and its analyzers' expected messages (analyzers/EXPECTED.yaml), in a
// folder laid out like shared/istio/ (see its README). Reads files, judges, returns rows; the
// command line (run.ts) prints them. No Istio code: only Istio's recorded inputs and outputs.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import type { KubeObject } from '../../src/admission/types.js';
import { MemoryClusterView } from '../../src/cluster/memory.js';
import { loadConfig } from '../../src/config/load.js';
import { compileScope } from '../../src/config/scope.js';
import type { MeshSettings } from '../../src/config/types.js';
import { Registry } from '../../src/engine/registry.js';
import { podFromTemplate } from '../../src/engine/workloads.js';
import { isRecord } from '../../src/guards.js';
import { parseManifests } from '../../src/manifests.js';
import { discoverMesh } from '../../src/mesh/discover.js';
import { sidecarOf, type Sidecar } from '../../src/mesh/injection.js';
import { annotation, containers, probes, type Probe, type ProbeHandler } from '../../src/mesh/pod.js';
import { probeRewriting } from '../../src/mesh/probe-rewrite.js';
import { nothingDiscovered, resolveProfile } from '../../src/mesh/profile.js';
import { ownHold, parseProxyConfig, PROXY_CONFIG } from '../../src/mesh/proxy-config.js';
import { parseVersion } from '../../src/mesh/releases.js';
import { policies } from '../../src/policies/index.js';
import { judge } from '../../src/report/index.js';
import { injectionLabels } from './injection-labels.js';
import { cniDifference, componentValue } from './cni.js';
import { invalidAnnotations, refusalDifferences } from './annotations.js';

/** The folder is missing or not laid out like shared/istio/: one line, exit 2. */
export class LayoutError extends Error {}

export type Status = 'agree' | 'disagree' | 'known' | 'not compared';

export interface Row {
  kind: 'inject' | 'analyze';
  /** Stable id, the key of the known-differences file. */
  id: string;
  /** meshguard's prediction next to Istio's record, one entry per pod template or message. */
  detail: string;
  /** Each way meshguard and Istio disagree, as one line; empty when they agree. */
  differences: string[];
  /** false when Istio recorded nothing to compare with (the injector rejects the pod). */
  compared: boolean;
  /** Why a case is not compared, or what the comparison left out. */
  note?: string;
}

type Obj = Record<string, unknown>;
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const at = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (isRecord(v) ? v[k] : undefined), o);

async function readText(dir: string, file: string): Promise<string> {
  try {
    return await readFile(join(dir, file), 'utf8');
  } catch (err) {
    throw new LayoutError(`${join(dir, file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function readYaml(dir: string, file: string): Promise<Obj> {
  const text = await readText(dir, file);
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    throw new LayoutError(`${join(dir, file)}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isRecord(doc)) throw new LayoutError(`${join(dir, file)}: not a YAML mapping`);
  return doc;
}

async function readDocs(dir: string, file: string): Promise<unknown[]> {
  const text = await readText(dir, file);
  try {
    return yaml.loadAll(text);
  } catch (err) {
    throw new LayoutError(`${join(dir, file)}: ${(err as Error).message.split('\n')[0]}`);
  }
}

function casesOf(index: Obj, file: string): Obj[] {
  const cases = index.cases;
  if (!Array.isArray(cases) || !cases.every(isRecord)) throw new LayoutError(`${file}: no list of cases`);
  return cases;
}

// ── Injector cases ──────────────────────────────────────────────────────────────────────────────

/** Where each workload keeps its pod template (Istio's kube-inject and webhook tests: the same kinds). */
const templatePaths: Record<string, readonly string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  DeploymentConfig: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

interface Template {
  label: string;
  /** The workload, for its namespace. */
  owner: Obj;
  pod: KubeObject;
}

/** The pod templates of a file's documents, in order; `kind: List` items expanded. */
function templates(docs: readonly unknown[]): Template[] {
  const out: Template[] = [];
  const visit = (doc: unknown) => {
    if (!isRecord(doc)) return;
    const kind = str(doc.kind) ?? '';
    if (kind === 'List') return list(doc.items).forEach(visit);
    const path = templatePaths[kind];
    if (!path) return;
    const pod = path.length === 0 ? (doc as KubeObject) : podFromTemplate(doc as KubeObject, path, kind);
    if (pod) out.push({ label: `${kind} ${str(at(doc, 'metadata', 'name')) ?? '?'}`, owner: doc, pod });
  };
  docs.forEach(visit);
  return out;
}

const PROXY = 'istio-proxy';

const named = (containers: unknown, name: string) => list(containers).find((c) => isRecord(c) && c.name === name);

interface AppProbe {
  container: string;
  kind: Probe['kind'];
  handler: ProbeHandler;
}

/**
 * The app containers' probes that reach the app over the network (every handler but exec): the
 * ones Istio's agent can take over. Read with the policies' pod reader; which of them Istio does
 * rewrite is left to its golden output (observe) and to meshguard's model (predict).
 */
function appProbes(pod: KubeObject): AppProbe[] {
  return containers(pod).flatMap(({ container }) =>
    container.name === PROXY
      ? []
      : probes(container)
          .filter((p) => p.handler !== 'exec')
          .map((p) => ({ container: container.name, kind: p.kind, handler: p.handler })),
  );
}

type YesNo = 'yes' | 'no';
const yn = (b: boolean): YesNo => (b ? 'yes' : 'no');
type Share = YesNo | 'partial' | '-';
/** `moved` of `all` probes sent to the agent: '-' when there are none. */
const share = (moved: number, all: number): Share =>
  all === 0 ? '-' : moved === all ? 'yes' : moved === 0 ? 'no' : 'partial';

/** What Istio did to one pod template, read from its golden output. */
interface Observed {
  proxy: 'none' | 'classic' | 'native';
  /** Probes now sent to the agent (`/app-health/...` on the status port); '-' when there were none to rewrite. */
  rewrite: Share;
  /** istio-proxy carries the postStart `pilot-agent wait` hook that holds the app containers. */
  hold: YesNo | '-';
}

const STATUS = 'sidecar.istio.io/status';

function observe(input: KubeObject, { pod: golden, owner }: Template): Observed {
  // kube-inject records every injection in sidecar.istio.io/status; a pod it left alone has none
  // (its input may still carry its own istio-proxy container, e.g. a gateway's). For a CronJob,
  // kube-inject writes the pod's annotations on spec.jobTemplate.metadata (inject.go IntoObject).
  const injected =
    typeof golden.metadata?.annotations?.[STATUS] === 'string' ||
    typeof at(owner, 'spec', 'jobTemplate', 'metadata', 'annotations', STATUS) === 'string';
  const init = named(at(golden, 'spec', 'initContainers'), PROXY);
  const main = named(at(golden, 'spec', 'containers'), PROXY);
  const native = isRecord(init) && init.restartPolicy === 'Always';
  const proxy = !injected ? 'none' : native ? 'native' : isRecord(main) ? 'classic' : 'none';
  if (proxy === 'none') return { proxy, rewrite: '-', hold: '-' };
  const probes = appProbes(input);
  const moved = probes.filter(({ container, kind }) => {
    const path = str(at(named(at(golden, 'spec', 'containers'), container), kind, 'httpGet', 'path'));
    return path?.startsWith('/app-health/') === true;
  }).length;
  const rewrite = share(moved, probes.length);
  const waits = (c: unknown) => {
    const command = list(at(c, 'lifecycle', 'postStart', 'exec', 'command')).join(' ');
    return command.includes('pilot-agent') && command.includes('wait');
  };
  return { proxy, rewrite, hold: yn(waits(main) || waits(init)) };
}

/** Whether the pod's own ProxyConfig holds the app, read as the hold policy reads it. */
function ownHoldOf(pod: KubeObject): boolean {
  const text = annotation(pod, PROXY_CONFIG);
  const parsed = text === undefined ? undefined : parseProxyConfig(text);
  return parsed?.ok === true && ownHold(parsed.value) === true;
}

interface Predicted {
  proxy: Sidecar['proxy'];
  rewrite: Share;
  hold: YesNo | '-';
}

/**
 * meshguard's model for one pod, from the code the policies run: sidecarOf decides none / unknown /
 * classic / native; probeRewriting (probe-port-exclusion's) which probes the revision rewrites,
 * the pod's rewriteAppHTTPProbers annotation included; the app is held when the revision holds or
 * the pod's own ProxyConfig does (ownHold, the hold policy's reading).
 */
function predict(sidecar: Sidecar, pod: KubeObject): Predicted {
  if (sidecar.proxy !== 'classic' && sidecar.proxy !== 'native')
    return { proxy: sidecar.proxy, rewrite: '-', hold: '-' };
  const { revision } = sidecar;
  const { rewrites } = probeRewriting(pod, revision);
  const probes = appProbes(pod);
  const rewrite = share(probes.filter((p) => rewrites(p.handler)).length, probes.length);
  // A native sidecar is never held: it starts, and is ready, before the app (injection-template.yaml).
  const hold = yn(sidecar.proxy === 'classic' && (revision.holdApplicationUntilProxyStarts || ownHoldOf(pod)));
  return { proxy: sidecar.proxy, rewrite, hold };
}

/** Sets a dotted path in a nested mapping; `append` adds to a list there. */
function setPath(root: Obj, path: string, value: unknown, append = false): void {
  const keys = path.split('.');
  let node = root;
  for (const k of keys.slice(0, -1)) {
    if (!isRecord(node[k])) node[k] = {};
    node = node[k] as Obj;
  }
  const last = keys[keys.length - 1] ?? '';
  if (append) node[last] = [...list(node[last]), value];
  else node[last] = value;
}

function merge(into: Obj, from: unknown): Obj {
  if (!isRecord(from)) return into;
  for (const [k, v] of Object.entries(from)) {
    if (isRecord(v) && isRecord(into[k])) merge(into[k] as Obj, v);
    else into[k] = structuredClone(v);
  }
  return into;
}

/** A `--set` value as the operator reads the ones that matter here (booleans, numbers). */
const scalar = (v: string): unknown =>
  v === 'true' ? true : v === 'false' ? false : /^-?\d+$/.test(v) ? Number(v) : v;

/**
 * The Istio objects a cluster installed with this case's settings would hold — the injector's
 * ConfigMap (values, config), the mesh ConfigMap, istiod's ENABLE_NATIVE_SIDECARS, the Nodes —
 * so meshguard discovers its profile from them exactly as it does in a cluster.
 */
async function installation(dir: string, index: Obj, c: Obj): Promise<{ objects: unknown[]; declared: MeshSettings }> {
  const defaults = at(index, 'defaults');
  const values: Obj = {};
  const mesh: Obj = {};
  for (const [k, v] of Object.entries((at(defaults, 'injector_values') as Obj | undefined) ?? {})) {
    if (k === 'notes' || k === 'source') continue;
    if (k.startsWith('meshConfig.')) setPath(mesh, k.slice('meshConfig.'.length), v);
    else setPath(values, k, v);
  }
  const valuesFile = str(c.values_file);
  if (valuesFile) {
    const iop = await readYaml(join(dir, 'inject'), valuesFile);
    merge(values, at(iop, 'spec', 'values'));
    merge(mesh, at(iop, 'spec', 'meshConfig'));
  }
  for (const flag of list(c.setFlags)) {
    const m = typeof flag === 'string' ? /^(values|meshConfig)\.([^=]+)=(.*)$/.exec(flag) : null;
    if (m) setPath(m[1] === 'values' ? values : mesh, m[2] ?? '', scalar(m[3] ?? ''));
    const component = componentValue(flag);
    if (component) setPath(values, component.path, component.value);
  }
  for (const change of list(c.mesh_changes)) {
    if (isRecord(change) && typeof change.path === 'string')
      setPath(mesh, change.path, change.value, change.op === 'append');
  }
  const native =
    str(at(c, 'native_sidecar', 'ENABLE_NATIVE_SIDECARS')) ??
    str(at(defaults, 'native_sidecar', 'ENABLE_NATIVE_SIDECARS_default')) ??
    'auto';
  const injector = at(values, 'sidecarInjectorWebhook');
  const config = {
    policy: at(values, 'global', 'proxy', 'autoInject') ?? 'enabled',
    neverInjectSelector: at(injector, 'neverInjectSelector') ?? [],
    alwaysInjectSelector: at(injector, 'alwaysInjectSelector') ?? [],
  };
  const nodes = list(at(defaults, 'native_sidecar', `${str(c.test) ?? ''}_nodes`));
  // The same settings as a user declares them in meshguard's `mesh:` section.
  const minors = nodes.flatMap((n) => parseVersion(str(at(n, 'kubeletVersion')))?.minor ?? []);
  const rewrite = at(values, 'sidecarInjectorWebhook', 'rewriteAppHTTPProbe');
  const declared: MeshSettings = {
    nativeSidecars: native === 'true' ? 'enabled' : native === 'auto' ? 'auto' : 'disabled',
    ...(minors.length > 0 && { kubeletVersion: `1.${Math.min(...minors)}` }),
    ...(typeof rewrite === 'boolean' && { rewriteProbes: rewrite }),
    holdApplicationUntilProxyStarts:
      at(values, 'global', 'proxy', 'holdApplicationUntilProxyStarts') === true ||
      at(mesh, 'defaultConfig', 'holdApplicationUntilProxyStarts') === true,
  };
  const objects = [
    configMap('istio-sidecar-injector', { config: yaml.dump(config), values: JSON.stringify(values) }),
    configMap('istio', { mesh: yaml.dump(mesh) }),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'istiod', namespace: 'istio-system' },
      spec: {
        template: {
          spec: { containers: [{ name: 'discovery', env: [{ name: 'ENABLE_NATIVE_SIDECARS', value: native }] }] },
        },
      },
    },
    ...nodes.map((n) => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: str(at(n, 'name')) },
      status: { nodeInfo: { kubeletVersion: str(at(n, 'kubeletVersion')) } },
    })),
  ];
  return { objects, declared };
}

const configMap = (name: string, data: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'istio-system' },
  data,
});

/** Istio's injector tests' namespace (INDEX.yaml defaults.test_environment) for objects that name none. */
const TEST_NAMESPACE = 'test-ns';
/** The default webhook's `namespace.sidecar-injector.istio.io` selects it (webhook/SELECTORS.yaml). */
const INJECTED = { 'istio-injection': 'enabled' };

const namespaceOf = (t: Template) =>
  str(t.pod.metadata?.namespace) || str(at(t.owner, 'metadata', 'namespace')) || TEST_NAMESPACE;

async function injectorRow(dir: string, index: Obj, c: Obj): Promise<Row> {
  const id = `inject ${str(c.test) ?? '?'} ${str(c.subtest) ?? '?'}`;
  const inputFile = str(c.input) ?? '';
  const goldenFile = str(c.golden_output) ?? '';
  const input = templates(await readDocs(join(dir, 'inject'), inputFile));
  const istio = await installation(dir, index, c);
  const mesh = resolveProfile({}, discoverMesh(istio.objects));
  // The same settings declared in `mesh:` instead of discovered must give the same model.
  const declaredMesh = resolveProfile(istio.declared, nothingDiscovered);
  const namespaces = [...new Set(input.map(namespaceOf))];
  const cluster = MemoryClusterView.fromObjects([
    ...namespaces.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: INJECTED } })),
    ...(await readDocs(join(dir, 'inject'), inputFile)),
  ]);
  const predictions = input.map((t) => predict(sidecarOf(t.pod, namespaceOf(t), cluster, mesh), t.pod));
  const declaredPredictions = input.map((t) => predict(sidecarOf(t.pod, namespaceOf(t), cluster, declaredMesh), t.pod));
  const show = (p: { proxy: string; rewrite: string; hold: string }) =>
    `proxy ${p.proxy}, rewrite ${p.rewrite}, hold ${p.hold}`;
  const problems = mesh.problems.length > 0 ? `; profile problems: ${mesh.problems.join('; ')}` : '';

  // sidecar-annotations denies exactly the pods Istio's injector refuses (test/istio/annotations.ts).
  const refused = c.expects_error === true || goldenFile === '';
  const sidecars = input.map((t) => ({ ...t, sidecar: sidecarOf(t.pod, namespaceOf(t), cluster, mesh) }));
  const refusals = refusalDifferences(sidecars, refused);
  if (refused) {
    // No golden: Istio rejects the pod (an invalid annotation): only the denial is compared.
    return {
      kind: 'inject',
      id,
      detail: input.map((t, i) => `${t.label}: meshguard ${show(predictions[i] as Predicted)}`).join('; '),
      differences: refusals,
      compared: true,
      note: `Istio rejects the pod (error containing "${str(c.expected_error_substring) ?? '?'}"), sidecar-annotations denies it${problems}`,
    };
  }
  const golden = templates(await readDocs(join(dir, 'inject'), goldenFile));
  if (golden.length !== input.length) {
    return {
      kind: 'inject',
      id,
      detail: '',
      compared: true,
      differences: [`${goldenFile} has ${golden.length} pod templates, ${inputFile} ${input.length}`],
    };
  }
  const differences: string[] = [...refusals];
  const details: string[] = [];
  input.forEach((t, i) => {
    const p = predictions[i] as Predicted;
    const d = declaredPredictions[i] as Predicted;
    if (show(d) !== show(p)) differences.push(`${t.label}: declared in mesh: ${show(d)}, discovered ${show(p)}`);
    const o = observe(t.pod, golden[i] as Template);
    details.push(`${t.label}: ${show(p)} | Istio ${show(o)}`);
    if (p.proxy !== o.proxy) {
      differences.push(`${t.label}: proxy: meshguard ${p.proxy}, Istio ${o.proxy}`);
      return; // what the proxy does cannot be compared when meshguard expects another (or none)
    }
    if (p.rewrite !== o.rewrite) differences.push(`${t.label}: rewrite: meshguard ${p.rewrite}, Istio ${o.rewrite}`);
    if (p.hold !== o.hold) differences.push(`${t.label}: hold: meshguard ${p.hold}, Istio ${o.hold}`);
    const cni = cniDifference(t.label, sidecarOf(t.pod, namespaceOf(t), cluster, mesh), (golden[i] as Template).pod);
    if (cni) differences.push(cni);
  });
  const notes = [
    c.skipInjection === true ? 'kube-inject not run by Istio for this case: golden is the webhook result' : '',
    c.skipWebhook === true ? 'webhook path not run by Istio for this case: golden is the kube-inject result' : '',
    problems.slice(2),
  ].filter(Boolean);
  return {
    kind: 'inject',
    id,
    detail: details.join('; '),
    differences,
    compared: true,
    ...(notes.length > 0 && { note: notes.join('; ') }),
  };
}

// ── Analyzer cases ──────────────────────────────────────────────────────────────────────────────

export interface AnalyzerInput {
  objects: readonly KubeObject[];
  reports: ReturnType<typeof judge>;
  cluster: MemoryClusterView;
  mesh: ReturnType<typeof resolveProfile>;
  /** Policies that threw: a bug, shown as a difference, never counted as an answer. */
  errors: string[];
}

/** `<Kind> <namespace>/<name>`, or `<Kind> <name>` for an object that names no namespace (as Istio writes them). */
const resourceOf = (o: KubeObject) => {
  const ns = str(o.metadata?.namespace);
  return `${str(o.kind) ?? '?'} ${ns ? `${ns}/` : ''}${str(o.metadata?.name) ?? '?'}`;
};

/** Objects on which `policy` found something (deny or warn), with its messages. */
function flagged(input: AnalyzerInput, policy: string, kind: string, message?: RegExp): Map<string, string[]> {
  const out = new Map<string, string[]>();
  input.reports.forEach((r, i) => {
    const object = input.objects[i] as KubeObject;
    if (object.kind !== kind) return;
    for (const f of r.findings) {
      if (f.policy !== policy) continue;
      if (f.action === 'error') input.errors.push(`${policy} threw on ${resourceOf(object)}: ${f.message}`);
      if ((f.action === 'deny' || f.action === 'warn') && (!message || message.test(f.message))) {
        out.set(resourceOf(object), [...(out.get(resourceOf(object)) ?? []), f.message]);
      }
    }
  });
  return out;
}

const hasProxy = (pod: KubeObject) =>
  named(at(pod, 'spec', 'containers'), PROXY) !== undefined ||
  named(at(pod, 'spec', 'initContainers'), PROXY) !== undefined;

const autoImage = (pod: KubeObject) => str(at(named(at(pod, 'spec', 'containers'), PROXY), 'image')) === 'auto';

/**
 * The analyzers in meshguard's domain, the IST codes each is compared on, and meshguard's
 * counterpart: the resources on which meshguard says the same thing. Other codes of these
 * analyzers (namespace advice, subsets) have no meshguard counterpart and are listed, not compared.
 */
const domain: Record<
  string,
  { codes: readonly string[]; counterpart: string; findings: (input: AnalyzerInput) => Map<string, string[]> }
> = {
  // IST0134 ServiceEntryAddressesRequired (serviceentry/protocoladdresses.go).
  'serviceentry.Analyzer': {
    codes: ['IST0134'],
    counterpart: 'externalname-tcp-collision findings on the ServiceEntry',
    findings: (input) => flagged(input, 'externalname-tcp-collision', 'ServiceEntry'),
  },
  // IST0103 PodMissingProxy (injection/injection.go): a pod Istio would inject that has no proxy.
  'injection.Analyzer': {
    codes: ['IST0103'],
    counterpart: 'sidecarOf says the Pod gets a proxy (classic, native, or either), and it has none',
    findings: ({ objects, cluster, mesh }) => {
      const out = new Map<string, string[]>();
      for (const o of objects) {
        if (o.kind !== 'Pod' || hasProxy(o)) continue;
        const s = sidecarOf(o, str(o.metadata?.namespace) || 'default', cluster, mesh);
        // `unknown` with a revision: injected, only native or classic is undecided (no Nodes seen).
        if (s.proxy === 'classic' || s.proxy === 'native' || (s.proxy === 'unknown' && s.revision))
          out.set(resourceOf(o), [`sidecarOf: ${s.proxy}`]);
      }
      return out;
    },
  },
  // IST0146 ImageAutoWithoutInjectionWarning (injection/image-auto.go): a Deployment's `image: auto`
  // proxy that no injector will fill in. (IST0147 is about Pods already stored: no model question.)
  'injection.ImageAutoAnalyzer': {
    codes: ['IST0146'],
    counterpart: "sidecarOf says none for a Deployment's template with istio-proxy image auto",
    findings: ({ objects, cluster, mesh }) => {
      const out = new Map<string, string[]>();
      for (const o of objects) {
        if (o.kind !== 'Deployment') continue;
        const pod = podFromTemplate(o, ['spec', 'template'], 'Deployment');
        if (!pod || !autoImage(pod)) continue;
        const s = sidecarOf(pod, str(o.metadata?.namespace) || 'default', cluster, mesh);
        if (s.proxy === 'none') out.set(resourceOf(o), [`sidecarOf: none (${s.why})`]);
      }
      return out;
    },
  },
  // IST0118 PortNameIsNotUnderNamingConvention (service/portname.go): ConvertProtocol gives
  // Unsupported, Istio sniffs. (IST0150, ExternalName port names, is not this trap.)
  'service.PortNameAnalyzer': {
    codes: ['IST0118'],
    counterpart: 'service-port-protocol findings on the Service',
    findings: (input) => flagged(input, 'service-port-protocol', 'Service'),
  },
  // IST0125 InvalidAnnotation (annotations/annotations.go): the injector's validation table on a
  // Pod's annotations (test/istio/annotations.ts). Its IST0107/0108/0135 are not compared.
  'annotations.K8sAnalyzer': {
    codes: ['IST0125'],
    counterpart: "sidecar-annotations' validation table refuses a value of the Pod",
    findings: ({ objects, mesh }) => invalidAnnotations(objects, mesh, resourceOf),
  },
  // IST0174 UnknownDestinationRuleHost (destinationrule/subset.go). IST0173 (subsets selecting no
  // pods) is not meshguard's concern.
  'destinationrule.SubsetSelectPodAnalyzer': {
    codes: ['IST0174'],
    counterpart: 'destinationrule-placement findings saying the host matches nothing',
    findings: (input) => flagged(input, 'destinationrule-placement', 'DestinationRule', HOST_MATCHES_NOTHING),
  },
};

/** How destinationrule-placement says a host matches no Service or ServiceEntry. */
export const HOST_MATCHES_NOTHING = /\bmatch(es)? (no|nothing)\b|\bunknown host\b/i;

async function analyzerRow(dir: string, c: Obj): Promise<Row | undefined> {
  const analyzers = list(c.analyzers).map(String);
  const entries = analyzers.flatMap((a) => [...(domain[a] ? [domain[a]] : []), ...(injectionLabels[a] ?? [])]);
  if (entries.length === 0) return undefined;
  const id = `analyze ${str(c.test) ?? '?'} [${String(c.index)}] ${str(c.name) ?? '?'}`;
  const base = join(dir, 'analyzers');
  const objects: KubeObject[] = [];
  const manifests = [];
  for (const file of list(c.input_files).map(String)) {
    let parsed;
    try {
      parsed = parseManifests(await readText(base, file), file).manifests;
    } catch (err) {
      if (err instanceof LayoutError) throw err;
      throw new LayoutError(`${join(base, file)}: ${(err as Error).message}`);
    }
    manifests.push(...parsed);
    objects.push(...parsed.map((m) => m.object));
  }
  // The mesh config file, as the `istio` ConfigMap istiod reads it; none means Istio's defaults.
  const meshFile = str(c.mesh_config_file);
  const meshObjects = meshFile ? [configMap('istio', { mesh: await readText(base, meshFile) })] : [];
  const { config } = await loadConfig();
  const cluster = MemoryClusterView.fromObjects(objects);
  const mesh = resolveProfile(config.mesh, discoverMesh([...objects, ...meshObjects]));
  const engine = { registry: new Registry(policies), scope: compileScope(config), cluster, mesh };
  // istioctl analyze puts objects that name no namespace in default.
  const judged = manifests.map((m) => ({ ...m, namespace: m.object.metadata?.namespace ?? 'default' }));
  const input: AnalyzerInput = {
    objects,
    reports: judge(judged, engine, { diff: false }),
    cluster,
    mesh,
    errors: [],
  };

  const codes = new Set(entries.flatMap((e) => e.codes));
  const expected = list(c.expected).filter(isRecord);
  const istio = new Set(expected.filter((m) => codes.has(str(m.code) ?? '')).map((m) => str(m.resource) ?? '?'));
  const other = expected.filter((m) => !codes.has(str(m.code) ?? '')).map((m) => `${str(m.code)} ${str(m.resource)}`);
  const ours = new Map<string, string[]>();
  // The codes a resource is compared on: those Istio gave it, else those of the entries that flagged it.
  const codesOf = new Map<string, Set<string>>();
  const tag = (r: string, c: string) => codesOf.set(r, (codesOf.get(r) ?? new Set()).add(c));
  for (const m of expected) if (codes.has(str(m.code) ?? '')) tag(str(m.resource) ?? '?', str(m.code) ?? '');
  for (const e of entries)
    for (const [k, v] of e.findings(input)) {
      ours.set(k, [...(ours.get(k) ?? []), ...v]);
      if (!istio.has(k)) e.codes.forEach((c) => tag(k, c));
    }
  const code = [...codes].join('/');
  const differences: string[] = [];
  for (const r of [...new Set([...istio, ...ours.keys()])].sort()) {
    const its = [...(codesOf.get(r) ?? [])].sort().join('/');
    if (istio.has(r) && !ours.has(r)) differences.push(`${its} ${r}: Istio reports it, meshguard does not`);
    if (!istio.has(r) && ours.has(r)) {
      differences.push(`${its} ${r}: meshguard reports it, Istio does not (${(ours.get(r) ?? []).join(' / ')})`);
    }
  }
  differences.push(...input.errors);
  const on = (rs: Iterable<string>) => [...rs].sort().join(', ') || 'nothing';
  const detail = `Istio ${code} on ${on(istio)} | meshguard on ${on(ours.keys())} (${entries.map((e) => e.counterpart).join('; ')})`;
  const notes = [
    other.length > 0 ? `not compared (no meshguard counterpart): ${other.join(', ')}` : '',
    mesh.problems.length > 0 ? `profile problems: ${mesh.problems.join('; ')}` : '',
  ].filter(Boolean);
  return {
    kind: 'analyze',
    id,
    detail,
    differences,
    compared: true,
    ...(notes.length > 0 && { note: notes.join('; ') }),
  };
}

// ── The run ─────────────────────────────────────────────────────────────────────────────────────

export interface Run {
  source: string;
  rows: Row[];
}

export async function conformance(dir: string): Promise<Run> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new LayoutError(`${dir}: not a directory`);
  const index = await readYaml(dir, 'inject/INDEX.yaml');
  const expected = await readYaml(dir, 'analyzers/EXPECTED.yaml');
  const rows: Row[] = [];
  for (const c of casesOf(index, 'inject/INDEX.yaml')) rows.push(await injectorRow(dir, index, c));
  for (const c of casesOf(expected, 'analyzers/EXPECTED.yaml')) {
    const row = await analyzerRow(dir, c);
    if (row) rows.push(row);
  }
  const repo = str(at(index, 'source', 'repository')) ?? '?';
  const commit = str(at(index, 'source', 'commit')) ?? '?';
  return { source: `${repo} at ${commit.slice(0, 12)}`, rows };
}

// ── Known differences ───────────────────────────────────────────────────────────────────────────

export interface Known {
  case: string;
  differences: string[];
  reason: string;
  recheck?: string;
}

/** The known-differences file: each entry names a case, the exact differences, and why. */
export async function loadKnown(file: string): Promise<Known[]> {
  let doc: unknown;
  try {
    doc = yaml.load(await readFile(file, 'utf8'));
  } catch (err) {
    throw new LayoutError(`${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc == null) return [];
  const ok = (e: unknown): e is Known =>
    isRecord(e) &&
    typeof e.case === 'string' &&
    typeof e.reason === 'string' &&
    e.reason.trim() !== '' &&
    Array.isArray(e.differences) &&
    e.differences.every((d) => typeof d === 'string') &&
    (e.recheck === undefined || typeof e.recheck === 'string');
  if (!Array.isArray(doc) || !doc.every(ok)) {
    throw new LayoutError(`${file}: not a list of {case, differences: [..], reason, recheck?}`);
  }
  return doc;
}

export interface Verdict {
  row: Row;
  status: Status;
  /** Differences no known entry lists. */
  unlisted: string[];
  /** The known entries' reasons for the listed ones (with when to recheck them). */
  reasons: string[];
}

export function judgeRows(rows: readonly Row[], known: readonly Known[]): { verdicts: Verdict[]; stale: string[] } {
  // case → difference → the entry that lists it
  const listed = new Map<string, Map<string, Known>>();
  for (const k of known) {
    const map = listed.get(k.case) ?? new Map<string, Known>();
    k.differences.forEach((d) => map.set(d, k));
    listed.set(k.case, map);
  }
  const used = new Set<string>();
  const verdicts = rows.map((row): Verdict => {
    const mine = listed.get(row.id);
    const unlisted = row.differences.filter((d) => !mine?.has(d));
    const entries = new Set<Known>();
    for (const d of row.differences) {
      const k = mine?.get(d);
      if (!k) continue;
      used.add(`${row.id}\n${d}`);
      entries.add(k);
    }
    const reasons = [...entries].map((k) => k.reason.trim() + (k.recheck ? ` [recheck ${k.recheck}]` : ''));
    const status: Status =
      row.differences.length > 0
        ? unlisted.length > 0
          ? 'disagree'
          : 'known'
        : !row.compared
          ? 'not compared'
          : 'agree';
    return { row, status, unlisted, reasons };
  });
  const stale = known.flatMap((k) =>
    k.differences.filter((d) => !used.has(`${k.case}\n${d}`)).map((d) => `${k.case}: ${d}`),
  );
  return { verdicts, stale };
}
