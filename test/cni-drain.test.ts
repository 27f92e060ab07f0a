// Istio CNI and the proxy's drain, as the mesh profile learns them per revision (the injector
// ConfigMap's values, the istio[-<rev>] mesh config, `mesh:`), and the one proxy.istio.io/config
// that hold-application-until-proxy-starts and termination-drain write together.
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import jsonpatch from 'fast-json-patch';
import yaml from 'js-yaml';
import t from 'tap';
import { mergePatches, pointer, type PatchOp } from '../src/admission/patch.js';
import type { KubeObject } from '../src/admission/types.js';
import { evaluate } from '../src/engine/evaluate.js';
import { verdictOf } from '../src/engine/verdict.js';
import { discoverMesh } from '../src/mesh/discover.js';
import { resolveProfile } from '../src/mesh/profile.js';
import {
  combineProxyConfig,
  mergeProxyConfigs,
  parseProxyConfig,
  PROXY_CONFIG,
  withProxyMetadata,
} from '../src/mesh/proxy-config.js';
import { packageRoot } from '../src/paths.js';
import hold from '../src/policies/hold-application-until-proxy-starts.js';
import drain from '../src/policies/termination-drain.js';
import cniPolicy from '../src/policies/init-containers-network.js';
import { judge } from '../src/report/index.js';
import { configOf, engineOf, requestFor } from './support.js';

const injectorValues = (name: string, values: unknown, rev?: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'istio-system', ...(rev && { labels: { 'istio.io/rev': rev } }) },
  data: { config: 'policy: enabled\n', values: JSON.stringify(values) },
});
const meshConfig = (name: string, mesh: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'istio-system' },
  data: { mesh },
});
const istiod = (name: string, version: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'istio-system', labels: { 'app.kubernetes.io/version': version } },
  spec: { template: { spec: { containers: [{ name: 'discovery', image: `istio/pilot:${version}` }] } } },
});

t.test('CNI per revision: the values key its own release reads', async (t) => {
  const found = discoverMesh([
    // 1.23 reads either key; 1.24 only pilot.cni; 1.21 only istio_cni.
    injectorValues('istio-sidecar-injector-old', { istio_cni: { enabled: true } }, 'old'),
    istiod('istiod-old', '1.23.6'),
    injectorValues('istio-sidecar-injector-new', { istio_cni: { enabled: true } }, 'new'),
    istiod('istiod-new', '1.24.6'),
    injectorValues('istio-sidecar-injector-older', { pilot: { cni: { enabled: true } } }, 'older'),
    istiod('istiod-older', '1.21.6'),
    injectorValues('istio-sidecar-injector', { pilot: { cni: { enabled: true } } }),
  ]);
  t.strictSame(found.problems, []);
  const mesh = resolveProfile({}, found);
  t.equal(mesh.revisions.get('old')?.cni, true, '1.23: istio_cni.enabled read');
  t.equal(mesh.revisions.get('new')?.cni, false, '1.24: istio_cni.enabled no longer read');
  t.equal(mesh.revisions.get('older')?.cni, false, '1.21: pilot.cni.enabled not read yet');
  t.equal(mesh.revisions.get('default')?.cni, true, 'newest release: pilot.cni.enabled');
  t.equal(mesh.origins.cni, 'discovered');
  const declared = resolveProfile({ cni: false }, found);
  t.equal(declared.revisions.get('default')?.cni, false, 'mesh.cni overrides discovery');
  t.equal(declared.origins.cni, 'configured');
  t.equal(resolveProfile({}, discoverMesh([])).revisions.get('default')?.cni, false, 'default: off');
});

