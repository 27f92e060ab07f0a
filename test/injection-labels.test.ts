// How injection is asked for: the model's answers sidecar-inject-label and namespace-injection
// build on (which webhooks are called, how a revision reads the pod's value, what would opt a pod
// in, the installed revision names), the engine running a pod policy on a workload's own metadata,
// the injected pods audit keeps, and the policies' explanations and message lengths.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t from 'tap';
import type { KubeObject } from '../src/admission/types.js';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { injectedPodRecord, injectedRevision } from '../src/cluster/records.js';
import { evaluate } from '../src/engine/evaluate.js';
import { explainAll } from '../src/engine/explain.js';
import type { Policy } from '../src/engine/types.js';
import { MAX_WARNING, verdictOf } from '../src/engine/verdict.js';
import { ownInject, sidecarOf, sidecarWith, webhooksCalled } from '../src/mesh/injection.js';
import { discoverMesh } from '../src/mesh/discover.js';
import { chartWebhooks, nothingDiscovered, resolveProfile, type InjectorWebhook } from '../src/mesh/profile.js';
import { revisionNames, showRevisionNames } from '../src/mesh/revisions.js';
import { packageRoot } from '../src/paths.js';
import namespaceInjection from '../src/policies/namespace-injection.js';
import sidecarInjectLabel from '../src/policies/sidecar-inject-label.js';
import { configOf, engineOf, requestFor } from './support.js';

const mesh = (revisions: string[], more: Record<string, unknown> = {}) =>
  resolveProfile({ revisions, nativeSidecars: 'disabled', ...more }, nothingDiscovered);
const pod = (labels: Record<string, string> = {}, annotations: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'shop', labels, annotations },
  spec: { containers: [{ name: 'app', image: 'x' }] },
});

/** A revision tag's webhooks as Istio's chart renders them (revision-tags-mwc.yaml): the tag in the selectors. */
function tagWebhooks(tag: string, revision: string): InjectorWebhook[] {
  return chartWebhooks(tag).map((w) => ({ ...w, configuration: `istio-revision-tag-${tag}`, revision }));
}

t.test('which injector webhooks the API server calls, in order', async (t) => {
  const m = mesh(['default', 'canary']);
  const names = (ws: { name: string; revision: string }[]) => ws.map((w) => `${w.revision}/${w.name}`);
  t.strictSame(names(webhooksCalled({}, { 'istio-injection': 'enabled' }, m)), [
    'default/namespace.sidecar-injector.istio.io',
  ]);
  t.strictSame(names(webhooksCalled({}, { 'istio.io/rev': 'canary' }, m)), [
    'canary/rev.namespace.sidecar-injector.istio.io',
  ]);
  t.strictSame(
    names(webhooksCalled({}, { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, m)),
    ['default/namespace.sidecar-injector.istio.io'],
    'both labels: the revision webhooks require istio-injection to be absent',
  );
  t.strictSame(names(webhooksCalled({ 'sidecar.istio.io/inject': 'true' }, {}, m)), [
    'default/object.sidecar-injector.istio.io',
  ]);
  t.strictSame(
    names(webhooksCalled({ 'sidecar.istio.io/inject': 'yes' }, {}, m)),
    [],
    'the object webhook takes "true"',
  );
  t.strictSame(names(webhooksCalled({ 'sidecar.istio.io/inject': 'true' }, { 'istio-injection': 'disabled' }, m)), []);
});

t.test("a pod's own sidecar.istio.io/inject as each release reads it", async (t) => {
  const m11 = mesh(['default'], { istioVersion: '1.11' });
  const m12 = mesh(['default'], { istioVersion: '1.12' });
  const both = pod({ 'sidecar.istio.io/inject': 'false' }, { 'sidecar.istio.io/inject': 'true' });
  const r11 = m11.revisions.get('default');
  const r12 = m12.revisions.get('default');
  if (!r11 || !r12) throw new Error('no revision');
  t.strictSame(ownInject(both, r11), { value: 'true', from: 'annotation' }, '1.11 reads the annotation only');
  t.strictSame(ownInject(both, r12), { value: 'false', from: 'label' }, 'from 1.12 the label replaces it');
  t.strictSame(ownInject(pod({ 'sidecar.istio.io/inject': '' }, { 'sidecar.istio.io/inject': 'true' }), r12), {
    value: '',
    from: 'label',
  });
  t.equal(ownInject(pod(), r12), undefined);
});

t.test('why a called injector does not inject', async (t) => {
  const view = MemoryClusterView.fromObjects([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
  ]);
  const m = mesh(['default']);
  const optOut = sidecarOf(pod({}, { 'sidecar.istio.io/inject': 'false' }), 'shop', view, m);
  t.match(optOut, { proxy: 'none', why: /annotation sidecar\.istio\.io\/inject="false" opts it out/ });
  const disabled = resolveProfile(
    { nativeSidecars: 'disabled' },
    discoverMesh([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'istio-sidecar-injector', namespace: 'istio-system' },
        data: { config: 'policy: disabled\n' },
      },
    ]),
  );
  t.match(sidecarOf(pod(), 'shop', view, disabled), { proxy: 'none', why: /injection policy is disabled/ });
  t.match(sidecarOf(pod({ 'sidecar.istio.io/inject': 'true' }), 'shop', view, disabled), { proxy: 'classic' });
});

