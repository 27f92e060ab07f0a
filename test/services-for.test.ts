// The view's Services-by-label index answers what a scan of the namespace's Services answers:
// through random adds, replacements and deletions, servicesFor equals servicesIn filtered by the
// selector (selector-less ones included, ExternalName ones never), sorted by name.
import fc from 'fast-check';
import t from 'tap';
import { selects, type Labels } from '../src/cluster/labels.js';
import { MemoryClusterView } from '../src/cluster/memory.js';
import type { ServiceRecord } from '../src/cluster/view.js';

const runs = Number(process.env.FC_RUNS ?? 3000);
const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);

// Few keys, values and names, so selectors overlap, match and collide often.
const key = fc.constantFrom('app', 'version', 'tier', 'pod-template-hash');
const value = fc.constantFrom('a', 'b', 'c');
const labels = fc.dictionary(key, value, { maxKeys: 4 });
const service = fc.record({
  namespace: fc.constantFrom('shop', 'payments'),
  name: fc.constantFrom('s1', 's2', 's3', 's4', 's5', 's6'),
  type: fc.constantFrom('ClusterIP', 'ClusterIP', 'NodePort', 'ExternalName'),
  selector: fc.option(labels, { nil: undefined }),
});
const step = fc.oneof(
  service.map((svc) => ({ add: { ...svc, ports: [{ port: 80, protocol: 'TCP' }] } as ServiceRecord })),
  service.map((svc) => ({ remove: svc })),
  fc.constant({ clear: true as const }),
);

function scanned(view: MemoryClusterView, namespace: string, pod: Labels | undefined): string[] {
  return [...view.servicesIn(namespace)]
    .filter((s) => s.type !== 'ExternalName')
    .filter((s) => !s.selector || Object.keys(s.selector).length === 0 || selects(s.selector, pod))
    .map((s) => s.name)
    .sort();
}

t.test('servicesFor equals a scan of the namespace through adds, replacements, deletions and re-lists', (t) => {
  fc.assert(
    fc.property(
      fc.array(step, { maxLength: 30 }),
      labels,
      fc.boolean(),
      fc.constantFrom(0, 2, 3, 16),
      (steps, pod, podless, indexAbove) => {
        // Namespaces above indexAbove Services are indexed, smaller ones looked through: both, and the moves between them.
        const view = new MemoryClusterView(true, true, false, indexAbove);
        for (const s of steps) {
          if ('add' in s) view.setService(s.add);
          else if ('remove' in s) view.deleteService(s.remove.namespace, s.remove.name);
          else view.clearServices();
        }
        const podLabels = podless ? undefined : pod;
        for (const ns of ['shop', 'payments']) {
          const found = [...view.servicesFor(ns, podLabels)].map((s) => s.name);
          if (JSON.stringify(found) !== JSON.stringify(scanned(view, ns, podLabels))) return false;
        }
        return true;
      },
    ),
    { numRuns: runs, ...(seed !== undefined && { seed }) },
  );
  t.end();
});

t.test(
  'servicesFor: a selector-less Service, one selecting the pod on its second label, none for another namespace',
  (t) => {
    const view = MemoryClusterView.fromObjects([
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: 'shop' },
        spec: { selector: { app: 'web', tier: 'front' }, ports: [{ port: 80 }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'manual', namespace: 'shop' },
        spec: { ports: [{ port: 81 }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'db', namespace: 'shop' },
        spec: { selector: { app: 'db' }, ports: [{ port: 5432 }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'out', namespace: 'shop' },
        spec: { type: 'ExternalName', externalName: 'x.example.com', ports: [{ port: 80 }] },
      },
    ]);
    const names = (ns: string, l?: Labels) => [...view.servicesFor(ns, l)].map((s) => s.name);
    t.same(names('shop', { tier: 'front', app: 'web', version: 'v1' }), ['manual', 'web']);
    t.same(names('shop', { app: 'web' }), ['manual'], 'a selector is matched whole');
    t.same(names('shop', undefined), ['manual']);
    t.same(names('payments', { app: 'web' }), []);
    view.deleteService('shop', 'manual');
    t.same(names('shop', { app: 'db' }), ['db']);
    t.end();
  },
);
