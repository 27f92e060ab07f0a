// The parts of sidecar-annotations that golden cases show only one at a time: the closest real
// name for each kind of typo, the known names, quantities compared as Kubernetes compares them,
// and what `meshguard mesh` says about the policy per revision.
import t from 'tap';
import { nothingDiscovered, resolveProfile } from '../src/mesh/profile.js';
import { injectorFeatures, NEWEST_ISTIO } from '../src/mesh/releases.js';
import { closestSidecarAnnotation, judgeSidecarAnnotations, parsePorts } from '../src/mesh/sidecar-annotations.js';
import { compareQuantities, parseQuantity } from '../src/mesh/quantity.js';
import policy from '../src/policies/sidecar-annotations.js';

const newest = injectorFeatures(NEWEST_ISTIO);

t.test('the closest real name', async (t) => {
  const cases: [string, string | undefined][] = [
    ['sidecar.istio.io/proxyLimitCPU', 'sidecar.istio.io/proxyCPULimit'], // the FAQ's: words swapped
    ['sidecar.istio.io/proxyLimitMemory', 'sidecar.istio.io/proxyMemoryLimit'],
    ['sidecar.istio.io/proxyMemLimit', 'sidecar.istio.io/proxyMemoryLimit'], // abbreviated
    ['sidecar.istio.io/proxycpu', 'sidecar.istio.io/proxyCPU'], // case
    ['sidecar.istio.io/injet', 'sidecar.istio.io/inject'], // a letter missing
    ['sidecar.istio.io/rewriteAppHTTPProbe', 'sidecar.istio.io/rewriteAppHTTPProbers'],
    ['sidecar.istio.io/excludeInboundPorts', 'traffic.sidecar.istio.io/excludeInboundPorts'], // wrong prefix
    ['traffic.sidecar.istio.io/excludeOutboundIpRanges', 'traffic.sidecar.istio.io/excludeOutboundIPRanges'],
    ['status.sidecar.istio.io/ports', 'status.sidecar.istio.io/port'],
    ['readiness.status.sidecar.istio.io/initialDelay', 'readiness.status.sidecar.istio.io/initialDelaySeconds'],
    ['sidecar.istio.io/capNetBindServices', 'sidecar.istio.io/capNetBindService'],
    ['sidecar.istio.io/foo', undefined], // nothing close
    [`sidecar.istio.io/${'x'.repeat(70)}`, undefined], // longer than anything real
  ];
  for (const [name, want] of cases) t.equal(closestSidecarAnnotation(name), want, name);
});

t.test('names Istio reads are never warned about; others under its sidecar prefixes are', async (t) => {
  const known = {
    'sidecar.istio.io/inject': 'true',
    'sidecar.istio.io/status': '{}',
    'sidecar.istio.io/capNetBindService': 'true', // the injection template's, not in istio/api
    'sidecar.istio.io/enableCoreDump': 'true', // read until 1.25
    'sidecar.istio.io/statsCompression': 'gzip',
    'readiness.status.sidecar.istio.io/applicationPorts': '8080',
    'istio.io/rev': 'canary', // not a sidecar prefix
    'example.com/sidecar.istio.io': 'x',
  };
  t.strictSame(judgeSidecarAnnotations(known, newest).unknown, []);
  const { unknown } = judgeSidecarAnnotations(
    { 'sidecar.istio.io/terminationDrainDuration': '30s', 'traffic.sidecar.istio.io/excludeOutboundPort': '1' },
    newest,
  );
  t.match(unknown, [
    /terminationDrainDuration is a ProxyConfig field: set it in proxy\.istio\.io\/config/,
    /did you mean traffic\.sidecar\.istio\.io\/excludeOutboundPorts\?/,
  ]);
});

t.test('quantities compare as Kubernetes compares them', async (t) => {
  const cmp = (a: string, b: string) => {
    const x = parseQuantity(a);
    const y = parseQuantity(b);
    if (!x || !y) throw new Error(`${a} or ${b} is no quantity`);
    return compareQuantities(x, y);
  };
  t.equal(cmp('1Gi', '1000Mi'), 1);
  t.equal(cmp('1G', '1Gi'), -1);
  t.equal(cmp('500m', '0.5'), 0);
  t.equal(cmp('1', '1000m'), 0);
  t.equal(cmp('0.0000000001', '1n'), 0, 'rounded up to a nano');
  t.equal(cmp('1e3', '1k'), 0);
  t.equal(cmp('-1', '0'), -1);
  t.equal(cmp('2', '1e2147483647'), -1, 'a huge exponent compares without building the number');
});

t.test('port lists as validate.go parsePorts reads them', async (t) => {
  t.strictSame(parsePorts(' 80, 443 '), [80, 443]);
  t.strictSame(parsePorts(''), []);
  t.equal(parsePorts('80,,443'), undefined);
  t.equal(parsePorts('\ufeff80'), undefined, 'Go does not trim a byte order mark');
  t.strictSame(parsePorts('\u008580'), [80], 'Go trims U+0085');
});

t.test('explain: the trap exists wherever Istio injects, with what each revision checks', async (t) => {
  const mesh = (istioVersion: string) => resolveProfile({ istioVersion }, nothingDiscovered);
  t.match(policy.explain(mesh('1.31')), {
    exists: true,
    why: /default: Istio 1\.31 refuses pods with annotation values it cannot parse \(and proxy resources and interface names\)/,
  });
  t.match(policy.explain(mesh('1.11')), {
    exists: true,
    why: /Istio 1\.11 refuses pods with annotation values it cannot parse$/,
  });
});
