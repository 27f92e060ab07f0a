// Istio's own sidecar injector in the loop. Istio's webhook configurations come from its own
// istio-discovery chart (real Helm; revision `default`, a revisioned install `canary` with a tag
// `prod`, and `native`, installed with ENABLE_NATIVE_SIDECARS=true), istiod (pilot-discovery)
// runs against the API server and answers them, and meshguard is installed by its chart. Every
// pod is created through the API server — directly, or by the Deployment and Job controllers —
// and the assertions read the pod as stored, after 0-meshguard and then Istio's injector, beside
// what meshguard's own model predicts for it (injection-model.ts): neither side is written down.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';
import yaml from 'js-yaml';
import t from 'tap';
import type { KubeObject } from '../../src/admission/types.js';
import { MemoryClusterView } from '../../src/cluster/memory.js';
import { listKinds, viewKinds } from '../../src/cluster/list.js';
import { parseConfig } from '../../src/config/parse.js';
import { compileScope } from '../../src/config/scope.js';
import { Registry } from '../../src/engine/registry.js';
import { podFromTemplate } from '../../src/engine/workloads.js';
import { buildProfile } from '../../src/mesh/build.js';
import { discoverMesh } from '../../src/mesh/discover.js';
import { istioSources } from '../../src/mesh/sources.js';
import { policies } from '../../src/policies/index.js';
import { apiRequest, startCluster } from './cluster.js';
import { differences, FACTS, observe, predict, type Facts, type Model } from './injection-model.js';
import { installIstioBase, installIstiod, ISTIO_NS } from './istiod.js';
import { installRelease } from './release.js';
import { ISTIO_VERSION, kubectl } from './tools.js';

const cluster = await startCluster({ istioCrds: false });
t.teardown(() => cluster.stop());
const kc = cluster.kubeConfig;
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const admission = kc.makeApiClient(AdmissionregistrationV1Api);
/** The cluster as meshguard's one-off commands connect to it. */
const connection = { kc, from: 'the e2e cluster', inCluster: false };

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const value = await fn().catch((err: unknown) => ((last = err), undefined));
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(200);
  }
}

// --- the mesh --------------------------------------------------------------------------------

const NAMESPACES: Record<string, Record<string, string>> = {
  'ns-enabled': { 'istio-injection': 'enabled' },
  'ns-rev-default': { 'istio.io/rev': 'default' },
  'ns-rev-canary': { 'istio.io/rev': 'canary' },
  'ns-rev-prod': { 'istio.io/rev': 'prod' },
  'ns-rev-native': { 'istio.io/rev': 'native' },
  'ns-both': { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' },
  'ns-disabled': { 'istio-injection': 'disabled' },
  'ns-plain': {},
  // Injected, but meshguard's own webhooks leave it alone (the chart's ignore label): the
  // webhook-order test calls meshguard here only through a configuration that sorts after Istio's.
  'ns-order': { 'istio-injection': 'enabled', 'meshguard.io/ignore': 'true' },
};
for (const [name, labels] of Object.entries(NAMESPACES)) {
  await core.createNamespace({ body: { metadata: { name, labels } } });
}
// A namespace Istio never injects, labelled as if it should.
await core.patchNamespace({
  name: 'kube-public',
  body: [{ op: 'add', path: '/metadata/labels/istio-injection', value: 'enabled' }],
});

await installIstioBase(cluster);
// Each istiod's ENABLE_NATIVE_SIDECARS is also in its Deployment (Helm's `env` values), where
// meshguard reads it, as in a cluster; nothing about the mesh is declared to meshguard.
const istiod = await installIstiod(cluster, '', { ENABLE_NATIVE_SIDECARS: 'false' });
const canary = await installIstiod(cluster, 'canary', { ENABLE_NATIVE_SIDECARS: 'false' }, [
  '--set',
  'revisionTags={prod}',
]);
const native = await installIstiod(cluster, 'native', { ENABLE_NATIVE_SIDECARS: 'true' });
const release = await installRelease(cluster, 'meshguard-system');
t.teardown(() => release.served.proc.kill('SIGKILL'));
t.comment(
  `istiod ${ISTIO_VERSION}: ${istiod.injectionUrl} (default), ${canary.injectionUrl} (canary, tag prod), ${native.injectionUrl} (native)`,
);

const container = (extra: Partial<V1Container> = {}): V1Container => ({
  name: 'app',
  image: 'example.invalid/app:1',
  ports: [
    { name: 'http', containerPort: 8080 },
    { name: 'health', containerPort: 8087 },
  ],
  ...extra,
});

let podCount = 0;
/** A Pod to create: `name` as given, or the next of p1, p2, … */
function podBody(
  namespace: string,
  meta: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> },
  spec: Partial<V1Pod['spec']> = {},
): V1Pod {
  return {
    metadata: { name: `p${++podCount}`, namespace, ...meta },
    // Istio's template mounts a token for the pod's ServiceAccount (the ServiceAccount admission
    // plugin, which would default it, is off in the test cluster).
    spec: { serviceAccountName: 'default', containers: [container()], ...spec },
  };
}
/** Creates a Pod through the API server and returns it as stored. */
const create = (body: V1Pod): Promise<V1Pod> =>
  core.createNamespacedPod({ namespace: body.metadata?.namespace ?? '', body });
