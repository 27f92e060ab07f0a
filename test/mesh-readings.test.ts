// How meshguard reads the strings Istio reads: Go's ParseBool for annotations such as
// sidecar.istio.io/rewriteAppHTTPProbers, and the pod's own holdApplicationUntilProxyStarts in its
// ProxyConfig. The policies and the Istio conformance runner share these readers.
import t from 'tap';
import type { KubeObject } from '../src/admission/types.js';
import { parseBool } from '../src/mesh/go-parse.js';
import { probeRewriting } from '../src/mesh/probe-rewrite.js';
import { nothingDiscovered, resolveProfile } from '../src/mesh/profile.js';
import { ownHold, parseProxyConfig } from '../src/mesh/proxy-config.js';

t.test("Go's strconv.ParseBool: its spellings only", async (t) => {
  for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) t.equal(parseBool(v), true, v);
  for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False']) t.equal(parseBool(v), false, v);
  for (const v of [undefined, '', 'yes', 'no', 'on', 'tRUE', ' true', 'true ', '2']) t.equal(parseBool(v), undefined);
});

t.test("the pod's own holdApplicationUntilProxyStarts, in either spelling", async (t) => {
  const hold = (text: string) => {
    const parsed = parseProxyConfig(text);
    if (!parsed.ok) throw new Error(parsed.problem);
    return ownHold(parsed.value);
  };
  t.equal(hold('holdApplicationUntilProxyStarts: true'), true);
  t.equal(hold('hold_application_until_proxy_starts: true'), true, 'the proto field name');
  t.equal(hold('{"holdApplicationUntilProxyStarts": false}'), false);
  t.equal(hold('holdApplicationUntilProxyStarts: "true"'), false, 'set, but not a boolean true');
  t.equal(hold('holdApplicationUntilProxyStarts:'), false, 'set to nothing');
  t.equal(hold('concurrency: 2'), undefined, 'not named');
  t.equal(hold(''), undefined);
});

t.test('probe rewriting: the pod annotation as ParseBool reads it, else the revision', async (t) => {
  const revision = (istioVersion: string, rewriteProbes: boolean) => {
    const r = resolveProfile({ istioVersion, rewriteProbes }, nothingDiscovered).revisions.get('default');
    if (!r) throw new Error('no default revision');
    return r;
  };
  const pod = (value?: string): KubeObject => {
    const annotations: Record<string, string> = {};
    if (value !== undefined) annotations['sidecar.istio.io/rewriteAppHTTPProbers'] = value;
    return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations } };
  };
  const on = probeRewriting(pod(), revision('1.30', true));
  t.match(on, { own: undefined, on: true });
  t.ok((['httpGet', 'tcpSocket', 'grpc'] as const).every((h) => on.rewrites(h)));
  t.notOk(on.rewrites('exec'));
  t.match(probeRewriting(pod('F'), revision('1.30', true)), { own: false, on: false });
  t.notOk(probeRewriting(pod('F'), revision('1.30', true)).rewrites('httpGet'));
  t.match(probeRewriting(pod('yes'), revision('1.30', false)), { own: undefined, on: false }, 'not a Go bool');
  t.match(probeRewriting(pod('1'), revision('1.30', false)), { own: true, on: true });
  const old = probeRewriting(pod(), revision('1.12', true));
  t.same(
    (['httpGet', 'tcpSocket', 'grpc'] as const).map((h) => old.rewrites(h)),
    [true, true, false],
    'grpc from 1.13',
  );
});
