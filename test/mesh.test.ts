// The mesh profile: label selectors as Kubernetes evaluates them, the default install's webhooks
// against Istio's recorded ones, discovery from Istio's objects, and the injection decision.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t from 'tap';
import type { KubeObject } from '../src/admission/types.js';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { ConfigStore } from '../src/config/store.js';
import { discoverMesh } from '../src/mesh/discover.js';
import { sidecarOf, statusPort } from '../src/mesh/injection.js';
import { chartWebhooks, nothingDiscovered, resolveProfile } from '../src/mesh/profile.js';
import { showVersion } from '../src/mesh/releases.js';
import { compileSelector, parseSelector } from '../src/mesh/selector.js';
import { MeshStore } from '../src/mesh/store.js';
import { packageRoot } from '../src/paths.js';
import { configOf } from './support.js';

// Vendored from Istio's recorded data (test/fixtures/istio/README.md): npm test needs nothing beside the clone.
const SELECTORS = join(packageRoot, 'test', 'fixtures', 'istio', 'webhook', 'SELECTORS.yaml');

t.test('label selectors as the API server evaluates them', async (t) => {
  const m = compileSelector({
    matchLabels: { a: '1' },
    matchExpressions: [
      { key: 'b', operator: 'NotIn', values: ['false'] },
      { key: 'c', operator: 'DoesNotExist' },
    ],
  });
  t.ok(m({ a: '1' }), 'NotIn and DoesNotExist hold when the key is absent');
  t.ok(m({ a: '1', b: 'yes' }));
  t.notOk(m({ a: '1', b: 'false' }));
  t.notOk(m({ a: '1', c: '' }), 'an empty value still exists');
  t.notOk(m({ a: '2' }));
  const exists = compileSelector({ matchExpressions: [{ key: 'x', operator: 'Exists' }] });
  t.ok(exists({ x: '' }));
  t.notOk(exists({}));
  t.notOk(compileSelector({ matchExpressions: [{ key: 'x', operator: 'In', values: ['a'] }] })({}));
  t.ok(compileSelector({})({ anything: 'x' }), 'an empty selector matches everything');
  t.notOk(parseSelector({ matchExpressions: [{ key: 'x', operator: 'In' }] }).ok, 'In needs values');
  t.notOk(parseSelector({ matchExpressions: [{ key: 'x', operator: 'Exists', values: ['a'] }] }).ok);
  t.notOk(parseSelector({ matchExpressions: [{ key: 'x', operator: 'Gt', values: ['1'] }] }).ok);
});

interface RecordedInstall {
  install: string;
  values: { revision: string; revisionTags: string[] };
  webhooks: { name: string; namespaceSelector: unknown; objectSelector: unknown }[];
}

t.test("a default install's webhooks are Istio's, as recorded in Istio's data (test/fixtures/istio)", async (t) => {
  const recorded = yaml.load(readFileSync(SELECTORS, 'utf8')) as { installs: RecordedInstall[] };
  for (const install of recorded.installs.filter((i) => i.values.revisionTags.length === 0)) {
    const ours = chartWebhooks(install.values.revision);
    t.strictSame(
      ours.map((w) => ({ name: w.name, namespaceSelector: w.namespaceSelector, objectSelector: w.objectSelector })),
      install.webhooks.map((w) => ({
        name: w.name,
        namespaceSelector: w.namespaceSelector,
        objectSelector: w.objectSelector,
      })),
      install.install,
    );
  }
});

const ns = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
const pod = (
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
  spec: Record<string, unknown> = {},
): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', labels, annotations },
  spec: { containers: [{ name: 'app', image: 'x' }], ...spec },
});

const cluster = MemoryClusterView.fromObjects([
  ns('plain'),
  ns('enabled', { 'istio-injection': 'enabled' }),
  ns('disabled', { 'istio-injection': 'disabled' }),
  ns('rev-canary', { 'istio.io/rev': 'canary' }),
  ns('rev-missing', { 'istio.io/rev': 'nope' }),
  ns('kube-node-lease', { 'istio-injection': 'enabled' }),
  ns('local-path-storage', { 'istio-injection': 'enabled' }),
]);