const createPod = (...args: Parameters<typeof podBody>) => create(podBody(...args));

const proxyOf = (pod: V1Pod) =>
  [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === 'istio-proxy');

/**
 * meshguard's model as the running meshguard has it: its configuration from the chart's ConfigMap,
 * the mesh profile discovered from the objects Istio's chart installed, the cluster view listed
 * from the API server (as `meshguard check --kubeconfig` reads them).
 */
async function meshguardModel(): Promise<Model> {
  const cm = await core.readNamespacedConfigMap({ name: 'meshguard', namespace: release.namespace });
  const parsed = parseConfig(cm.data?.['config.yaml'] ?? '');
  if (!parsed.ok) throw new Error(`meshguard's ConfigMap: ${parsed.errors.join('; ')}`);
  const { config } = parsed;
  const mesh = (await buildProfile(config.mesh, { cluster: { connection, istioNamespace: ISTIO_NS } })).mesh.current;
  const view = MemoryClusterView.fromObjects(await listKinds(connection, viewKinds), true);
  return {
    config,
    engine: { registry: new Registry(policies), scope: compileScope(config, release.namespace), cluster: view, mesh },
  };
}

t.test("what meshguard keeps of Istio's objects is what discovery reads of them (a real install)", async (t) => {
  const whole = await listKinds(
    connection,
    istioSources.map((s) => ({
      kind: s.kind,
      apiVersions: [s.apiVersion],
      ...(s.inIstioNamespace && { namespace: ISTIO_NS }),
    })),
  );
  const { mesh } = await buildProfile({}, { cluster: { connection, istioNamespace: ISTIO_NS } });
  t.ok(mesh.discovered.webhooks.length > 0, "Istio's webhooks were read");
  t.strictSame(mesh.discovered, discoverMesh(whole), 'the same mesh from the whole objects');
  // What each istiod runs with, read from its Deployment: not declared, not a default.
  for (const [revision, env] of [
    ['default', 'disabled'],
    ['canary', 'disabled'],
    ['native', 'enabled'],
  ] as const)
    t.equal(
      mesh.discovered.revisions.get(revision)?.nativeSidecars,
      env,
      `${revision}: ENABLE_NATIVE_SIDECARS discovered`,
    );
});

// --- meshguard's model against Istio's injector, pod by pod ---------------------------------------

interface Case {
  /** The branch of meshguard's model (and Istio's code) the pod takes. */
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  spec?: Partial<V1Pod['spec']>;
}

/** One app container with a probe of each handler that can be rewritten, and one that cannot. */
const probed = (): Partial<V1Pod['spec']> => ({
  containers: [
    container({
      livenessProbe: { tcpSocket: { port: 8087 } },
      readinessProbe: { httpGet: { path: '/ready', port: 8080 } },
      startupProbe: { grpc: { port: 8087 } },
    }),
    { name: 'worker', image: 'example.invalid/worker:1', livenessProbe: { exec: { command: ['true'] } } },
  ],
});
const REWRITE = 'sidecar.istio.io/rewriteAppHTTPProbers';
/** A pod with probes, with or without the pod's own rewriteAppHTTPProbers annotation. */
const probeCase = (name: string, namespace: string, rewrite?: string): Case => ({
  name: `probes, ${name}`,
  namespace,
  ...(rewrite !== undefined && { annotations: { [REWRITE]: rewrite } }),
  spec: probed(),
});
const NATIVE = 'sidecar.istio.io/nativeSidecar';
const PROXY_CONFIG = 'proxy.istio.io/config';
const INJECT = 'sidecar.istio.io/inject';
/** A pod with this terminationGracePeriodSeconds. */
const graceCase = (seconds: number, namespace: string, more?: string, annotations?: Record<string, string>): Case => ({
  name: `grace period ${seconds} s${more ? `, ${more}` : ''}`,
  namespace,
  ...(annotations && { annotations }),
  spec: { terminationGracePeriodSeconds: seconds },
});
const appInit = { name: 'migrate', image: 'example.invalid/migrate:1' };

