// The cluster view at a scale, in a fresh process: node --expose-gc dist/bench/scale-view.js SCALE_JSON
// Objects arrive as JSON text, as the watches receive them, and go through addObject (the same
// records as the watches' sinks). Prints one JSON line: heap per object of each kind (heapUsed
// after GC, before and after the kind), and µs per watch event (an object changed, added, deleted)
// with the view at full size.
import { MemoryClusterView } from '../src/cluster/memory.js';
import { benchObjects, median } from './common.js';
import { objectsBetween, type Scale } from './scale-objects.js';

const scale = JSON.parse(process.argv[2] ?? '{}') as Scale;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with --expose-gc\n');
  process.exit(2);
}
const heap = () => {
  for (let i = 0; i < 4; i++) gc?.();
  return process.memoryUsage().heapUsed;
};

const view = new MemoryClusterView();
for (const o of benchObjects()) view.addObject(o);
// Grouped by kind in the order objectsBetween yields them; Nodes are not the view's (the mesh profile keeps them).
const texts = new Map<string, string[]>();
for (const o of objectsBetween(undefined, scale)) {
  const kind = (o as { kind: string }).kind;
  if (kind === 'Node') continue;
  let list = texts.get(kind);
  if (!list) texts.set(kind, (list = []));
  list.push(JSON.stringify(o));
}
const perObject: Record<string, number> = {};
for (const [kind, list] of texts) {
  const before = heap();
  for (const t of list) view.addObject(JSON.parse(t));
  perObject[kind] = (heap() - before) / list.length;
}

/** µs per call of `fn(i)`, median of 9 batches of `n`. */
function timed(n: number, fn: (i: number) => void): number {
  const samples: number[] = [];
  for (let s = 0; s < 10; s++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn(s * n + i);
    if (s > 0) samples.push(((performance.now() - t0) * 1000) / n);
  }
  return median(samples);
}
// A change to an object the view holds (MODIFIED), and one added then deleted (ADDED, DELETED).
const service = texts.get('Service') ?? [];
const dr = texts.get('DestinationRule') ?? [];
const events = {
  serviceModified: timed(2000, (i) => view.addObject(JSON.parse(service[i % service.length] ?? '{}'))),
  destinationRuleModified: timed(2000, (i) => view.addObject(JSON.parse(dr[i % dr.length] ?? '{}'))),
  serviceAddedDeleted: timed(2000, (i) => {
    view.addObject({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `churn-${i}`, namespace: 'tenant-0000' },
      spec: { selector: { app: `churn-${i}` }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    view.deleteService('tenant-0000', `churn-${i}`);
  }),
};
process.stdout.write(JSON.stringify({ perObject, events, size: view.size }) + '\n');
// Keep the view alive until after the measurement.
if (view.size.services < 0) console.log(view);
