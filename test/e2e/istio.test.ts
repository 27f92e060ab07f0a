// Istio's own sidecar injector in the loop. Istio's webhook configurations come from its own
// istio-discovery chart (real Helm; revision `default` and a revisioned install `canary`), istiod
// (pilot-discovery) runs against the API server and answers them, and meshguard is installed by
// its chart. Every pod is created through the API server — directly, or by the Deployment and Job
// controllers — and the assertions read the pod as stored, after 0-meshguard and then Istio's
// injector: the two claims meshguard's mutations rest on ("our configuration sorts before
// istio-sidecar-injector", "Istio reads what we set") are checked on Istio's own output.
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
import { readFileSync } from 'node:fs';
import type { KubeObject } from '../../src/admission/types.js';
import { MemoryClusterView } from '../../src/cluster/memory.js';
import { listKinds } from '../../src/cluster/list.js';
import { buildProfile } from '../../src/mesh/build.js';
import { discoverMesh } from '../../src/mesh/discover.js';
import { istioSources } from '../../src/mesh/sources.js';
import { sidecarOf } from '../../src/mesh/injection.js';
import { defaultConfigPath } from '../../src/paths.js';
import { apiRequest, startCluster } from './cluster.js';
import { installIstioBase, installIstiod, ISTIO_NS } from './istiod.js';
import { installRelease } from './release.js';
import { ISTIO_VERSION, kubectl } from './tools.js';

const cluster = await startCluster({ istioCrds: false });
t.teardown(() => cluster.stop());
const kc = cluster.kubeConfig;
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const batch = kc.makeApiClient(BatchV1Api);
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
  'ns-both': { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' },
  'ns-disabled': { 'istio-injection': 'disabled' },
  'ns-plain': {},
};
for (const [name, labels] of Object.entries(NAMESPACES)) {
  await core.createNamespace({ body: { metadata: { name, labels } } });
}
// A namespace Istio never injects, labelled as if it should.
await core.patchNamespace({
  name: 'kube-public',
  body: [{ op: 'add', path: '/metadata/labels/istio-injection', value: 'enabled' }],
});
NAMESPACES['kube-public'] = { 'istio-injection': 'enabled' };

await installIstioBase(cluster);
// Classic sidecars first; the native-sidecar tests restart the default istiod.
const istiod = await installIstiod(cluster, '', { ENABLE_NATIVE_SIDECARS: 'false' });
const canary = await installIstiod(cluster, 'canary', { ENABLE_NATIVE_SIDECARS: 'false' });
// istiod runs outside the cluster here, so meshguard cannot read its ENABLE_NATIVE_SIDECARS: the
// configuration declares it, as the README says for a mesh meshguard cannot read.
const release = await installRelease(cluster, 'meshguard-system', ['--set', 'config.mesh.nativeSidecars=disabled']);
t.teardown(() => release.served.proc.kill('SIGKILL'));
t.comment(`istiod ${ISTIO_VERSION}: ${istiod.injectionUrl} (default), ${canary.injectionUrl} (canary)`);

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
/** Creates a Pod through the API server and returns it as stored. */
async function createPod(
  namespace: string,
  meta: { labels?: Record<string, string>; annotations?: Record<string, string> },
  spec: Partial<V1Pod['spec']> = {},
): Promise<V1Pod> {
  const body: V1Pod = {
    metadata: { name: `p${++podCount}`, namespace, ...meta },
    // Istio's template mounts a token for the pod's ServiceAccount (the ServiceAccount admission
    // plugin, which would default it, is off in the test cluster).
    spec: { serviceAccountName: 'default', containers: [container()], ...spec },
  };
  return core.createNamespacedPod({ namespace, body });
}

const proxyOf = (pod: V1Pod) =>
  [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === 'istio-proxy');
/** The revision whose injector added the proxy, from Istio's sidecar.istio.io/status annotation. */
const injectedBy = (pod: V1Pod): string => {
  if (proxyOf(pod) === undefined) return 'none';
  const status = JSON.parse(pod.metadata?.annotations?.['sidecar.istio.io/status'] ?? '{}') as { revision?: string };
  return status.revision ?? '?';
};

/**
 * meshguard's prediction for a pod: the revision that injects it, or none, from the mesh profile
 * discovered from the objects Istio's chart installed in this cluster (as serve and audit do).
 */