const cases: Case[] = [
  // Which webhook the API server calls (namespace and pod labels), then the injector's own rules.
  { name: 'istio-injection=enabled namespace', namespace: 'ns-enabled' },
  { name: 'pod label inject=false opts out', namespace: 'ns-enabled', labels: { [INJECT]: 'false' } },
  { name: 'pod annotation inject=false opts out', namespace: 'ns-enabled', annotations: { [INJECT]: 'false' } },
  {
    name: 'pod label inject=true replaces annotation inject=false',
    namespace: 'ns-enabled',
    labels: { [INJECT]: 'true' },
    annotations: { [INJECT]: 'false' },
  },
  {
    name: 'an empty pod label inject replaces annotation inject=false',
    namespace: 'ns-enabled',
    labels: { [INJECT]: '' },
    annotations: { [INJECT]: 'false' },
  },
  {
    name: 'pod label inject=yes: not true or false, the default',
    namespace: 'ns-enabled',
    labels: { [INJECT]: 'yes' },
  },
  { name: 'hostNetwork pods are never injected', namespace: 'ns-enabled', spec: { hostNetwork: true } },
  {
    name: 'pod label istio.io/rev=canary in an istio-injection namespace',
    namespace: 'ns-enabled',
    labels: { 'istio.io/rev': 'canary' },
  },
  { name: 'namespace istio.io/rev=default', namespace: 'ns-rev-default' },
  { name: 'namespace istio.io/rev=canary', namespace: 'ns-rev-canary' },
  {
    name: 'namespace istio.io/rev=canary, pod label inject=false',
    namespace: 'ns-rev-canary',
    labels: { [INJECT]: 'false' },
  },
  { name: 'namespace istio.io/rev=prod: a tag of canary', namespace: 'ns-rev-prod' },
  { name: 'namespace istio.io/rev=native', namespace: 'ns-rev-native' },
  {
    name: 'pod label istio.io/rev=canary in namespace istio.io/rev=native',
    namespace: 'ns-rev-native',
    labels: { 'istio.io/rev': 'canary' },
  },
  { name: 'istio-injection=enabled beside istio.io/rev=canary', namespace: 'ns-both' },
  { name: 'unlabelled namespace', namespace: 'ns-plain' },
  { name: 'unlabelled namespace, pod label inject=true', namespace: 'ns-plain', labels: { [INJECT]: 'true' } },
  {
    name: 'unlabelled namespace, pod annotation inject=true',
    namespace: 'ns-plain',
    annotations: { [INJECT]: 'true' },
  },
  {
    name: 'unlabelled namespace, pod label istio.io/rev=canary',
    namespace: 'ns-plain',
    labels: { 'istio.io/rev': 'canary' },
  },
  {
    name: 'unlabelled namespace, pod label istio.io/rev=prod (tag)',
    namespace: 'ns-plain',
    labels: { 'istio.io/rev': 'prod' },
  },
  {
    name: 'unlabelled namespace, pod label istio.io/rev=native',
    namespace: 'ns-plain',
    labels: { 'istio.io/rev': 'native' },
  },
  { name: 'istio-injection=disabled, pod label inject=true', namespace: 'ns-disabled', labels: { [INJECT]: 'true' } },
  { name: 'kube-public, labelled istio-injection=enabled', namespace: 'kube-public' },

  // Native or classic: the install's ENABLE_NATIVE_SIDECARS, or the pod's annotation.
  {
    name: 'native install, annotation nativeSidecar=false',
    namespace: 'ns-rev-native',
    annotations: { [NATIVE]: 'false' },
  },
  {
    name: 'classic install, annotation nativeSidecar=true',
    namespace: 'ns-enabled',
    annotations: { [NATIVE]: 'true' },
  },
  { name: 'classic install, annotation nativeSidecar=yes', namespace: 'ns-enabled', annotations: { [NATIVE]: 'yes' } },
  {
    name: 'native install, an empty annotation nativeSidecar',
    namespace: 'ns-rev-native',
    annotations: { [NATIVE]: '' },
  },
  { name: 'native install, an app init container', namespace: 'ns-rev-native', spec: { initContainers: [appInit] } },
  { name: 'classic install, an app init container', namespace: 'ns-enabled', spec: { initContainers: [appInit] } },

  // Probe rewriting: the injector's value, or the pod's annotation as Go's ParseBool reads it.
  probeCase('rewriting on', 'ns-enabled'),
  probeCase('annotation rewrite=false', 'ns-enabled', 'false'),
  probeCase('annotation rewrite=0 (ParseBool false)', 'ns-enabled', '0'),
  probeCase('annotation rewrite=no (not a Go bool)', 'ns-enabled', 'no'),
  probeCase('native, rewriting on', 'ns-rev-native'),
  probeCase('native, annotation rewrite=false', 'ns-rev-native', 'false'),
  probeCase('canary, annotation rewrite=false', 'ns-rev-canary', 'false'),

  // Hold: set by meshguard (above), by the user either way and in either spelling, or skipped.
  {
    name: 'hold true set by the user',
    namespace: 'ns-enabled',
    annotations: { [PROXY_CONFIG]: 'holdApplicationUntilProxyStarts: true\n' },
  },
  {
    name: 'hold false set by the user',
    namespace: 'ns-enabled',
    annotations: { [PROXY_CONFIG]: 'holdApplicationUntilProxyStarts: false\n' },
  },
  {
    name: 'hold false set by the user, proto field name',
    namespace: 'ns-enabled',
    annotations: { [PROXY_CONFIG]: 'hold_application_until_proxy_starts: false\n' },
  },
  {
    name: 'hold true set by the user, native',
    namespace: 'ns-rev-native',
    annotations: { [PROXY_CONFIG]: 'holdApplicationUntilProxyStarts: true\n' },
  },
  {
    name: 'hold skipped by meshguard.io/skip',
    namespace: 'ns-enabled',
    annotations: { 'meshguard.io/skip': 'hold-application-until-proxy-starts' },
  },

  // Drain: the grace period against the proxy's 5 s, or the user's own drain.
  graceCase(3, 'ns-enabled'),
  graceCase(5, 'ns-enabled'),
  graceCase(6, 'ns-enabled'),
  graceCase(120, 'ns-enabled'),
  graceCase(60, 'ns-enabled', 'terminationDrainDuration set by the user', {
    [PROXY_CONFIG]: 'terminationDrainDuration: 20s\n',
  }),
  graceCase(60, 'ns-enabled', 'termination_drain_duration (proto field name) set by the user', {
    [PROXY_CONFIG]: 'termination_drain_duration: 30s\n',
  }),
  graceCase(60, 'ns-enabled', 'EXIT_ON_ZERO_ACTIVE_CONNECTIONS=false set by the user', {
    [PROXY_CONFIG]: 'proxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "false"\n',
  }),
  graceCase(120, 'ns-rev-native', 'native'),
  graceCase(120, 'ns-rev-native', 'native install, annotation nativeSidecar=false', { [NATIVE]: 'false' }),
  graceCase(120, 'ns-enabled', "the team's own ProxyConfig keys", {
    [PROXY_CONFIG]: "# the team's own\nconcurrency: 2\n",
  }),
];