t.test('will Istio inject this pod? the situations meshguard used to get wrong', async (t) => {
  const mesh = resolveProfile({ nativeSidecars: 'disabled', revisions: ['default', 'canary'] }, nothingDiscovered);
  const proxy = (p: KubeObject, namespace: string) => sidecarOf(p, namespace, cluster, mesh).proxy;
  t.equal(proxy(pod(), 'enabled'), 'classic');
  t.equal(
    proxy(pod({ 'sidecar.istio.io/inject': 'true' }), 'disabled'),
    'none',
    'istio-injection=disabled: never called',
  );
  t.equal(proxy(pod({}, { 'sidecar.istio.io/inject': 'true' }), 'plain'), 'none', 'an annotation never opts in');
  t.equal(proxy(pod({ 'sidecar.istio.io/inject': 'true' }), 'plain'), 'classic', 'the pod label opts in');
  t.equal(proxy(pod({ 'istio.io/rev': 'canary' }), 'plain'), 'classic', 'a pod revision label opts in');
  t.equal(proxy(pod(), 'rev-canary'), 'classic');
  t.equal(proxy(pod(), 'rev-missing'), 'none', 'a revision that is not installed');
  t.equal(proxy(pod(), 'kube-node-lease'), 'none');
  t.equal(proxy(pod(), 'local-path-storage'), 'none');
  t.equal(proxy(pod({}, {}, { hostNetwork: true }), 'enabled'), 'none');
  t.equal(proxy(pod({}, { 'sidecar.istio.io/inject': 'false' }), 'enabled'), 'none', 'an annotation opts out');
  t.equal(proxy(pod({ 'sidecar.istio.io/inject': 'no' }), 'enabled'), 'classic', '1.27+: only exact false opts out');
  t.equal(proxy(pod(), 'unknown-ns'), 'unknown', 'an unknown namespace: cannot tell');
  const old = resolveProfile({ istioVersion: '1.20' }, nothingDiscovered);
  t.equal(sidecarOf(pod({ 'sidecar.istio.io/inject': 'no' }), 'enabled', cluster, old).proxy, 'none', 'before 1.27');
});

t.test('native sidecars: the setting, the kubelets and the pod annotation', async (t) => {
  const kind = (declared: Parameters<typeof resolveProfile>[0], annotations: Record<string, string> = {}) =>
    sidecarOf(pod({}, annotations), 'enabled', cluster, resolveProfile(declared, nothingDiscovered)).proxy;
  t.equal(kind({}), 'unknown', 'auto with unknown kubelets');
  t.equal(kind({ kubeletVersion: '1.33' }), 'native');
  t.equal(kind({ kubeletVersion: '1.32' }), 'classic');
  t.equal(kind({ nativeSidecars: 'disabled' }, { 'sidecar.istio.io/nativeSidecar': 'true' }), 'native');
  t.equal(kind({ nativeSidecars: 'enabled' }, { 'sidecar.istio.io/nativeSidecar': 'false' }), 'classic');
  t.equal(kind({ nativeSidecars: 'disabled' }, { 'sidecar.istio.io/nativeSidecar': 'yes' }), 'native', '1.27+');
  t.equal(
    kind({ istioVersion: '1.25', nativeSidecars: 'disabled' }, { 'sidecar.istio.io/nativeSidecar': 'yes' }),
    'classic',
  );
  t.equal(kind({ istioVersion: '1.26' }), 'classic', 'default off before 1.27');
  t.equal(kind({ istioVersion: '1.11', nativeSidecars: 'enabled' }), 'classic', 'none before 1.19');
});

const mwc = (name: string, rev: string, webhooks: unknown[]) => ({
  apiVersion: 'admissionregistration.k8s.io/v1',
  kind: 'MutatingWebhookConfiguration',
  metadata: { name, labels: { 'istio.io/rev': rev, app: 'sidecar-injector' } },
  webhooks,
});

