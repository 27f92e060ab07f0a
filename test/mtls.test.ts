// The effective mTLS mode (src/mesh/mtls.ts) against Istio's ComposePeerAuthentication rules
// (pilot/pkg/security/authn/policy_applier.go, pilot/pkg/model/authentication.go), and the cluster
// view's PeerAuthentication and DestinationRule records and indices.
import t from 'tap';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { destinationRuleRecord, peerAuthenticationRecord } from '../src/cluster/records.js';
import { covers, moreSpecific, overlap, serviceScope, tlsFor } from '../src/mesh/destination-rules.js';
import { effectiveMtls, possibleWorkloadMtls, portMtls, showMtls, workloadMtls } from '../src/mesh/mtls.js';

const ROOT = 'istio-system';

const pa = (
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
  creationTimestamp?: string,
): Record<string, unknown> => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name, namespace, ...(creationTimestamp && { creationTimestamp }) },
  spec,
});
const strict = { mtls: { mode: 'STRICT' } };
const permissive = { mtls: { mode: 'PERMISSIVE' } };
const view = (...objects: unknown[]) => MemoryClusterView.fromObjects(objects);
const mode = (v: MemoryClusterView, ns: string, labels: Record<string, string>, port = 8080) =>
  effectiveMtls(v, ROOT, ns, labels, port).mode;

t.test('no PeerAuthentication: PERMISSIVE, Istio default', async (t) => {
  const m = effectiveMtls(view(), ROOT, 'shop', { app: 'web' }, 8080);
  t.equal(m.mode, 'PERMISSIVE');
  t.equal(showMtls(m), "PERMISSIVE (Istio's default)");
});

t.test('mesh-wide, then namespace, then workload; UNSET inherits', async (t) => {
  t.equal(mode(view(pa(ROOT, 'default', strict)), 'shop', {}), 'STRICT', 'mesh-wide in the root namespace');
  t.equal(
    mode(view(pa(ROOT, 'default', strict), pa('shop', 'ns', permissive)), 'shop', {}),
    'PERMISSIVE',
    'the namespace overrides the mesh',
  );
  t.equal(
    mode(view(pa(ROOT, 'default', strict), pa('shop', 'ns', { mtls: { mode: 'UNSET' } })), 'shop', {}),
    'STRICT',
    'namespace UNSET inherits the mesh',
  );
  t.equal(
    mode(view(pa(ROOT, 'default', strict), pa('shop', 'ns', {})), 'shop', {}),
    'STRICT',
    'no mtls at all is UNSET',
  );
  t.equal(mode(view(pa(ROOT, 'default', {})), 'shop', {}), 'PERMISSIVE', 'mesh UNSET: PERMISSIVE');
  const v = view(
    pa('shop', 'ns', strict),
    pa('shop', 'web', { selector: { matchLabels: { app: 'web' } }, ...permissive }),
  );
  t.equal(mode(v, 'shop', { app: 'web', v: '1' }), 'PERMISSIVE', 'a selector that matches wins');
  t.equal(mode(v, 'shop', { app: 'db' }), 'STRICT', 'a selector that does not match is ignored');
  t.equal(mode(v, 'other', { app: 'web' }), 'PERMISSIVE', 'other namespaces are not concerned');
  const empty = view(pa('shop', 'ns', { selector: { matchLabels: {} }, ...strict }));
  t.equal(mode(empty, 'shop', { app: 'x' }), 'STRICT', 'empty matchLabels: namespace-wide');
});

t.test('the oldest wins in each scope; equal times by name', async (t) => {
  const v = view(pa('shop', 'b', strict, '2024-01-01T00:00:00Z'), pa('shop', 'a', permissive, '2024-06-01T00:00:00Z'));
  t.equal(mode(v, 'shop', {}), 'STRICT', 'older b beats a');
  const tie = view(
    pa('shop', 'b', strict, '2024-01-01T00:00:00Z'),
    pa('shop', 'a', permissive, '2024-01-01T00:00:00Z'),
  );
  t.equal(mode(tie, 'shop', {}), 'PERMISSIVE', 'same second: a before b');
  const workloads = view(
    pa('shop', 'new', { selector: { matchLabels: { app: 'web' } }, ...strict }, '2025-01-01T00:00:00Z'),
    pa('shop', 'old', { selector: { matchLabels: { tier: 'front' } }, ...permissive }, '2023-01-01T00:00:00Z'),
  );
  t.equal(mode(workloads, 'shop', { app: 'web', tier: 'front' }), 'PERMISSIVE', 'the oldest selecting one');
  t.equal(mode(workloads, 'shop', { app: 'web' }), 'STRICT');
});