/** Creates the pod and returns meshguard's prediction for it beside Istio's answer: the differences. */
async function compare(body: V1Pod, model: Model): Promise<{ observed: Facts; differ: string[] }> {
  const predicted = predict(body, body.metadata?.namespace ?? '', model);
  const observed = observe(body, await create(body));
  return { observed, differ: differences(predicted, observed) };
}

t.test("meshguard's model predicts what Istio's injector does, pod by pod", async (t) => {
  // Each webhook answers once its istiod has its injector configuration: wait for a first injection.
  for (const namespace of ['ns-enabled', 'ns-rev-canary', 'ns-rev-native'])
    await eventually(`a first injected pod in ${namespace}`, async () => {
      const pod = await createPod(namespace, { labels: { warmup: 'true' } });
      return proxyOf(pod) !== undefined ? pod : undefined;
    });
  const model = await meshguardModel();
  const seen = new Map<keyof Facts, Set<string>>(FACTS.map((k) => [k, new Set()]));
  for (const c of cases) {
    const body = podBody(
      c.namespace,
      { ...(c.labels && { labels: c.labels }), ...(c.annotations && { annotations: c.annotations }) },
      c.spec,
    );
    const { observed, differ } = await compare(body, model);
    for (const k of FACTS) seen.get(k)?.add(observed[k]);
    t.strictSame(
      differ,
      [],
      `${body.metadata?.name} (${c.name}): Istio: ${FACTS.map((k) => `${k} ${observed[k]}`).join('; ')}`,
    );
  }
  // The cases reach every branch on Istio's side: a table that stopped injecting would agree too.
  const branches: Record<keyof Facts, RegExp[]> = {
    injected: [/^default$/, /^canary$/, /^native$/, /^none$/],
    sidecar: [/^classic$/, /^native$/],
    probes: [/rewritten/, /as is/],
    excluded: [/8087/, /^none$/],
    hold: [/^held: istio-proxy first/, /^held: native/, /^not held$/],
    drain: [
      /EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true/,
      /EXIT_ON_ZERO_ACTIVE_CONNECTIONS=false/,
      /^no EXIT/,
      /20s/,
      /preStop drain/,
    ],
  };
  for (const k of FACTS)
    for (const branch of branches[k])
      t.ok(
        [...(seen.get(k) ?? [])].some((v) => branch.test(v)),
        `a case where Istio's ${k} is ${branch.source}`,
      );
});