t.test('what a pod would get with other labels (advice, not the decision)', async (t) => {
  const m = mesh(['default']);
  const p = pod({}, { 'sidecar.istio.io/inject': 'true' });
  t.match(sidecarWith(p, { namespace: {} }, 'shop', m), { proxy: 'none' });
  t.match(sidecarWith(p, { pod: { 'sidecar.istio.io/inject': 'true' }, namespace: {} }, 'shop', m), {
    proxy: 'classic',
  });
  t.match(sidecarWith(p, { namespace: { 'istio-injection': 'enabled' } }, 'kube-system', m), {
    proxy: 'none',
    why: /never injects namespace kube-system/,
  });
});

t.test('installed revisions and tags, from the webhooks', async (t) => {
  t.strictSame(
    revisionNames(mesh(['default', 'canary'])).map((n) => n.name),
    ['canary', 'default'],
  );
  const tagged = resolveProfile(
    { nativeSidecars: 'disabled' },
    { ...nothingDiscovered, webhooks: [...chartWebhooks('canary'), ...tagWebhooks('prod', 'canary')] },
  );
  t.strictSame(revisionNames(tagged), [
    { name: 'canary', revision: 'canary' },
    { name: 'prod', revision: 'canary' },
  ]);
  t.equal(showRevisionNames(revisionNames(tagged)), 'canary, prod (tag of canary)');
  t.equal(revisionNames(tagged), revisionNames(tagged), 'computed once per profile');
  t.equal(showRevisionNames([]), 'none');
});

t.test('injected pods: the revision from sidecar.istio.io/status, kept only where audit lists pods', async (t) => {
  const status = (revision: unknown) => ({ 'sidecar.istio.io/status': JSON.stringify({ revision }) });
  t.equal(injectedRevision(status('canary')), 'canary');
  t.equal(injectedRevision(status('')), undefined);
  t.equal(injectedRevision(status(3)), undefined);
  t.equal(injectedRevision({ 'sidecar.istio.io/status': 'not json' }), undefined);
  t.equal(injectedRevision({}), undefined);
  const stored = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web-1',
      namespace: 'shop',
      labels: { app: 'web' },
      annotations: { ...status('default'), 'sidecar.istio.io/inject': 'true', 'prometheus.io/scrape': 'true' },
    },
    spec: { hostNetwork: false, containers: [] },
    status: { phase: 'Running' },
  };
  t.strictSame(injectedPodRecord(stored), {
    namespace: 'shop',
    name: 'web-1',
    revision: 'default',
    pod: { metadata: { labels: { app: 'web' }, annotations: { 'sidecar.istio.io/inject': 'true' } }, spec: {} },
  });
  t.equal(injectedPodRecord({ ...stored, status: { phase: 'Succeeded' } }), undefined, 'a finished pod never restarts');
  t.equal(injectedPodRecord({ ...stored, metadata: { name: 'x', annotations: {} } }), undefined, 'not injected');
  t.equal(MemoryClusterView.fromObjects([stored]).injectedPods('shop'), undefined, 'pods not listed: unknown');
  t.strictSame(
    [...(MemoryClusterView.fromObjects([stored], true, true).injectedPods('shop') ?? [])].map((p) => p.name),
    ['web-1'],
  );
  t.strictSame([...(MemoryClusterView.fromObjects([], true, true).injectedPods('other') ?? [])], []);
});

