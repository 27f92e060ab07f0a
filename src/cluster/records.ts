import type { ServiceEntryRecord, ServicePort, ServiceRecord } from './view.js';

// Slim records from raw API objects: only what policies read, so a cache of 50 000 Services
// stays small. Input is unknown (API, manifests), so every field is checked.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isObj(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

function meta(obj: Obj): { namespace: string; name: string } | undefined {
  const m = obj.metadata;
  if (!isObj(m) || typeof m.name !== 'string') return undefined;
  return { namespace: str(m.namespace) ?? 'default', name: m.name };
}

export function namespaceRecord(obj: unknown): { name: string; labels: Record<string, string> } | undefined {
  if (!isObj(obj) || !isObj(obj.metadata) || typeof obj.metadata.name !== 'string') return undefined;
  return { name: obj.metadata.name, labels: stringMap(obj.metadata.labels) ?? {} };
}

export function serviceRecord(obj: unknown): ServiceRecord | undefined {
  if (!isObj(obj)) return undefined;
  const id = meta(obj);
  if (!id) return undefined;
  const spec = isObj(obj.spec) ? obj.spec : {};
  const ports: ServicePort[] = [];
  for (const p of Array.isArray(spec.ports) ? spec.ports : []) {
    if (!isObj(p) || typeof p.port !== 'number') continue;
    const port: ServicePort = { port: p.port, protocol: str(p.protocol) ?? 'TCP' };
    if (typeof p.name === 'string') port.name = p.name;
    if (typeof p.targetPort === 'number' || typeof p.targetPort === 'string') port.targetPort = p.targetPort;
    ports.push(port);
  }
  const record: ServiceRecord = { ...id, type: str(spec.type) ?? 'ClusterIP', ports };
  const selector = stringMap(spec.selector);
  if (selector && Object.keys(selector).length > 0) record.selector = selector;
  if (typeof spec.externalName === 'string') record.externalName = spec.externalName;
  return record;
}

export function serviceEntryRecord(obj: unknown): ServiceEntryRecord | undefined {
  if (!isObj(obj)) return undefined;
  const id = meta(obj);
  if (!id) return undefined;
  const spec = isObj(obj.spec) ? obj.spec : {};
  const ports = (Array.isArray(spec.ports) ? spec.ports : []).flatMap((p) => {
    if (!isObj(p) || typeof p.number !== 'number') return [];
    return [{ number: p.number, ...(typeof p.protocol === 'string' && { protocol: p.protocol }), ...(typeof p.name === 'string' && { name: p.name }) }];
  });
  const record: ServiceEntryRecord = { ...id, hosts: strings(spec.hosts), addresses: strings(spec.addresses), ports };
  if (Array.isArray(spec.exportTo)) record.exportTo = strings(spec.exportTo);
  return record;
}