t.test("a Deployment's controller-made pod: meshguard's model of its template, against Istio", async (t) => {
  const labels = { app: 'web' };
  const template = { metadata: { labels }, spec: { serviceAccountName: 'default', containers: [container()] } };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: { selector: { matchLabels: labels }, template },
  };
  const model = await meshguardModel();
  const pod = podFromTemplate(deployment as KubeObject, ['spec', 'template'], 'Deployment') as V1Pod;
  const predicted = predict(pod, 'ns-enabled', model);
  await apps.createNamespacedDeployment({ namespace: 'ns-enabled', body: deployment });
  const stored = await eventually(
    'the Deployment pod',
    async () => (await core.listNamespacedPod({ namespace: 'ns-enabled', labelSelector: 'app=web' })).items[0],
  );
  t.strictSame(differences(predicted, observe(pod, stored)), [], `${stored.metadata?.name}: as predicted`);
  t.not(predicted.injected, 'none', 'a pod Istio injects');
});
// --- injection labels: meshguard's warnings at kubectl apply, Istio's answer ----------------------

t.test('namespace-injection: a Namespace labelled for a revision that is not installed', async (t) => {
  const name = 'ns-rev-missing';
  const labels = { 'istio.io/rev': 'stable' };
  const applied = await kubectl(
    cluster.kubeconfigPath,
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }),
  );
  t.equal(applied.status, 0, `created, not denied: ${applied.stderr}`);
  // The installed names come from the injector webhooks meshguard discovered (Istio's chart, via Helm).
  t.match(
    applied.stderr,
    /^Warning: meshguard namespace-injection: istio\.io\/rev=stable names no installed revision or tag \(canary, default, native, prod \(tag of canary\)\), so its pods get no sidecar/m,
  );
  const { observed, differ } = await compare(podBody(name, {}), await meshguardModel());
  t.equal(observed.injected, 'none', 'the real API server calls no injector: the pod is stored without a sidecar');
  t.strictSame(differ, [], "meshguard's model agrees");
});

t.test('sidecar-inject-label: an annotation that means to opt in, at kubectl apply and in its pods', async (t) => {
  const labels = { app: 'annotated' };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'annotated', namespace: 'ns-plain' },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations: { 'sidecar.istio.io/inject': 'true' } },
        spec: { serviceAccountName: 'default', containers: [container()] },
      },
    },
  };
  const applied = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], JSON.stringify(deployment));
  t.equal(applied.status, 0, applied.stderr);
  t.match(
    applied.stderr,
    /^Warning: meshguard sidecar-inject-label: the annotation sidecar\.istio\.io\/inject="true" opts nothing in \(webhooks select pods by label\)\. Here: no sidecar\. Fix: make it a pod label$/m,
  );
  const pod = await eventually(
    'the Deployment pod',
    async () => (await core.listNamespacedPod({ namespace: 'ns-plain', labelSelector: 'app=annotated' })).items[0],
  );
  t.equal(proxyOf(pod), undefined, "Istio's injector was never called for it");
});

// --- meshguard before Istio ---------------------------------------------------------------------

const HOLD = /holdApplicationUntilProxyStarts: true/;
/** Istio turned a hold it read into istio-proxy first, waiting in its postStart (webhook.go reorderPod). */
const heldByIstio = (pod: V1Pod) =>
  pod.spec?.containers[0]?.name === 'istio-proxy' &&
  pod.spec.containers[0].lifecycle?.postStart?.exec?.command?.join(' ') === 'pilot-agent wait';

