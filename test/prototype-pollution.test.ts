// Prototype pollution: YAML with __proto__ and constructor.prototype keys, in the annotation
// proxy.istio.io/config, in the configuration (parseConfig, the store, a --config file) and in the
// manifests `meshguard check` reads, changes no global object. Every test runs everything, then
// compares the built-in prototypes with a snapshot taken before.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import pino from 'pino';
import tap from 'tap';
import type { AdmissionReviewResponse, KubeObject } from '../src/admission/types.js';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { judge } from '../src/report/index.js';
import { loadConfig } from '../src/config/load.js';
import { parseConfig } from '../src/config/parse.js';
import { ConfigStore } from '../src/config/store.js';
import { evaluate } from '../src/engine/evaluate.js';
import { Registry } from '../src/engine/registry.js';
import { compileScope } from '../src/config/scope.js';
import { readManifests } from '../src/manifests.js';
import { parseProxyConfig } from '../src/mesh/proxy-config.js';
import { policies } from '../src/policies/index.js';
import { buildApp } from '../src/server/app.js';
import { createMetrics } from '../src/server/metrics.js';
import { configOf, requestFor } from './support.js';
import { nothingDiscovered, resolveProfile } from '../src/mesh/profile.js';
import { discoverMesh } from '../src/mesh/discover.js';

// Every built-in prototype a polluted key could reach: through an object, a list, a function, a
// string or number value, a Map the code builds, and so on.
const prototypes = {
  Object: Object.prototype,
  Array: Array.prototype,
  Function: Function.prototype,
  String: String.prototype,
  Number: Number.prototype,
  Boolean: Boolean.prototype,
  Map: Map.prototype,
  Set: Set.prototype,
  RegExp: RegExp.prototype,
  Error: Error.prototype,
  Promise: Promise.prototype,
} as const;

type Snapshot = Record<string, Record<string, PropertyDescriptor>>;
const snapshot = (): Snapshot =>
  Object.fromEntries(
    Object.entries(prototypes).map(([name, proto]) => [
      name,
      Object.getOwnPropertyDescriptors(proto) as Record<string, PropertyDescriptor>,
    ]),
  );

function assertClean(t: Pick<typeof tap, 'strictSame' | 'equal'>, before: Snapshot, what: string): void {
  const after = snapshot();
  for (const [name, descriptors] of Object.entries(after)) {
    const was = before[name] ?? {};
    const added = Object.keys(descriptors).filter((k) => !(k in was));
    const changed = Object.keys(was).filter((k) => {
      const a = was[k];
      const b = descriptors[k];
      return (
        !b ||
        a?.value !== b.value ||
        a?.get !== b.get ||
        a?.set !== b.set ||
        a?.writable !== b.writable ||
        a?.enumerable !== b.enumerable
      );
    });
    t.strictSame({ added, changed }, { added: [], changed: [] }, `${what}: ${name}.prototype unchanged`);
  }
  const probe = {} as Record<string, unknown>;
  t.equal(probe.polluted, undefined, `${what}: ({}).polluted`);
  t.equal(([] as unknown as Record<string, unknown>).polluted, undefined, `${what}: [].polluted`);
  t.equal((probe.toString as () => string)(), '[object Object]', `${what}: toString still works`);
  t.equal(Object.getPrototypeOf(probe), Object.prototype, `${what}: a new object's prototype`);
}

/** YAML that tries every way js-yaml could be led to set a prototype. */
const hostileYaml = [
  '__proto__: {polluted: yes}',
  '__proto__:\n  polluted: yes\n  holdApplicationUntilProxyStarts: false\n',
  '"__proto__": {"polluted": "yes"}',
  '? __proto__\n: {polluted: yes}',
  'constructor: {prototype: {polluted: yes}}',
  'constructor:\n  prototype:\n    polluted: yes\n',
  'a: {constructor: {prototype: {polluted: yes}}}',
  'list: [{__proto__: {polluted: yes}}, {constructor: {prototype: {polluted: yes}}}]',
  'base: &b {__proto__: {polluted: yes}}\nuse: *b\n',
  '<<: {__proto__: {polluted: yes}}',
  '<<: [{__proto__: {polluted: yes}}, {constructor: {prototype: {polluted: yes}}}]',
  'x: &x {polluted: yes}\n__proto__: *x\n',
  '__proto__: [polluted]',
  '__proto__: null',
  'toString: polluted\nhasOwnProperty: polluted\nvalueOf: polluted\n__defineGetter__: polluted\n',
  'constructor.prototype.polluted: yes',
  '__proto__.polluted: yes',
];