t.test("discovered from Istio's objects", async (t) => {
  const recorded = yaml.load(readFileSync(SELECTORS, 'utf8')) as { installs: RecordedInstall[] };
  const canary = recorded.installs.find((i) => i.values.revision === 'canary' && i.values.revisionTags.length === 0);
  const prod = recorded.installs.find((i) => i.values.revisionTags.includes('prod'));
  t.ok(canary && prod);
  const found = discoverMesh([
    mwc('istio-sidecar-injector-canary', 'canary', canary?.webhooks ?? []),
    mwc('istio-revision-tag-prod', 'canary', prod?.webhooks ?? []),
    {
      kind: 'ConfigMap',
      metadata: {
        name: 'istio-sidecar-injector-canary',
        namespace: 'istio-system',
        labels: { 'istio.io/rev': 'canary' },
      },
      data: {
        config: 'policy: enabled\nneverInjectSelector:\n- matchLabels: {batch: "true"}\n',
        values: JSON.stringify({ sidecarInjectorWebhook: { rewriteAppHTTPProbe: false } }),
      },
    },
    {
      kind: 'ConfigMap',
      metadata: { name: 'istio-canary', namespace: 'istio-system' },
      data: { mesh: 'rootNamespace: mesh-root\ndefaultConfig:\n  holdApplicationUntilProxyStarts: true\n' },
    },
    {
      kind: 'ConfigMap',
      metadata: { name: 'istio-ca-root-cert', namespace: 'istio-system' },
      data: { 'root-cert.pem': 'x' },
    },
    {
      kind: 'Deployment',
      metadata: { name: 'istiod-canary', namespace: 'istio-system', labels: { 'istio.io/rev': 'canary' } },
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: 'discovery',
                image: 'docker.io/istio/pilot:1.29.2',
                env: [{ name: 'ENABLE_NATIVE_SIDECARS', value: 'false' }],
              },
            ],
          },
        },
      },
    },
    { kind: 'Node', metadata: { name: 'n1' }, status: { nodeInfo: { kubeletVersion: 'v1.34.1' } } },
    { kind: 'Node', metadata: { name: 'n2' }, status: { nodeInfo: { kubeletVersion: 'v1.32.5' } } },
  ]);
  t.strictSame(found.problems, []);
  t.equal(found.oldestKubeletMinor, 32);
  t.strictSame([...found.revisions.keys()], ['canary'], 'istio-ca-root-cert is no revision');
  const mesh = resolveProfile({}, found);
  t.equal(showVersion(mesh.version), '1.29');
  t.equal(mesh.rootNamespace, 'mesh-root');
  const canaryRev = mesh.revisions.get('canary');
  t.equal(canaryRev?.nativeSidecars, 'disabled');
  t.equal(canaryRev?.rewriteProbes, false);
  t.equal(canaryRev?.holdApplicationUntilProxyStarts, true);
  t.equal(mesh.webhooks[0]?.configuration, 'istio-revision-tag-prod', 'configurations in name order');
  const tagged = MemoryClusterView.fromObjects([
    ns('shop', { 'istio.io/rev': 'prod' }),
    ns('legacy', { 'istio-injection': 'enabled' }),
  ]);
  const s = sidecarOf(pod(), 'shop', tagged, mesh);
  t.equal(s.proxy, 'classic', 'a tag routes to its revision');
  t.equal(s.proxy !== 'none' && s.revision?.name, 'canary');
  t.equal(sidecarOf(pod({ batch: 'true' }), 'shop', tagged, mesh).proxy, 'none', 'neverInjectSelector');
  t.equal(sidecarOf(pod(), 'legacy', tagged, mesh).proxy, 'none', 'no default revision installed');
  t.equal(resolveProfile({ rootNamespace: 'declared' }, found).rootNamespace, 'declared', 'configuration overrides');
});

