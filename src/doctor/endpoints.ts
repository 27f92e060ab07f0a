import { isRecord } from '../guards.js';
import type { Labels } from '../mesh/selector.js';
import type { ServiceRef } from './webhooks.js';

// Where the API server sends a webhook that calls a Service: the Service's port, and the ready
// endpoints of its EndpointSlices (discovery.k8s.io/v1) on that port, matched by port name as the
// EndpointSlice controller names them after the Service's ports. Pure.

export interface ServiceInfo {
  namespace: string;
  name: string;
  type: string;
  selector: Labels;
  ports: { name: string; port: number }[];
}

export interface SliceInfo {
  ports: { name: string; port?: number }[];
  endpoints: { addresses: string[]; ready: boolean }[];
}

/** What reading a Service gave: it, its absence (404), or why it could not be read. */
export type ServiceRead = { service: ServiceInfo; slices: SliceInfo[] } | { absent: true } | { error: string };

export const serviceKey = (ref: Pick<ServiceRef, 'namespace' | 'name'>) => `${ref.namespace}/${ref.name}`;

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const records = (v: unknown) => (Array.isArray(v) ? v.filter(isRecord) : []);

export function parseService(o: unknown): ServiceInfo | undefined {
  if (!isRecord(o) || !isRecord(o.metadata)) return undefined;
  const spec = isRecord(o.spec) ? o.spec : {};
  const selector = isRecord(spec.selector) ? spec.selector : {};
  return {
    namespace: str(o.metadata.namespace) ?? '',
    name: str(o.metadata.name) ?? '',
    type: str(spec.type) ?? 'ClusterIP',
    selector: Object.fromEntries(Object.entries(selector).filter(([, v]) => typeof v === 'string')) as Labels,
    ports: records(spec.ports).map((p) => ({ name: str(p.name) ?? '', port: typeof p.port === 'number' ? p.port : 0 })),
  };
}

export function parseSlice(o: unknown): SliceInfo | undefined {
  if (!isRecord(o)) return undefined;
  return {
    ports: records(o.ports).map((p) => ({
      name: str(p.name) ?? '',
      ...(typeof p.port === 'number' && { port: p.port }),
    })),
    endpoints: records(o.endpoints).map((e) => ({
      addresses: Array.isArray(e.addresses) ? e.addresses.filter((a): a is string => typeof a === 'string') : [],
      // discovery/v1 EndpointConditions: "A nil value should be interpreted as true".
      ready: !(isRecord(e.conditions) && e.conditions.ready === false),
    })),
  };
}

export interface Address {
  host: string;
  port: number;
}

/**
 * The ready addresses behind a Service's port (each endpoint's first address: its addresses are
 * fungible), or why there is nowhere to send: no such port, or a Service that is only a DNS name.
 */
export function readyAddresses(
  service: ServiceInfo,
  slices: readonly SliceInfo[],
  servicePort: number,
): { addresses: Address[] } | { reason: string } {
  if (service.type === 'ExternalName')
    return { reason: `Service ${serviceKey(service)} is an ExternalName: it has no endpoints to check` };
  const port = service.ports.find((p) => p.port === servicePort);
  if (!port) return { reason: `Service ${serviceKey(service)} has no port ${servicePort}` };
  const addresses: Address[] = [];
  const seen = new Set<string>();
  for (const slice of slices) {
    const target = slice.ports.find((p) => p.name === port.name)?.port;
    if (target === undefined) continue;
    for (const e of slice.endpoints) {
      const host = e.addresses[0];
      if (!e.ready || host === undefined || seen.has(`${host}:${target}`)) continue;
      seen.add(`${host}:${target}`);
      addresses.push({ host, port: target });
    }
  }
  return { addresses };
}

/** "10.0.0.5:15017", "[fd00::5]:15017" */
export const showAddress = (a: Address) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

/** Where to look when a Service has no ready endpoint: its pods, or (no selector) its hand-written EndpointSlices. */
export function notReadyHint(s: ServiceInfo): string {
  const labels = Object.entries(s.selector).map(([k, v]) => `${k}=${v}`);
  if (labels.length === 0)
    return `kubectl -n ${s.namespace} get endpointslices -l kubernetes.io/service-name=${s.name}: the Service selects no pods, so whatever writes these marks none ready`;
  const l = `-l ${labels.join(',')}`;
  return `kubectl -n ${s.namespace} get pods ${l}; kubectl -n ${s.namespace} describe pods ${l} says why none is ready`;
}