t.test(
  "the API server's call order: Istio's injector reads what 0-meshguard set, and would not after it",
  async (t) => {
    const names = (await admission.listMutatingWebhookConfiguration()).items.map((m) => m.metadata?.name ?? '');
    t.ok(names.includes('istio-sidecar-injector'), `Istio's configurations: ${names.join(', ')}`);

    // As installed: the API server called 0-meshguard, then Istio, which read meshguard's hold.
    const first = await createPod('ns-enabled', {});
    t.match(first.metadata?.annotations?.[PROXY_CONFIG], HOLD, "0-meshguard's patch is on the stored pod");
    t.ok(heldByIstio(first), "Istio's injector saw it: istio-proxy first, waiting in its postStart");

    // The control: the same webhook in a configuration named to sort after Istio's, for ns-order
    // only (0-meshguard leaves ns-order alone: the chart's ignore label). Same meshguard, same patch:
    // only the order the API server calls the two in differs.
    const installed = await admission.readMutatingWebhookConfiguration({ name: '0-meshguard' });
    const late = 'zz-meshguard-after-istio';
    t.ok(
      names.filter((n) => n.startsWith('istio-')).every((n) => n < late),
      `${late} sorts after Istio's configurations`,
    );
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: late },
        webhooks: (installed.webhooks ?? []).map((w) => ({
          ...w,
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ns-order' } },
        })),
      },
    });
    t.teardown(() => admission.deleteMutatingWebhookConfiguration({ name: late }).then(() => undefined));
    const after = await eventually('the late configuration in force', async () => {
      const pod = await createPod('ns-order', {});
      return pod.metadata?.annotations?.[PROXY_CONFIG] !== undefined ? pod : undefined;
    });
    t.ok(proxyOf(after), 'Istio injected it');
    t.match(after.metadata?.annotations?.[PROXY_CONFIG], HOLD, 'meshguard, called after Istio, set the same hold');
    t.notOk(heldByIstio(after), "but Istio's injector had already run: istio-proxy is not held");
    t.not(after.spec?.containers[0]?.name, 'istio-proxy', 'istio-proxy is not first');
  },
);

const istioInit = (pod: V1Pod) => pod.spec?.initContainers?.find((c) => c.name === 'istio-init');