t.test("drain settings from each revision's own mesh config, and the proxy's lifecycle", async (t) => {
  const found = discoverMesh([
    meshConfig('istio', 'defaultConfig:\n  proxy_metadata:\n    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "false"\n'),
    meshConfig('istio-canary', 'defaultConfig:\n  termination_drain_duration: 30s\n'),
    injectorValues('istio-sidecar-injector-canary', { global: { proxy: { lifecycle: { preStop: {} } } } }, 'canary'),
    injectorValues('istio-sidecar-injector-blue', { global: { proxy: { lifecycle: { postStart: {} } } } }, 'blue'),
  ]);
  const mesh = resolveProfile({}, found);
  const rev = (name: string) => mesh.revisions.get(name);
  t.equal(rev('default')?.exitOnZeroActiveConnections, 'false', 'snake-case proxy_metadata read');
  t.equal(rev('default')?.terminationDrainDuration, undefined);
  t.equal(rev('canary')?.terminationDrainDuration, '30s', 'snake-case termination_drain_duration read');
  t.equal(rev('canary')?.exitOnZeroActiveConnections, undefined, 'revisions keep their own mesh config');
  t.equal(rev('canary')?.proxyPreStop, true, 'global.proxy.lifecycle with a preStop');
  t.equal(rev('blue')?.proxyPreStop, false, 'a lifecycle without preStop');
  const declared = resolveProfile({ exitOnZeroActiveConnections: true, terminationDrainDuration: '9s' }, found);
  t.equal(declared.revisions.get('canary')?.exitOnZeroActiveConnections, 'true');
  t.equal(declared.revisions.get('canary')?.terminationDrainDuration, '9s');
  t.equal(declared.origins.terminationDrainDuration, 'configured');
});

t.test('the schema takes the new mesh keys and refuses what Istio would not read', async (t) => {
  t.doesNotThrow(() =>
    configOf({
      mesh: { cni: true, terminationDrainDuration: '1.5s', exitOnZeroActiveConnections: false, proxyPreStop: true },
    }),
  );
  t.throws(
    () => configOf({ mesh: { terminationDrainDuration: '1m' } }),
    /terminationDrainDuration/,
    'protobuf JSON: seconds only',
  );
  t.throws(() => configOf({ mesh: { cni: 'yes' } }), /cni/);
});

t.test('proxyMetadata entries are merged into the text, keeping the rest', async (t) => {
  const add = (text: string) => {
    const parsed = parseProxyConfig(text);
    if (!parsed.ok) throw new Error(parsed.problem);
    return withProxyMetadata(text, parsed.value, 'EXIT_ON_ZERO_ACTIVE_CONNECTIONS', 'true');
  };
  t.equal(add(''), 'proxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"\n');
  t.equal(
    add('# c\nconcurrency: 2'),
    '# c\nconcurrency: 2\nproxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"\n',
  );
  t.equal(
    add('proxyMetadata: # env\n   A: "1"\nconcurrency: 2\n'),
    'proxyMetadata: # env\n   EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"\n   A: "1"\nconcurrency: 2\n',
  );
  // A block scalar ending the text cannot take a line after it: re-written, same meaning.
  const out = add('text: |+\n  kept\n\n');
  const parsed = parseProxyConfig(out);
  t.ok(parsed.ok);
  if (parsed.ok)
    t.strictSame(parsed.value, { text: 'kept\n\n', proxyMetadata: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' } });
});

t.test('two texts of one annotation combine into one with both keys', async (t) => {
  const base = 'concurrency: 2\n';
  const held = `${base}holdApplicationUntilProxyStarts: true\n`;
  const drained = `${base}proxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"\n`;
  const both = {
    concurrency: 2,
    holdApplicationUntilProxyStarts: true,
    proxyMetadata: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' },
  };
  for (const [a, b] of [
    [held, drained],
    [drained, held],
  ] as const) {
    const merged = parseProxyConfig(mergeProxyConfigs(a, b));
    t.ok(merged.ok);
    if (merged.ok) t.strictSame(merged.value, both);
  }
  t.equal(mergeProxyConfigs(held, drained), `${drained}holdApplicationUntilProxyStarts: true\n`, 'bytes kept');
  const path = pointer('metadata', 'annotations', PROXY_CONFIG);
  t.equal(combineProxyConfig('/metadata/annotations/other', 'a', 'b'), 'b', 'other paths: the later value');
  // Two ops on one annotation fold into one; ops elsewhere are untouched.
  const merged = mergePatches(
    [
      [{ op: 'replace', path, value: held }],
      [
        { op: 'replace', path, value: drained },
        { op: 'add', path: '/x', value: 1 },
      ],
    ],
    combineProxyConfig,
  );
  t.equal(merged.length, 2);
  t.strictSame(merged[1], { op: 'add', path: '/x', value: 1 });
  // Array appends are never folded.
  const appends = mergePatches([
    [{ op: 'add', path: '/spec/initContainers/-', value: { name: 'a' } }],
    [{ op: 'add', path: '/spec/initContainers/-', value: { name: 'b' } }],
  ]);
  t.equal(appends.length, 2);
});

const pod = (annotations?: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'app', namespace: 'shop', ...(annotations && { annotations }) },
  spec: { containers: [{ name: 'app', image: 'example/app:1' }] },
});
const shop = {
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } },
};

