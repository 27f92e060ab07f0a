// The objects of a large cluster for the scale benchmark, shaped as clusters hold them: namespaces
// (half injected), Services over them (a few common port layouts, one in fifty ExternalName),
// ServiceEntries for external hosts, DestinationRules for in-mesh hosts, PeerAuthentications per
// namespace, Nodes with their kubelet versions. Each count is its own; `from` lets a level add to
// the one before it.

export interface Scale {
  name: string;
  services: number;
  /** Of the Services, how many get a cluster IP; the rest are headless (written 5× faster). */
  clusterIpServices: number;
  serviceEntries: number;
  destinationRules: number;
  peerAuthentications: number;
  namespaces: number;
  nodes: number;
}

export const SCALES: readonly Scale[] = [
  {
    name: '10k',
    services: 10_000,
    clusterIpServices: 10_000,
    serviceEntries: 2_000,
    destinationRules: 2_000,
    peerAuthentications: 500,
    namespaces: 500,
    nodes: 200,
  },
  {
    name: '100k',
    services: 100_000,
    clusterIpServices: 10_000,
    serviceEntries: 20_000,
    destinationRules: 20_000,
    peerAuthentications: 5_000,
    namespaces: 5_000,
    nodes: 2_000,
  },
];

/** The number of each kind in `scale`, divided by `divisor` (a quick run). */
export function divided(scale: Scale, divisor: number): Scale {
  const d = (n: number) => Math.max(1, Math.round(n / divisor));
  return {
    name: divisor === 1 ? scale.name : `${scale.name}÷${divisor}`,
    services: d(scale.services),
    clusterIpServices: d(scale.clusterIpServices),
    serviceEntries: d(scale.serviceEntries),
    destinationRules: d(scale.destinationRules),
    peerAuthentications: d(scale.peerAuthentications),
    namespaces: d(scale.namespaces),
    nodes: d(scale.nodes),
  };
}

const nsName = (n: number) => `tenant-${String(n).padStart(4, '0')}`;
const kinds = ['checkout', 'payments', 'catalog', 'search', 'accounts'];
const svcName = (i: number) => `${kinds[i % kinds.length] ?? ''}-service-${i}`;

/** Port layouts as clusters have them: a few very common ones, and many used by a few Services. */
export function servicePorts(i: number): unknown[] {
  switch (i % 10) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      return [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }];
    case 5:
    case 6:
      return [
        { name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' },
        { name: 'grpc', protocol: 'TCP', port: 9090, targetPort: 'grpc' },
      ];
    case 7:
      return [{ name: 'https', protocol: 'TCP', port: 443, targetPort: 8443 }];
    case 8:
      return [{ name: 'tcp', protocol: 'TCP', port: 7000 + (i % 300), targetPort: 7000 + (i % 300) }];
    default:
      return [
        { name: 'http', protocol: 'TCP', port: 8000 + (i % 1000), targetPort: 'http' },
        { name: 'http-metrics', protocol: 'TCP', port: 9102, targetPort: 9102 },
      ];
  }
}

/** Objects `to` holds that `from` does not, namespaces first (everything else lives in them). */
export function* objectsBetween(from: Scale | undefined, to: Scale): Generator<unknown> {
  const range = function* (a: number, b: number) {
    for (let i = a; i < b; i++) yield i;
  };
  for (const n of range(from?.namespaces ?? 0, to.namespaces))
    yield {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: nsName(n), labels: n % 2 === 0 ? { 'istio-injection': 'enabled' } : {} },
    };
  for (const i of range(from?.services ?? 0, to.services)) {
    const name = svcName(i);
    const external = i % 50 === 0;
    yield {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name,
        namespace: nsName(i % to.namespaces),
        labels: { app: name, 'app.kubernetes.io/part-of': 'shop' },
      },
      spec: external
        ? {
            type: 'ExternalName',
            externalName: `db-${i}.rds.example.com`,
            ports: [{ name: 'tcp-mysql', protocol: 'TCP', port: 3306 }],
          }
        : {
            ...(i >= to.clusterIpServices && { clusterIP: 'None' }),
            selector: { app: name, version: 'v1' },
            ports: servicePorts(i),
          },
    };
  }
  for (const i of range(from?.serviceEntries ?? 0, to.serviceEntries))
    yield {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: `external-${i}`, namespace: nsName(i % to.namespaces) },
      spec: {
        hosts: [`api-${i}.partner.example.com`],
        // Most with addresses or TLS: no TCP collisions at that scale, as a cluster that works has.
        ...(i % 4 === 0 && { addresses: [`240.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`] }),
        ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
        location: 'MESH_EXTERNAL',
        resolution: 'DNS',
      },
    };
  for (const i of range(from?.destinationRules ?? 0, to.destinationRules)) {
    // Each for a Service in its own namespace (where it belongs), some with subsets.
    const s = i % to.services;
    yield {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: `dr-${i}`, namespace: nsName(s % to.namespaces) },
      spec: {
        host: `${svcName(s)}.${nsName(s % to.namespaces)}.svc.cluster.local`,
        trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' }, connectionPool: { tcp: { maxConnections: 100 } } },
        ...(i % 3 === 0 && { subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
      },
    };
  }
  for (const i of range(from?.peerAuthentications ?? 0, to.peerAuthentications))
    yield {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: nsName(i % to.namespaces) },
      spec: { mtls: { mode: i % 5 === 0 ? 'PERMISSIVE' : 'STRICT' } },
    };
  for (const i of range(from?.nodes ?? 0, to.nodes))
    yield {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: `node-${i}`, labels: { 'kubernetes.io/hostname': `node-${i}` } },
      status: { nodeInfo: { kubeletVersion: i % 10 === 0 ? 'v1.33.4' : 'v1.34.1' } },
    };
}