t.test("a Job: its pod's command is wrapped, beside Istio's classic proxy", async (t) => {
  await batch.createNamespacedJob({
    namespace: 'ns-enabled',
    body: {
      metadata: { name: 'report' },
      spec: {
        template: {
          metadata: { labels: { app: 'report' } },
          spec: {
            serviceAccountName: 'default',
            restartPolicy: 'Never',
            containers: [{ name: 'report', image: 'busybox', command: ['/bin/sh', '-c'], args: ['date'] }],
          },
        },
      },
    },
  });
  const pod = await eventually(
    'the Job pod',
    async () => (await core.listNamespacedPod({ namespace: 'ns-enabled', labelSelector: 'app=report' })).items[0],
  );
  const report = pod.spec?.containers.find((c) => c.name === 'report');
  t.match(report?.command?.[2], /^# meshguard job-sidecar-quit v1\n/, 'wrapped by meshguard');
  t.match(report?.command?.[2], /15020\/quitquitquit/, "tells istio-proxy's agent to quit");
  t.ok(
    pod.spec?.containers.some((c) => c.name === 'istio-proxy'),
    'istio-proxy is a regular container beside it',
  );
});

t.test("one ProxyConfig annotation for hold and drain: the team's text kept, its keys reach the proxy", async (t) => {
  const pod = await createPod(
    'ns-enabled',
    { annotations: { [PROXY_CONFIG]: "# the team's own\nconcurrency: 2\n" } },
    { terminationGracePeriodSeconds: 120 },
  );
  const text = pod.metadata?.annotations?.[PROXY_CONFIG] ?? '';
  // hold and termination-drain edited the one annotation in one review: both keys, the user's kept.
  t.match(text, /^# the team's own\nconcurrency: 2\n/, "the user's text kept");
  t.match(text, HOLD, 'hold');
  t.match(text, /EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"/, 'drain');
  const env = proxyOf(pod)?.env ?? [];
  t.equal(
    JSON.parse(env.find((e) => e.name === 'PROXY_CONFIG')?.value ?? '{}').concurrency,
    2,
    "the user's key reached the proxy's ProxyConfig",
  );

  // Istio's own chart sets neither drain key, and no CNI: meshguard's profile says so.
  const mesh = (await buildProfile({}, { cluster: { connection, istioNamespace: ISTIO_NS } })).mesh.current;
  for (const name of ['default', 'canary', 'native']) {
    const r = mesh.revisions.get(name);
    t.equal(r?.cni, false, `${name}: values.pilot.cni.enabled false`);
    t.equal(r?.terminationDrainDuration, undefined, `${name}: Istio's default drain`);
    t.equal(r?.exitOnZeroActiveConnections, undefined);
    t.equal(r?.proxyPreStop, false);
  }
  t.ok(istioInit(pod), 'no CNI: Istio injected istio-init, not istio-validation');
});

// --- annotations Istio's injector refuses --------------------------------------------------------

/** meshguard's configuration as the chart rendered it, with one policy's mode changed. */
async function setPolicyMode(policy: string, mode: string): Promise<void> {
  const cm = await core.readNamespacedConfigMap({ name: 'meshguard', namespace: release.namespace });
  const config = yaml.load(cm.data?.['config.yaml'] ?? '') as { policies: Record<string, { mode: string }> };
  config.policies[policy] = { ...config.policies[policy], mode };
  await core.replaceNamespacedConfigMap({
    name: 'meshguard',
    namespace: release.namespace,
    body: { metadata: { name: 'meshguard' }, data: { 'config.yaml': yaml.dump(config) } },
  });
}

t.test("sidecar-annotations: what Istio's injector refuses, meshguard denies at kubectl apply", async (t) => {
  // The FAQ's trap: a space after the comma of a CIDR list (validate.go validateCIDRList).
  const annotations = { 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.0/8, 172.16.0.0/12' };
  const labels = { app: 'bad-cidrs' };
  const manifest = JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'bad-cidrs', namespace: 'ns-enabled' },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations },
        spec: { serviceAccountName: 'default', containers: [container()] },
      },
    },
  });
  const denied = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], manifest);
  t.equal(denied.status, 1, 'kubectl apply exits 1');
  t.match(
    denied.stderr,
    /admission webhook "validate\.meshguard\.io" denied the request: meshguard sidecar-annotations: Istio's injector \(revision default, Istio [0-9.]+\) refuses the pod: traffic\.sidecar\.istio\.io\/excludeOutboundIPRanges: " 172\.16\.0\.0\/12" has spaces/,
    'the denial names the annotation and why',
  );
  const pod = await createPod('ns-enabled', { annotations }).then(
    () => 'created',
    (err: Error) => err.message,
  );
  t.match(pod, /mutate\.meshguard\.io.*sidecar-annotations/s, 'a Pod is denied at /mutate, before the injector');

  // With meshguard's policy off, the Deployment is stored and Istio's injector refuses its pods:
  // the ReplicaSet reports it, and no pod exists.
  await setPolicyMode('sidecar-annotations', 'off');
  t.teardown(() => setPolicyMode('sidecar-annotations', 'enforce'));
  await eventually('meshguard to read its configuration', async () => {
    const dry = await kubectl(cluster.kubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], manifest);
    return dry.status === 0 ? dry : undefined;
  });
  const applied = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], manifest);
  t.equal(applied.status, 0, `kubectl apply: ${applied.stderr}`);
  const failure = await eventually('the ReplicaSet to fail creating pods', async () => {
    const sets = await apps.listNamespacedReplicaSet({ namespace: 'ns-enabled', labelSelector: 'app=bad-cidrs' });
    return sets.items[0]?.status?.conditions?.find((c) => c.type === 'ReplicaFailure')?.message;
  });
  t.match(
    failure,
    /sidecar-injector\.istio\.io" denied the request: .*invalid value '10\.0\.0\.0\/8, 172\.16\.0\.0\/12' for annotation 'traffic\.sidecar\.istio\.io\/excludeOutboundIPRanges'/s,
    `Istio's injector refuses the pods for the same annotation: ${failure}`,
  );
  const pods = await core.listNamespacedPod({ namespace: 'ns-enabled', labelSelector: 'app=bad-cidrs' });
  t.equal(pods.items.length, 0, 'no pod was created');
});

// --- native sidecars ----------------------------------------------------------------------------

t.test('a Job beside a native istio-proxy: meshguard leaves its command alone', async (t) => {
  await batch.createNamespacedJob({
    namespace: 'ns-rev-native',
    body: {
      metadata: { name: 'native-report' },
      spec: {
        template: {
          metadata: { labels: { app: 'native-report' } },
          spec: {
            serviceAccountName: 'default',
            restartPolicy: 'Never',
            containers: [{ name: 'report', image: 'busybox', command: ['/bin/sh', '-c'], args: ['date'] }],
          },
        },
      },
    },
  });
  const job = await eventually(
    'the Job pod',
    async () =>
      (await core.listNamespacedPod({ namespace: 'ns-rev-native', labelSelector: 'app=native-report' })).items[0],
  );
  t.strictSame(job.spec?.containers.find((c) => c.name === 'report')?.command, ['/bin/sh', '-c'], 'not wrapped');
  t.equal(job.spec?.initContainers?.find((c) => c.name === 'istio-proxy')?.restartPolicy, 'Always');
});

