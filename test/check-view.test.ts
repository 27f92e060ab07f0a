// check's first reading: the documents it leaves unparsed never hold what every object is judged
// against (an object of the cluster view, an Istio object for the mesh profile, a CRD).
import fc from 'fast-check';
import yaml from 'js-yaml';
import t from 'tap';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { mayHoldClusterObject } from '../src/commands/check-view.js';
import { istioSources, istioSourceOf } from '../src/mesh/sources.js';

const runs = Number(process.env.FC_RUNS ?? 3000);
const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);

/** Whether a view holds anything in `namespace`, or cluster-wide, after adding one object. */
function viewHolds(o: object, namespace: string): boolean {
  const view = new MemoryClusterView();
  view.addObject(o);
  const any = (xs: Iterable<unknown> | undefined) => xs !== undefined && [...xs].length > 0;
  const name = (o as { metadata?: { name?: unknown } }).metadata?.name;
  return (
    (typeof name === 'string' && view.namespaceLabels(name) !== undefined) ||
    any(view.servicesIn(namespace)) ||
    any(view.peerAuthenticationsIn(namespace)) ||
    any(view.destinationRulesIn(namespace)) ||
    any(view.workloadsIn(namespace)) ||
    any(view.serviceNamespaces()) ||
    Object.values(view.size).some((n) => n > 0)
  );
}

/** What the first reading must keep of a parsed document, as check uses it. */
function kept(value: unknown): boolean {
  const objects =
    typeof value === 'object' && value !== null && Array.isArray((value as { items?: unknown }).items)
      ? [value, ...((value as { items: unknown[] }).items ?? [])]
      : [value];
  return objects.some((o) => {
    if (typeof o !== 'object' || o === null) return false;
    const ns = (o as { metadata?: { namespace?: unknown } }).metadata?.namespace;
    return (
      viewHolds(o, typeof ns === 'string' ? ns : 'default') ||
      istioSourceOf(o) !== undefined ||
      (o as { kind?: unknown }).kind === 'CustomResourceDefinition'
    );
  });
}

function parse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: yaml.load(text) };
  } catch {
    return { ok: false };
  }
}

t.test('documents written as people write them', async (t) => {
  const cases: [string, boolean][] = [
    ['apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n', false],
    ['apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: web}\n', false],
    ['apiVersion: v1\nkind: "Secret"  # the app\nmetadata: {name: web}\n', false],
    ['apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n', true],
    ['apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio-sidecar-injector}\n', true],
    ['apiVersion: v1\nkind: Service\nmetadata: {name: web}\n', true],
    ['apiVersion: v1\nkind: List\nitems: []\n', true],
    ['apiVersion: v1\nkind: ConfigMapList\nitems: []\n', true],
    // The kind nested in a flow collection at column 0, the real one quoted: parsed.
    ['metadata: {name: a,\nkind: Secret\n}\n"kind": Service\napiVersion: v1\n', true],
    // An escaped key could spell kind.
    ['"ki\\u006ed": Service\napiVersion: v1\nmetadata: {name: a,\nkind: Secret}\n', true],
    ['apiVersion: v1\n? kind\n: Service\nmetadata: {name: a}\n', true],
    ['{"apiVersion": "v1", "kind": "ConfigMap"}', true],
    ['apiVersion: v1\nkind: &k Service\n', true],
    ['apiVersion: v1\nkind: !!str Service\n', true],
  ];
  for (const [text, may] of cases) {
    t.equal(mayHoldClusterObject(text), may, JSON.stringify(text));
    const parsed = parse(text);
    if (!may && parsed.ok) t.notOk(kept(parsed.value), 'and indeed holds nothing kept');
  }
});