async function predicted(pod: V1Pod, namespace: string): Promise<string> {
  const view = MemoryClusterView.fromObjects(
    Object.entries(NAMESPACES).map(([name, labels]) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels },
    })),
  );
  const mesh = (await buildProfile({}, { cluster: { connection, istioNamespace: ISTIO_NS } })).mesh.current;
  const sidecar = sidecarOf(pod as KubeObject, namespace, view, mesh);
  return sidecar.proxy === 'none' ? 'none' : (sidecar.revision?.name ?? '?');
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
});

// --- injection: which pods Istio injects, and which revision -------------------------------------

interface Case {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  spec?: Partial<V1Pod['spec']>;
  /** What Istio does: the revision that injects, or none. */
  istio: 'default' | 'canary' | 'none';
}
const cases: Case[] = [
  { name: 'istio-injection=enabled namespace', namespace: 'ns-enabled', istio: 'default' },
  {
    name: 'pod label sidecar.istio.io/inject=false opts out',
    namespace: 'ns-enabled',
    labels: { 'sidecar.istio.io/inject': 'false' },
    istio: 'none',
  },
  {
    name: 'pod annotation sidecar.istio.io/inject=false opts out',
    namespace: 'ns-enabled',
    annotations: { 'sidecar.istio.io/inject': 'false' },
    istio: 'none',
  },
  { name: 'hostNetwork pods are never injected', namespace: 'ns-enabled', spec: { hostNetwork: true }, istio: 'none' },
  { name: 'namespace istio.io/rev=default', namespace: 'ns-rev-default', istio: 'default' },
  { name: 'namespace istio.io/rev=canary: the canary revision', namespace: 'ns-rev-canary', istio: 'canary' },
  { name: 'istio-injection=enabled wins over istio.io/rev', namespace: 'ns-both', istio: 'default' },
  { name: 'unlabelled namespace', namespace: 'ns-plain', istio: 'none' },
  {
    name: 'unlabelled namespace, pod label sidecar.istio.io/inject=true opts in',
    namespace: 'ns-plain',
    labels: { 'sidecar.istio.io/inject': 'true' },
    istio: 'default',
  },
  {
    name: 'unlabelled namespace, pod annotation sidecar.istio.io/inject=true does not opt in',
    namespace: 'ns-plain',
    annotations: { 'sidecar.istio.io/inject': 'true' },
    istio: 'none',
  },
  {
    name: 'unlabelled namespace, pod label istio.io/rev=canary',
    namespace: 'ns-plain',
    labels: { 'istio.io/rev': 'canary' },
    istio: 'canary',
  },
  {
    name: 'istio-injection=disabled, pod label sidecar.istio.io/inject=true: no webhook matches',
    namespace: 'ns-disabled',
    labels: { 'sidecar.istio.io/inject': 'true' },
    istio: 'none',
  },
  { name: 'kube-public is never injected, even labelled', namespace: 'kube-public', istio: 'none' },
];

t.test("Istio's injector decides: namespace labels, revisions, pod labels, hostNetwork, never-injected", async (t) => {
  // Istio's webhook answers once istiod has its injector configuration: wait for a first injection.
  await eventually('the first injected pod', async () => {
    const pod = await createPod('ns-enabled', { labels: { warmup: 'true' } });
    return proxyOf(pod) !== undefined ? pod : undefined;
  });
  const disagreements: string[] = [];
  for (const c of cases) {
    const pod = await createPod(
      c.namespace,
      { ...(c.labels && { labels: c.labels }), ...(c.annotations && { annotations: c.annotations }) },
      c.spec,
    );
    t.equal(injectedBy(pod), c.istio, `${c.name}: ${c.istio === 'none' ? 'not injected' : `injected by ${c.istio}`}`);
    const body: V1Pod = {
      metadata: { labels: c.labels, annotations: c.annotations },
      spec: { containers: [], ...c.spec },
    };
    const prediction = await predicted(body, c.namespace);
    if (prediction !== c.istio) disagreements.push(`${c.name} (meshguard: ${prediction})`);
  }
  // meshguard's prediction (src/mesh/injection.ts sidecarOf on the discovered profile) against Istio's own answers.
  t.strictSame(disagreements, [], 'meshguard predicts exactly the pods Istio injects, and by which revision');
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
    /^Warning: meshguard namespace-injection: istio\.io\/rev=stable names no installed revision or tag \(canary, default\), so its pods get no sidecar/m,
  );
  NAMESPACES[name] = labels;
  const pod = await createPod(name, {});
  t.equal(injectedBy(pod), 'none', 'the real API server calls no injector: the pod is stored without a sidecar');
  t.equal(await predicted(pod, name), 'none', "meshguard's model agrees");
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
  t.equal(injectedBy(pod), 'none', "Istio's injector was never called for it");
});