const t = tap;
const registry = new Registry(policies);
const cluster = MemoryClusterView.fromObjects([
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
]);

const podWith = (config: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', annotations: { 'proxy.istio.io/config': config } },
  spec: { containers: [{ name: 'app', image: 'nginx' }] },
});

t.test('YAML in proxy.istio.io/config, through the engine and the HTTP edge', async (t) => {
  const before = snapshot();
  const config = configOf();
  const metrics = createMetrics();
  const app = buildApp({
    store: new ConfigStore(config, 'test'),
    registry,
    cluster,
    metrics,
    logger: pino({ level: 'silent' }),
  });
  for (const text of hostileYaml) {
    const parsed = parseProxyConfig(text);
    if (parsed.ok)
      t.equal(Object.getPrototypeOf(parsed.value), Object.prototype, `${JSON.stringify(text)}: a plain mapping`);
    const pod = podWith(text);
    const decisions = evaluate(
      { request: requestFor(pod, { namespace: 'shop' }), stage: 'mutate' },
      { registry, scope: compileScope(config), cluster, mesh: resolveProfile(config.mesh, nothingDiscovered) },
    );
    t.notOk(
      decisions.some((d) => d.outcome.result === 'error'),
      `${JSON.stringify(text)}: no policy threw`,
    );
    const res = await app.inject({
      method: 'POST',
      url: '/mutate',
      payload: {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: requestFor(pod, { namespace: 'shop', uid: 'u' }),
      },
    });
    t.equal(res.statusCode, 200);
    const { response } = res.json<AdmissionReviewResponse>();
    if (response.patch) {
      // The API server applies the patch, and Istio reads the annotation again: still no pollution.
      const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as jsonpatch.Operation[];
      const patched = jsonpatch.applyPatch(structuredClone(pod), patch, true, false).newDocument;
      const again = parseProxyConfig(patched.metadata?.annotations?.['proxy.istio.io/config'] ?? '');
      t.ok(again.ok && again.value.holdApplicationUntilProxyStarts === true, `${JSON.stringify(text)}: patched`);
    }
  }
  // JSON keys at the edge are refused before any code sees them.
  for (const payload of [
    '{"__proto__": {"polluted": true}}',
    '{"constructor": {"prototype": {"polluted": true}}}',
    '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"metadata":{"\\u005f_proto__":{"polluted":true}}}}}',
  ]) {
    const res = await app.inject({
      method: 'POST',
      url: '/mutate',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    t.equal(res.statusCode, 400, `${payload.slice(0, 40)}: 400`);
  }
  await app.close();
  assertClean(t, before, 'annotation');
});

t.test('YAML in the configuration: parseConfig, the store, a --config file', async (t) => {
  const before = snapshot();
  const configs = [
    ...hostileYaml,
    'policies: {__proto__: {mode: off}}',
    'policies:\n  hold-application-until-proxy-starts: {mode: warn, __proto__: {polluted: yes}}\n',
    'policies:\n  constructor: {prototype: {polluted: yes}}\n',
    'overrides:\n- namespaces: [shop]\n  policies: {__proto__: {mode: off}}\n',
    'overrides:\n- namespaces: [shop]\n  policies: {constructor: {mode: off}}\n',
    'overrides:\n- namespaces: [shop]\n  __proto__: {mode: warn}\n',
    'overrides:\n- {namespaces: [shop], policies: {hold-application-until-proxy-starts: {mode: off, constructor: {prototype: {polluted: yes}}}}}\n',
    'excludeNamespaces: {__proto__: [x]}',
    'mode: warn\n<<: {__proto__: {mode: enforce}}\n',
  ];
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-pollution-'));
  const store = new ConfigStore(configOf(), 'test');
  let accepted = 0;
  for (const [i, text] of configs.entries()) {
    const parsed = parseConfig(text);
    if (parsed.ok) {
      accepted++;
      // Whatever took effect is a usable configuration.
      const scope = compileScope(parsed.config);
      for (const p of policies)
        t.ok(
          ['enforce', 'warn', 'off'].includes(scope.modeOf(p.id, 'shop')),
          `${JSON.stringify(text)}: ${p.id} has a mode`,
        );
    }
    store.setBase(text, `case ${i}`);
    store.setOverlay(text, `overlay ${i}`);
    const file = join(dir, `config-${i}.yaml`);
    writeFileSync(file, text);
    await loadConfig(file).catch(() => undefined);
  }
  t.ok(accepted < configs.length, `${configs.length - accepted} of ${configs.length} refused by the schema`);
  assertClean(t, before, 'configuration');
});

t.test('manifests read by meshguard check', async (t) => {
  const before = snapshot();
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-pollution-'));
  const docs = [
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {istio-injection: enabled, __proto__: {polluted: yes}}\n',
    'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, __proto__: {polluted: yes}}\nspec:\n  selector: {app: web, __proto__: {polluted: yes}, constructor: {prototype: {polluted: yes}}}\n  ports: [{port: 80, __proto__: {polluted: yes}}]\n',
    'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: db, namespace: shop}\nspec: {hosts: [db.example.com], ports: [{number: 3306, protocol: TCP}], __proto__: {addresses: [1.2.3.4]}}\n',
    'apiVersion: v1\nkind: Service\nmetadata: {name: mysql, namespace: shop}\nspec: {type: ExternalName, externalName: db2.example.com, ports: [{port: 3306}], constructor: {prototype: {polluted: yes}}}\n',
    'defaults: &d {__proto__: {polluted: yes}}\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: shop\n  labels: {app: web}\n  annotations:\n    proxy.istio.io/config: "__proto__: {polluted: yes}"\n    __proto__: "polluted"\n  <<: *d\nspec:\n  containers:\n  - {name: app, image: nginx, livenessProbe: {tcpSocket: {port: 8087}}, __proto__: {command: [sh]}}\n',
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: shop}\nspec:\n  template:\n    metadata: {__proto__: {annotations: {x: y}}, constructor: {prototype: {polluted: yes}}}\n    spec: {containers: [{name: a, command: [sh, -c], args: [x]}]}\n',
    'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: q, namespace: shop, ownerReferences: [{kind: Job, __proto__: {kind: Job}}]}, spec: {containers: [{name: a, command: [sh]}]}}\n- __proto__: {polluted: yes}\n',
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: ns1}\nspec: {host: web.shop.svc.cluster.local, __proto__: {exportTo: ["."]}}\n',
  ];
  writeFileSync(join(dir, 'all.yaml'), docs.join('---\n'));
  writeFileSync(join(dir, 'config.yaml'), 'mode: enforce\n__proto__: {mode: warn}\n');
  const { manifests, errors } = await readManifests([join(dir, 'all.yaml')], async () => '');
  t.strictSame(errors, [], 'every document read');
  t.ok(manifests.length >= 8, `${manifests.length} objects read`);
  const config = await loadConfig(join(dir, 'config.yaml')).then(
    (c) => c.config,
    () => configOf(),
  );
  const reports = judge(
    manifests.map((m) => ({ ...m, namespace: m.object.metadata?.namespace ?? null })),
    {
      registry,
      scope: compileScope(config),
      cluster: MemoryClusterView.fromObjects(manifests.map((m) => m.object)),
      mesh: resolveProfile(config.mesh, discoverMesh(manifests.map((m) => m.object))),
    },
    { diff: true },
  );
  t.equal(reports.length, manifests.length, 'every object judged');
  t.notOk(
    reports.some((r) => r.findings.some((f) => f.action === 'error')),
    'no policy threw',
  );
  assertClean(t, before, 'check');
});