t.test(
  'a pod policy that also targets workloads: their own metadata at /validate, told what their pods get',
  async (t) => {
    const seen: { kind: string | undefined; proxy: string }[] = [];
    const probe: Policy = {
      id: 'sidecar-inject-label',
      action: 'validate',
      targets: [
        { group: '', kind: 'Pod', operations: ['CREATE'] },
        { group: 'apps', kind: 'Deployment', operations: ['CREATE', 'UPDATE'] },
      ],
      explain: () => ({ exists: true, why: 'test' }),
      evaluate(ctx) {
        seen.push({ kind: ctx.object.kind, proxy: ctx.sidecar.proxy });
        return { result: 'pass' };
      },
    };
    const engine = engineOf({
      policies: [probe],
      config: configOf({ mesh: { nativeSidecars: 'disabled' } }),
      cluster: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
      ],
    });
    const deployment: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { template: { metadata: {}, spec: { containers: [{ name: 'app', image: 'x' }] } } },
    };
    t.strictSame(evaluate({ request: requestFor(deployment), stage: 'mutate' }, engine), [], 'nothing at /mutate');
    const decisions = evaluate({ request: requestFor(deployment), stage: 'validate' }, engine);
    t.strictSame(
      decisions.map((d) => d.subject),
      ['object', 'template'],
      'once on the workload, once on its template',
    );
    t.strictSame(seen, [
      { kind: 'Deployment', proxy: 'classic' },
      { kind: 'Pod', proxy: 'classic' },
    ]);
    seen.length = 0;
    t.strictSame(evaluate({ request: requestFor(pod()), stage: 'validate' }, engine), [], 'a Pod: not at /validate');
    t.equal(evaluate({ request: requestFor(pod()), stage: 'mutate' }, engine).length, 1, 'a Pod: at /mutate');
    t.strictSame(seen, [{ kind: 'Pod', proxy: 'classic' }]);
  },
);

t.test('meshguard mesh says what each does here, and which revisions have injection policy disabled', async (t) => {
  const disabled = resolveProfile(
    { nativeSidecars: 'disabled' },
    discoverMesh([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'istio-sidecar-injector-canary',
          namespace: 'istio-system',
          labels: { 'istio.io/rev': 'canary' },
        },
        data: { config: 'policy: disabled\n' },
      },
      ...['default', 'canary'].map((rev) => ({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: {
          name: rev === 'default' ? 'istio-sidecar-injector' : `istio-sidecar-injector-${rev}`,
          labels: { 'istio.io/rev': rev },
        },
        webhooks: chartWebhooks(rev).map((w) => ({ ...w, configuration: undefined, revision: undefined })),
      })),
    ]),
  );
  const notes = explainAll([sidecarInjectLabel, namespaceInjection], disabled);
  t.match(notes['namespace-injection'], {
    exists: true,
    why: /installed revisions and tags \(canary, default\).*revision canary's injector policy is disabled: namespaces labelled for it inject only pods that opt in/,
  });
  t.notMatch(notes['namespace-injection']?.why, /revision default's injector policy/);
  t.match(notes['sidecar-inject-label'], {
    exists: true,
    why: /default \(Istio 1\.31\): only exactly "true"\/"false" count/,
  });
  const old = explainAll([sidecarInjectLabel], mesh(['default'], { istioVersion: '1.26' }));
  t.match(old['sidecar-inject-label']?.why, /y\/yes\/true\/on \(any case\) inject, any other value opts out/);
  t.match(
    explainAll([namespaceInjection], mesh([]))['namespace-injection']?.why,
    /installed revisions and tags \(none\)/,
  );
});

t.test('every warning of the golden cases fits in one uncut line', async (t) => {
  for (const id of ['sidecar-inject-label', 'namespace-injection']) {
    const dir = join(packageRoot, 'policies', id, 'cases');
    for (const file of readdirSync(dir)) {
      const c = yaml.load(readFileSync(join(dir, file), 'utf8')) as { verdict?: { warnings?: string[] } };
      for (const w of c.verdict?.warnings ?? [])
        t.ok(w.length < MAX_WARNING && !w.endsWith('…'), `${id}/${file}: ${w.length}`);
    }
  }
});

t.test('check and audit: a Namespace and a workload are judged, the warnings are the same', async (t) => {
  const engine = engineOf({
    policies: [sidecarInjectLabel, namespaceInjection],
    config: configOf({ mesh: { nativeSidecars: 'disabled', revisions: ['default'] } }),
    cluster: [],
  });
  const ns: KubeObject = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'shop', labels: { 'istio.io/rev': 'canary' } },
  };
  const decisions = evaluate({ request: requestFor(ns), stage: 'validate' }, engine);
  const { warnings } = verdictOf(decisions, engine.scope.config);
  t.strictSame(warnings, [
    'meshguard namespace-injection: istio.io/rev=canary names no installed revision or tag (default), so its pods get no sidecar. Fix: label it with one of those, or install canary',
  ]);
});