// --- meshguard before Istio ---------------------------------------------------------------------

const istioInit = (pod: V1Pod) => pod.spec?.initContainers?.find((c) => c.name === 'istio-init');
const app = (pod: V1Pod) => pod.spec?.containers.find((c) => c.name === 'app');

t.test("the API server's order: 0-meshguard sorts before every injector configuration Helm installed", async (t) => {
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const names = (await admission.listMutatingWebhookConfiguration()).items.map((m) => m.metadata?.name ?? '');
  const istio = names.filter((n) => n.startsWith('istio-'));
  t.ok(istio.includes('istio-sidecar-injector') && istio.includes('istio-sidecar-injector-canary'), istio.join(', '));
  t.equal([...names].sort()[0], '0-meshguard', `sorted first of ${names.join(', ')}`);
});

t.test('hold: meshguard sets it, Istio puts istio-proxy first with its postStart wait', async (t) => {
  const pod = await createPod(
    'ns-enabled',
    {},
    { containers: [container({ livenessProbe: { tcpSocket: { port: 8087 } } })] },
  );
  t.match(pod.metadata?.annotations?.['proxy.istio.io/config'], /holdApplicationUntilProxyStarts: true/, 'meshguard');
  t.equal(pod.spec?.containers[0]?.name, 'istio-proxy', 'istio-proxy is the first container');
  t.match(
    pod.spec?.containers[0]?.lifecycle?.postStart?.exec?.command,
    ['pilot-agent', 'wait'],
    "Istio read meshguard's annotation: the proxy's postStart waits for it",
  );
  t.match(JSON.parse(pod.metadata?.annotations?.['sidecar.istio.io/status'] ?? '{}'), { containers: ['istio-proxy'] });
});

t.test('probes: Istio rewrites them through its agent', async (t) => {
  const pod = await createPod(
    'ns-enabled',
    {},
    {
      containers: [
        container({
          livenessProbe: { tcpSocket: { port: 8087 } },
          readinessProbe: { httpGet: { path: '/ready', port: 8080 } },
        }),
      ],
    },
  );
  t.match(app(pod)?.livenessProbe, { httpGet: { path: '/app-health/app/livez', port: 15020 } }, 'tcpSocket rewritten');
  t.match(app(pod)?.readinessProbe, { httpGet: { path: '/app-health/app/readyz', port: 15020 } }, 'httpGet rewritten');
  t.match(proxyOf(pod)?.env?.find((e) => e.name === 'ISTIO_KUBE_APP_PROBERS')?.value, /8087/, 'the agent probes 8087');
});

t.test("probes with rewriting off: meshguard's exclusion reaches Istio's init container", async (t) => {
  const pod = await createPod(
    'ns-enabled',
    { annotations: { 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' } },
    { containers: [container({ livenessProbe: { tcpSocket: { port: 8087 } } })] },
  );
  // meshguard's value, which Istio's injector then extends with its own ports.
  const annotated = pod.metadata?.annotations?.['traffic.sidecar.istio.io/excludeInboundPorts'] ?? '';
  t.ok(annotated.split(',').includes('8087'), `excludeInboundPorts ${annotated}`);
  t.match(app(pod)?.livenessProbe, { tcpSocket: { port: 8087 } }, 'not rewritten');
  const args = istioInit(pod)?.args ?? [];
  const excluded = args[args.indexOf('-d') + 1] ?? '';
  t.ok(args.includes('-d') && excluded.split(',').includes('8087'), `istio-init -d ${excluded}`);
});

t.test('a Deployment: its controller-made pod passes meshguard, then Istio', async (t) => {
  const labels = { app: 'web' };
  await apps.createNamespacedDeployment({
    namespace: 'ns-enabled',
    body: {
      metadata: { name: 'web' },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { serviceAccountName: 'default', containers: [container()] } },
      },
    },
  });
  const pod = await eventually(
    'the Deployment pod',
    async () => (await core.listNamespacedPod({ namespace: 'ns-enabled', labelSelector: 'app=web' })).items[0],
  );
  t.match(pod.metadata?.annotations?.['proxy.istio.io/config'], /holdApplicationUntilProxyStarts: true/);
  t.equal(pod.spec?.containers[0]?.name, 'istio-proxy');
  t.match(pod.spec?.containers[0]?.lifecycle?.postStart?.exec?.command, ['pilot-agent', 'wait']);
});

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