t.test('a selector in the root namespace is ignored', async (t) => {
  const v = view(pa(ROOT, 'sel', { selector: { matchLabels: { app: 'web' } }, ...strict }));
  t.equal(mode(v, 'shop', { app: 'web' }), 'PERMISSIVE');
  t.equal(mode(v, ROOT, { app: 'web' }), 'PERMISSIVE', 'in the root namespace itself too');
});

t.test('port-level: by container port, workload-level only, UNSET inherits the workload', async (t) => {
  const v = view(
    pa(ROOT, 'default', strict),
    pa('shop', 'web', {
      selector: { matchLabels: { app: 'web' } },
      mtls: { mode: 'UNSET' },
      portLevelMtls: { '8080': { mode: 'PERMISSIVE' }, '9090': { mode: 'UNSET' }, '9091': {} },
    }),
  );
  const w = workloadMtls(v, ROOT, 'shop', { app: 'web' });
  t.equal(w.mode.mode, 'STRICT', 'workload UNSET inherits the mesh');
  t.equal(portMtls(w, 8080).mode, 'PERMISSIVE');
  t.equal(portMtls(w, 8080).by?.name, 'web');
  t.equal(portMtls(w, 9090).mode, 'STRICT', 'an UNSET port inherits');
  t.equal(portMtls(w, 9091).mode, 'STRICT', 'a port without mode is UNSET');
  t.equal(portMtls(w, 80).mode, 'STRICT', 'other ports: the workload mode');
  const ns = view(pa('shop', 'ns', { ...strict, portLevelMtls: { '8080': { mode: 'DISABLE' } } }));
  t.equal(mode(ns, 'shop', {}, 8080), 'STRICT', 'port-level on a namespace-wide policy is not read');
});

t.test('possible outcomes for workloads known by some labels', async (t) => {
  const v = view(
    pa('shop', 'ns', strict),
    pa('shop', 'canary', { selector: { matchLabels: { app: 'web', track: 'canary' } }, ...permissive }),
  );
  const modes = (labels: Record<string, string>) =>
    possibleWorkloadMtls(v, ROOT, 'shop', labels).map((w) => w.mode.mode);
  t.strictSame(modes({ app: 'web' }), ['PERMISSIVE', 'STRICT'], 'track unknown: either');
  t.strictSame(modes({ app: 'web', track: 'canary' }), ['PERMISSIVE'], 'surely selected');
  t.strictSame(modes({ app: 'web', track: 'stable' }), ['STRICT'], 'surely not selected');
  t.strictSame(modes({ app: 'db' }), ['STRICT']);
});

t.test('records: tls without a mode is DISABLE; port-level entries without tls replace it with none', async (t) => {
  const dr = destinationRuleRecord({
    metadata: { name: 'r', namespace: 'shop', creationTimestamp: '2024-01-01T00:00:00Z' },
    spec: {
      host: 'web',
      trafficPolicy: {
        tls: { sni: 'x' },
        portLevelSettings: [{ port: { number: 80 } }, { port: { number: 81 }, tls: { mode: 'SIMPLE' } }],
      },
      subsets: [{ name: 'v1', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }, { name: 'v2' }],
    },
  });
  t.strictSame(dr, {
    namespace: 'shop',
    name: 'r',
    host: 'web',
    created: '2024-01-01T00:00:00Z',
    subsets: [{ name: 'v1', trafficPolicy: { tls: 'ISTIO_MUTUAL' } }, { name: 'v2' }],
    trafficPolicy: { tls: 'DISABLE', ports: [{ port: 80 }, { port: 81, tls: 'SIMPLE' }] },
  });
  t.equal(destinationRuleRecord({ metadata: { name: 'r' }, spec: {} }), undefined, 'no host: not indexed');
  t.strictSame(
    peerAuthenticationRecord(
      pa('shop', 'p', { selector: { matchLabels: {} }, portLevelMtls: { '80': { mode: 'STRICT' } } }),
    ),
    { namespace: 'shop', name: 'p', mode: 'UNSET', ports: [{ port: 80, mode: 'STRICT' }] },
  );
});