// --- mTLS: a DestinationRule's tls against a STRICT PeerAuthentication (Istio's own CRDs) --------

/** `kubectl apply` of one object as a user runs it (or --dry-run=server): exit status and output. */
const apply = (object: unknown, dryRun = false) =>
  kubectl(
    cluster.kubeconfigPath,
    ['apply', ...(dryRun ? ['--dry-run=server'] : []), '-f', '-'],
    JSON.stringify(object),
  );
const mtlsService = (name: string, namespace: string) => ({
  metadata: { name, namespace },
  spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] },
});
const peerAuthentication = (namespace: string, mode: string) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name: 'strict', namespace },
  spec: { mtls: { mode } },
});
const destinationRule = (name: string, namespace: string, host: string, tls: string) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name, namespace },
  spec: { host, trafficPolicy: { tls: { mode: tls } } },
});

t.test('mtls-conflict: tls DISABLE under a STRICT PeerAuthentication is denied at kubectl apply', async (t) => {
  await core.createNamespacedService({ namespace: 'ns-enabled', body: mtlsService('reviews', 'ns-enabled') });
  const pa = await apply(peerAuthentication('ns-enabled', 'STRICT'));
  t.equal(pa.status, 0, `the PeerAuthentication is applied: ${pa.stderr}`);
  t.notMatch(pa.stderr, /meshguard/, 'no rule breaks it yet: no warning');
  // meshguard's view follows the PeerAuthentication by its watch, within a moment: dry runs meanwhile.
  await eventually('the denial', async () => {
    const r = await apply(destinationRule('reviews', 'ns-enabled', 'reviews', 'DISABLE'), true);
    return r.status !== 0 ? r : undefined;
  });
  const denied = await apply(destinationRule('reviews', 'ns-enabled', 'reviews', 'DISABLE'));
  t.not(denied.status, 0, 'kubectl apply fails');
  t.match(
    denied.stderr,
    /denied the request: meshguard mtls-conflict: tls DISABLE sends plain text to Service ns-enabled\/reviews:9080, where PeerAuthentication ns-enabled\/strict is STRICT: sidecar and gateway clients fail/,
  );
  const stored = await apiRequest(
    cluster,
    'GET',
    '/apis/networking.istio.io/v1/namespaces/ns-enabled/destinationrules/reviews',
  );
  t.equal(stored.status, 404, 'nothing stored');
  const mutual = await apply(destinationRule('reviews', 'ns-enabled', 'reviews', 'ISTIO_MUTUAL'));
  t.equal(mutual.status, 0, `ISTIO_MUTUAL is applied: ${mutual.stderr}`);
  t.notMatch(mutual.stderr, /mtls-conflict/);
});

t.test('mtls-conflict: a STRICT PeerAuthentication over a DISABLE rule is applied, with a warning', async (t) => {
  // ns-rev-default is injected (istio.io/rev=default) and PERMISSIVE: the rule is fine for now.
  await core.createNamespacedService({ namespace: 'ns-rev-default', body: mtlsService('ratings', 'ns-rev-default') });
  const rule = await apply(destinationRule('ratings', 'ns-rev-default', 'ratings', 'DISABLE'));
  t.equal(rule.status, 0, `a DISABLE rule for PERMISSIVE pods is applied: ${rule.stderr}`);
  t.notMatch(rule.stderr, /mtls-conflict/);
  await eventually('the warning', async () => {
    const r = await apply(peerAuthentication('ns-rev-default', 'STRICT'), true);
    return /mtls-conflict/.test(r.stderr) ? r : undefined;
  });
  const warned = await apply(peerAuthentication('ns-rev-default', 'STRICT'));
  t.equal(warned.status, 0, `applied: PeerAuthentications are never denied (${warned.stderr})`);
  t.match(
    warned.stderr,
    /Warning: meshguard mtls-conflict: makes Service ns-rev-default\/ratings:9080 STRICT, where DestinationRule ns-rev-default\/ratings's tls DISABLE sends plain text/,
  );
});

t.test('Istio namespace objects came from Helm', async (t) => {
  const cms = await core.listNamespacedConfigMap({ namespace: ISTIO_NS });
  const names = cms.items.map((c) => c.metadata?.name);
  for (const n of ['istio', 'istio-sidecar-injector', 'istio-canary', 'istio-sidecar-injector-canary'])
    t.ok(names.includes(n), `ConfigMap ${n}`);
});