t.test(
  "drain: meshguard's EXIT_ON_ZERO_ACTIVE_CONNECTIONS reaches istio-proxy's environment, beside hold",
  async (t) => {
    const pod = await createPod(
      'ns-enabled',
      { annotations: { 'proxy.istio.io/config': "# the team's own\nconcurrency: 2\n" } },
      { terminationGracePeriodSeconds: 120 },
    );
    const text = pod.metadata?.annotations?.['proxy.istio.io/config'] ?? '';
    // hold and termination-drain edited the one annotation in one review: both keys, the user's kept.
    t.match(text, /^# the team's own\nconcurrency: 2\n/, "the user's text kept");
    t.match(text, /holdApplicationUntilProxyStarts: true/, 'hold');
    t.match(text, /EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"/, 'drain');
    const env = proxyOf(pod)?.env ?? [];
    t.equal(
      env.find((e) => e.name === 'EXIT_ON_ZERO_ACTIVE_CONNECTIONS')?.value,
      'true',
      "Istio's template put proxyMetadata into istio-proxy's environment, where the agent reads it",
    );
    t.match(pod.spec?.containers[0]?.lifecycle?.postStart?.exec?.command, ['pilot-agent', 'wait'], 'hold read too');
    t.equal(
      JSON.parse(env.find((e) => e.name === 'PROXY_CONFIG')?.value ?? '{}').concurrency,
      2,
      "the user's key reached the proxy's ProxyConfig",
    );

    // Istio's own chart sets neither drain key, and no CNI: meshguard's profile says so.
    const mesh = (await buildProfile({}, { cluster: { connection, istioNamespace: ISTIO_NS } })).mesh.current;
    for (const name of ['default', 'canary']) {
      const r = mesh.revisions.get(name);
      t.equal(r?.cni, false, `${name}: values.pilot.cni.enabled false`);
      t.equal(r?.terminationDrainDuration, undefined, `${name}: Istio's default drain`);
      t.equal(r?.exitOnZeroActiveConnections, undefined);
      t.equal(r?.proxyPreStop, false);
    }
    t.ok(istioInit(pod), 'no CNI: Istio injected istio-init, not istio-validation');
  },
);

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

t.test('ENABLE_NATIVE_SIDECARS=true: istio-proxy is a restartable init container', async (t) => {
  await istiod.restart({ ENABLE_NATIVE_SIDECARS: 'true' });
  // meshguard told the mesh runs native sidecars (mesh.nativeSidecars in its configuration).
  const config = readFileSync(defaultConfigPath, 'utf8').replace(/^mesh: \{\}$/m, 'mesh: {nativeSidecars: enabled}');
  t.match(config, /^mesh: \{nativeSidecars: enabled\}$/m);
  await core.replaceNamespacedConfigMap({
    name: 'meshguard',
    namespace: release.namespace,
    body: { metadata: { name: 'meshguard' }, data: { 'config.yaml': config } },
  });
  let lastSeen = '';
  const pod = await eventually('a native-sidecar pod', async () => {
    const p = await createPod(
      'ns-enabled',
      {},
      { containers: [container({ livenessProbe: { tcpSocket: { port: 8087 } } })] },
    );
    if (
      p.spec?.initContainers?.some((c) => c.name === 'istio-proxy') &&
      p.metadata?.annotations?.['proxy.istio.io/config'] === undefined
    )
      return p;
    lastSeen = `init ${(p.spec?.initContainers ?? []).map((c) => c.name).join(',')}; annotations ${JSON.stringify(p.metadata?.annotations ?? {})}`;
    return undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}; last pod: ${lastSeen}`);
  });
  const proxy = pod.spec?.initContainers?.find((c) => c.name === 'istio-proxy');
  t.equal(proxy?.restartPolicy, 'Always', 'a native sidecar');
  t.notOk(
    pod.spec?.containers.some((c) => c.name === 'istio-proxy'),
    'not among the regular containers',
  );
  t.equal(pod.metadata?.annotations?.['proxy.istio.io/config'], undefined, 'meshguard adds no hold');

  await batch.createNamespacedJob({
    namespace: 'ns-enabled',
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
      (await core.listNamespacedPod({ namespace: 'ns-enabled', labelSelector: 'app=native-report' })).items[0],
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