t.test('the status port and the store following the configuration', async (t) => {
  t.equal(statusPort(pod({}, { 'status.sidecar.istio.io/port': '15999' })), 15999);
  t.equal(statusPort(pod({}, { 'status.sidecar.istio.io/port': 'x' })), undefined, 'Istio rejects such a pod');
  t.equal(statusPort(pod()), 15020);
  const config = new ConfigStore(configOf(), 'test');
  const store = MeshStore.following(config);
  t.equal(showVersion(store.current.version), '1.31');
  config.setBase('mesh: {istioVersion: "1.11"}', 'file');
  t.equal(showVersion(store.current.version), '1.11', 'a configuration change takes effect');
  const before = store.current;
  config.setBase('mesh: {istioVersion: nope}', 'file');
  t.equal(store.current, before, 'an invalid configuration changes nothing');
});

t.test('meshguard mesh: the profile from manifests, and the webhook ordering', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const injector = mwc('istio-sidecar-injector', 'default', [
    { name: 'namespace.sidecar-injector.istio.io', namespaceSelector: {}, objectSelector: {} },
  ]);
  const ours = (name: string) => ({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: [{ name: 'mutate.meshguard.io' }],
  });
  const run = (objects: unknown[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(packageRoot, 'src/cli.ts'), 'mesh', '-'], {
      input: objects.map((o) => yaml.dump(o)).join('---\n'),
      encoding: 'utf8',
      cwd: packageRoot,
    });
  const good = run([ours('0-meshguard'), injector]);
  t.equal(good.status, 0, good.stderr);
  t.match(good.stdout, /webhook ordering: 0-meshguard runs before istio-sidecar-injector: ok/);
  t.match(good.stdout, /istio-sidecar-injector\/namespace\.sidecar-injector\.istio\.io → default/);
  const bad = run([ours('meshguard'), injector]);
  t.match(bad.stdout, /webhook ordering: meshguard runs AFTER istio-sidecar-injector/);
});

t.test('version edges of the injector: 1.11 reads no label, auto before 1.27 is off', async (t) => {
  const old = resolveProfile({ istioVersion: '1.11' }, nothingDiscovered);
  t.equal(
    sidecarOf(pod({ 'sidecar.istio.io/inject': 'no' }), 'enabled', cluster, old).proxy,
    'classic',
    '1.11: the label is ignored',
  );
  t.equal(sidecarOf(pod({}, { 'sidecar.istio.io/inject': 'false' }), 'enabled', cluster, old).proxy, 'none');
  const v12 = resolveProfile({ istioVersion: '1.12' }, nothingDiscovered);
  t.equal(sidecarOf(pod({ 'sidecar.istio.io/inject': 'no' }), 'enabled', cluster, v12).proxy, 'none', '1.12-1.26: no');
  const autoOld = resolveProfile(
    { istioVersion: '1.26', nativeSidecars: 'auto', kubeletVersion: '1.34' },
    nothingDiscovered,
  );
  t.equal(sidecarOf(pod(), 'enabled', cluster, autoOld).proxy, 'classic', '"auto" on a boolean setting');
});

t.test("a source-built chart's placeholder version is said, not believed; the image tag is", async (t) => {
  const istiod = (image: string) =>
    discoverMesh([
      {
        kind: 'Deployment',
        metadata: { name: 'istiod', labels: { 'app.kubernetes.io/version': '1.0.0' } },
        spec: { template: { spec: { containers: [{ name: 'discovery', image }] } } },
      },
    ]);
  const latest = istiod('docker.io/istio/pilot:latest');
  t.match(latest.problems, [/Deployment istiod: version 1\.0 is no Istio release/]);
  t.equal(showVersion(resolveProfile({}, latest).version), '1.31', 'the newest release');
  for (const image of [
    'docker.io/istio/pilot:1.20.3',
    'localhost:5000/istio/pilot:1.20.3',
    'docker.io/istio/pilot:1.20.3@sha256:0d5b2ad3c2f1e0a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5',
  ]) {
    const tagged = istiod(image);
    t.strictSame(tagged.problems, [], image);
    t.equal(showVersion(resolveProfile({}, tagged).version), '1.20', `${image}: the tag says which Istio it is`);
  }
  t.match(istiod('docker.io/istio/pilot:1.2.3').problems, [/version 1\.0 is no Istio release/], 'both too old');
});