t.test('view: DestinationRules by host, short host and tls mode, updated in place', async (t) => {
  const v = new MemoryClusterView();
  const dr = (name: string, host: string, tls?: string, namespace = 'shop') =>
    destinationRuleRecord({
      metadata: { name, namespace },
      spec: { host, ...(tls && { trafficPolicy: { tls: { mode: tls } } }) },
    })!;
  v.setDestinationRule(dr('a', 'Web.shop.svc.cluster.local', 'DISABLE'));
  v.setDestinationRule(dr('b', 'web', 'SIMPLE'));
  v.setDestinationRule(dr('c', '*', undefined, 'istio-system'));
  const names = (it: Iterable<{ name: string }>) => [...it].map((r) => r.name).sort();
  t.strictSame(names(v.destinationRulesWithHost('web.shop.svc.cluster.local')), ['a']);
  t.strictSame(names(v.destinationRulesWithShortHost('shop', 'web')), ['b']);
  t.strictSame(names(v.destinationRulesWithShortHost('other', 'web')), []);
  t.strictSame(names(v.destinationRulesWithHost('*')), ['c']);
  t.strictSame(names(v.destinationRulesWithTlsMode('DISABLE')), ['a']);
  v.setDestinationRule(dr('a', 'api.shop.svc.cluster.local', 'ISTIO_MUTUAL'));
  t.strictSame(names(v.destinationRulesWithHost('web.shop.svc.cluster.local')), [], 'the old host is gone');
  t.strictSame(names(v.destinationRulesWithTlsMode('DISABLE')), [], 'so is the old mode');
  t.strictSame(names(v.destinationRulesWithTlsMode('ISTIO_MUTUAL')), ['a']);
  v.deleteDestinationRule('shop', 'b');
  t.strictSame(names(v.destinationRulesWithShortHost('shop', 'web')), []);
  v.clearDestinationRules();
  t.strictSame(names(v.destinationRulesWithHost('*')), []);
  v.setPeerAuthentication(peerAuthenticationRecord(pa('shop', 'p', strict))!);
  t.equal([...v.peerAuthenticationsIn('shop')].length, 1);
  v.deletePeerAuthentication('shop', 'p');
  t.equal([...v.peerAuthenticationsIn('shop')].length, 0);
});

t.test('destination rules: host scope, coverage, specificity, tls per port and subset', async (t) => {
  const rule = (host: string, namespace = 'shop') =>
    destinationRuleRecord({ metadata: { name: 'r', namespace }, spec: { host } })!;
  const D = 'cluster.local';
  t.strictSame(serviceScope(rule('reviews'), D), { kind: 'service', namespace: 'shop', name: 'reviews' });
  t.strictSame(serviceScope(rule('reviews.bookinfo.svc.cluster.local'), D), {
    kind: 'service',
    namespace: 'bookinfo',
    name: 'reviews',
  });
  t.strictSame(serviceScope(rule('*.bookinfo.svc.cluster.local'), D), { kind: 'namespace', namespace: 'bookinfo' });
  for (const h of ['*', '*.local', '*.cluster.local', '*.svc.cluster.local'])
    t.strictSame(serviceScope(rule(h), D), { kind: 'all' }, h);
  for (const h of ['reviews.bookinfo', '*.example.com', 'example.com', '*.a.b.svc.cluster.local'])
    t.strictSame(serviceScope(rule(h), D), { kind: 'none' }, h);
  t.strictSame(serviceScope(rule('*.svc.corp.example'), 'corp.example'), { kind: 'all' }, 'the cluster domain');

  t.ok(covers('*.local', 'reviews.shop.svc.cluster.local'));
  t.notOk(covers('*.shop.svc.cluster.local', 'reviews.other.svc.cluster.local'));
  t.ok(moreSpecific('reviews.shop.svc.cluster.local', '*.shop.svc.cluster.local'), 'a name before a wildcard');
  t.ok(moreSpecific('*.shop.svc.cluster.local', '*.local'), 'the longer wildcard');
  t.ok(overlap('*.local', '*.shop.svc.cluster.local'));
  t.ok(overlap('reviews.shop.svc.cluster.local', '*.svc.cluster.local'));
  t.notOk(overlap('*.example.com', '*.local'));

  const policy = {
    tls: 'DISABLE',
    ports: [{ port: 80 }, { port: 443, tls: 'SIMPLE' }, { port: 443, tls: 'ISTIO_MUTUAL' }],
  };
  t.strictSame(tlsFor(policy, 8080), { tls: 'DISABLE', level: 'rule' });
  t.strictSame(tlsFor(policy, 80), { level: 'none' }, 'a port-level entry without tls: none');
  t.strictSame(tlsFor(policy, 443), { tls: 'SIMPLE', level: 'port' }, 'the first entry for the port');
  t.strictSame(tlsFor(policy, 8080, { tls: 'ISTIO_MUTUAL' }), { tls: 'ISTIO_MUTUAL', level: 'subset' });
  t.strictSame(tlsFor(policy, 8080, {}), { tls: 'DISABLE', level: 'rule' }, 'a subset policy without tls inherits');
  t.strictSame(tlsFor(undefined, 8080, { ports: [{ port: 8080, tls: 'DISABLE' }] }), {
    tls: 'DISABLE',
    level: 'subset port',
  });
  t.strictSame(tlsFor(policy, 8080, { tls: 'SIMPLE', ports: [{ port: 8080 }] }), { level: 'none' });
});
