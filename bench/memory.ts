// Resident memory of the cluster view: node --expose-gc dist/bench/memory.js SERVICES NAMESPACES
// Objects arrive as JSON text, as the watches receive them, and go through the same records
// functions; only the view keeps anything. Prints one JSON line (MemoryResult).
import { MemoryClusterView } from '../src/cluster/memory.js';
import { namespaceRecord, serviceRecord } from '../src/cluster/records.js';
import { servicePorts } from './scale-objects.js';

const services = Number(process.argv[2] ?? 50_000);
const namespaces = Number(process.argv[3] ?? 5_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with --expose-gc\n');
  process.exit(2);
}

function settle(): NodeJS.MemoryUsage {
  for (let i = 0; i < 4; i++) gc?.();
  return process.memoryUsage();
}

const nsName = (n: number) => `tenant-${String(n).padStart(4, '0')}-apps`;
const kinds = ['checkout', 'payments', 'catalog', 'search', 'accounts'];

// A Service as the API server lists it: most of it is dropped by serviceRecord. Names longer than
// V8 interns when parsing JSON (10 characters), as real names mostly are.
function serviceJson(i: number): string {
  const ns = nsName(i % namespaces);
  const name = `${kinds[i % kinds.length] ?? ''}-service-${i}`;
  // The selector names the app, by the usual convention the Service's own name.
  const app = name;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: ns,
      uid: `6aab6bef-f9c2-44a8-b2ce-${String(i).padStart(12, '0')}`,
      resourceVersion: String(100000 + i),
      creationTimestamp: '2026-11-21T13:41:39Z',
      labels: { app, 'app.kubernetes.io/part-of': 'shop' },
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': `{"apiVersion":"v1","kind":"Service","metadata":{"name":"${name}"}}`,
      },
    },
    spec:
      i % 50 === 0
        ? {
            type: 'ExternalName',
            externalName: `db-${i}.rds.example.com`,
            ports: [{ name: 'tcp-mysql', protocol: 'TCP', port: 3306, targetPort: 3306 }],
            sessionAffinity: 'None',
          }
        : {
            type: 'ClusterIP',
            clusterIP: `10.96.${(i >> 8) & 255}.${i & 255}`,
            clusterIPs: [`10.96.${(i >> 8) & 255}.${i & 255}`],
            selector: { app, version: 'v1' },
            ports: servicePorts(i),
            sessionAffinity: 'None',
            ipFamilies: ['IPv4'],
            ipFamilyPolicy: 'SingleStack',
          },
    status: { loadBalancer: {} },
  });
}

function namespaceJson(i: number): string {
  const name = nsName(i);
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      uid: `1aab6bef-f9c2-44a8-b2ce-${String(i).padStart(12, '0')}`,
      resourceVersion: String(i),
      labels: { 'kubernetes.io/metadata.name': name, ...(i % 2 === 0 ? { 'istio-injection': 'enabled' } : {}) },
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  });
}

const view = new MemoryClusterView();
const m0 = settle();
for (let i = 0; i < namespaces; i++) {
  const ns = namespaceRecord(JSON.parse(namespaceJson(i)));
  if (ns) view.setNamespace(ns.name, ns.labels);
}
const m1 = settle();
for (let i = 0; i < services; i++) {
  const svc = serviceRecord(JSON.parse(serviceJson(i)));
  if (svc) view.setService(svc);
}
const m2 = settle();
if (view.size.services !== services || view.size.namespaces !== namespaces) throw new Error('view incomplete');
process.stdout.write(
  JSON.stringify({
    services,
    namespaces,
    heapPerService: (m2.heapUsed - m1.heapUsed) / services,
    heapPerNamespace: (m1.heapUsed - m0.heapUsed) / namespaces,
    rssPerService: (m2.rss - m1.rss) / services,
    heapTotalMiB: m2.heapUsed / 2 ** 20,
  }) + '\n',
);
// Keep the view alive until after the measurement.
if (view.size.services < 0) console.log(view);