// Documents assembled from the ways YAML can spell an object's kind and nest other objects.
const kinds = fc.constantFrom(
  'ConfigMap',
  'Deployment',
  'Secret',
  'Service',
  'Namespace',
  'ServiceEntry',
  'DestinationRule',
  'PeerAuthentication',
  'Node',
  'MutatingWebhookConfiguration',
  'CustomResourceDefinition',
  'List',
  'ServiceList',
  'Job',
  'Role',
  'Ingress',
  'HorizontalPodAutoscaler',
  'Pod',
);
const apiVersionOf = (kind: string) =>
  ({
    ServiceEntry: 'networking.istio.io/v1',
    DestinationRule: 'networking.istio.io/v1',
    PeerAuthentication: 'security.istio.io/v1',
    MutatingWebhookConfiguration: 'admissionregistration.k8s.io/v1',
    CustomResourceDefinition: 'apiextensions.k8s.io/v1',
    Deployment: 'apps/v1',
    Job: 'batch/v1',
  })[kind] ?? 'v1';
const names = fc.constantFrom('web', 'istiod', 'istio', 'istio-sidecar-injector', 'db');
const kindLine = fc.tuple(kinds, fc.constantFrom('', '"', "'"), fc.constantFrom('', '  # c')).map(([k, q, c]) => ({
  kind: k,
  text: `kind: ${q}${k}${q}${c}`,
}));
const otherKindSpelling = fc
  .tuple(kinds, fc.constantFrom('"kind": ', "'kind': ", 'kind : ', '? kind\n: ', 'kind: &a ', 'kind: !!str '))
  .map(([k, key]) => ({ kind: k, text: `${key}${k}` }));
const nested = fc
  .tuple(kinds, names, fc.constantFrom('flow-col0', 'flow', 'block', 'items'))
  .map(([k, n, how]) =>
    how === 'flow-col0'
      ? `spec: {name: ${n},\nkind: ${k}\n}`
      : how === 'flow'
        ? `spec: {kind: ${k}, apiVersion: ${apiVersionOf(k)}, metadata: {name: ${n}}}`
        : how === 'block'
          ? `spec:\n  template:\n    kind: ${k}\n    metadata: {name: ${n}}`
          : `items:\n- apiVersion: ${apiVersionOf(k)}\n  kind: ${k}\n  metadata: {name: ${n}}`,
  );
const document = fc
  .tuple(
    fc.oneof(
      { weight: 4, arbitrary: kindLine },
      { weight: 1, arbitrary: otherKindSpelling },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    names,
    fc.oneof(
      { weight: 3, arbitrary: fc.constant([]) },
      { weight: 1, arbitrary: fc.array(nested, { minLength: 1, maxLength: 2 }) },
    ),
    fc.boolean(),
    fc.constantFrom('', 'data: {a: "x\\\\y"}', 'labels: {app.kubernetes.io/kind: x}'),
  )
  .map(([kind, name, inner, nameFirst, extra]) => {
    const lines = [
      ...(kind ? [`apiVersion: ${apiVersionOf(kind.kind)}`, kind.text] : ['apiVersion: v1']),
      `metadata: {name: ${name}}`,
      ...inner,
      ...(extra ? [extra] : []),
    ];
    if (nameFirst) lines.reverse();
    return lines.join('\n') + '\n';
  });

t.test("Istio's objects read by name: the text check looks for begins every name they accept", async (t) => {
  for (const s of istioSources.filter((x) => x.names)) {
    t.ok(s.nameText, `${s.kind} says what text its names hold`);
    t.ok(s.names?.source.startsWith(`^${s.nameText ?? ''}`), `${s.kind}: ${String(s.names)} begins with ${s.nameText}`);
  }
});

t.test('a document left unparsed never holds an object the first reading keeps', async (t) => {
  let skipped = 0;
  fc.assert(
    fc.property(document, (text) => {
      if (mayHoldClusterObject(text)) return true;
      skipped++;
      const parsed = parse(text);
      return !parsed.ok || !kept(parsed.value);
    }),
    { numRuns: runs, ...(seed !== undefined && { seed }) },
  );
  t.ok(skipped > runs / 40, `${skipped} of ${runs} documents left unparsed: the filter does skip`);
});