t.test('hold and drain in one review: one valid annotation, with both keys, and nothing more to do', async (t) => {
  const engine = engineOf({
    policies: [hold, drain],
    config: configOf({ mesh: { nativeSidecars: 'disabled' } }),
    cluster: [shop],
  });
  const cases: (Record<string, string> | undefined)[] = [
    undefined,
    {},
    { other: 'x' },
    { [PROXY_CONFIG]: '# mine\nconcurrency: 2\n' },
  ];
  for (const annotations of cases) {
    const object = pod(annotations);
    const review = () =>
      verdictOf(evaluate({ request: requestFor(object), stage: 'mutate' }, engine), engine.scope.config);
    const { patch } = review();
    t.equal(patch.length, 1, `one op (${JSON.stringify(annotations)})`);
    const patched = jsonpatch.applyPatch(structuredClone(object), patch as jsonpatch.Operation[], true, false)
      .newDocument as KubeObject;
    const text = patched.metadata?.annotations?.[PROXY_CONFIG] ?? '';
    const parsed = parseProxyConfig(text);
    t.ok(parsed.ok);
    if (parsed.ok) {
      t.equal(parsed.value.holdApplicationUntilProxyStarts, true);
      t.strictSame(parsed.value.proxyMetadata, { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' });
    }
    if (annotations?.[PROXY_CONFIG]) t.ok(text.startsWith('# mine\nconcurrency: 2\n'), 'the user text kept');
    if (annotations?.other) t.equal(patched.metadata?.annotations?.other, 'x');
    const again = verdictOf(evaluate({ request: requestFor(patched), stage: 'mutate' }, engine), engine.scope.config);
    t.strictSame(again.patch, [] as PatchOp[], 'idempotent');
  }
});

t.test('check on a Deployment: both template patches combine too', async (t) => {
  const engine = engineOf({
    policies: [hold, drain, cniPolicy],
    config: configOf({ mesh: { nativeSidecars: 'disabled', cni: true } }),
    cluster: [shop],
  });
  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { initContainers: [{ name: 'migrate', image: 'm' }], containers: [{ name: 'web', image: 'nginx' }] },
      },
    },
  };
  const [report] = judge([{ object: deployment, source: 'x.yaml', document: 0, line: 1, namespace: 'shop' }], engine, {
    diff: false,
  });
  const patch = report?.patch ?? [];
  t.equal(patch.length, 1);
  const patched = jsonpatch.applyPatch(structuredClone(deployment), patch as jsonpatch.Operation[], true, false)
    .newDocument as { spec: { template: { metadata: { annotations: Record<string, string> } } } };
  const parsed = parseProxyConfig(patched.spec.template.metadata.annotations[PROXY_CONFIG] ?? '');
  t.ok(parsed.ok && parsed.value.holdApplicationUntilProxyStarts === true && parsed.value.proxyMetadata);
  t.ok(
    report?.findings.some((f) => f.policy === 'init-containers-network' && /migrate/.test(f.message)),
    'the init container is reported',
  );
});

t.test('meshguard mesh shows CNI and the drain per revision, with their origins', async (t) => {
  const objects = [
    injectorValues('istio-sidecar-injector', { pilot: { cni: { enabled: true } } }),
    meshConfig('istio', 'defaultConfig:\n  terminationDrainDuration: 20s\n'),
  ];
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(packageRoot, 'src/cli.ts'), 'mesh', '-'], {
    input: objects.map((o) => yaml.dump(o)).join('---\n'),
    encoding: 'utf8',
    cwd: packageRoot,
  });
  t.equal(r.status, 0, r.stderr);
  t.match(
    r.stdout,
    /cni true \(discovered\), terminationDrainDuration 20s \(discovered\), proxyPreStop false \(default\)/,
  );
  t.match(r.stdout, /termination-drain: default: .*nothing to do: the mesh sets terminationDrainDuration 20s/);
  t.match(r.stdout, /init-containers-network: default: Istio CNI/);
});
