import type { KubeObject } from '../admission/types.js';
import { podFromTemplate, templatePath } from '../engine/workloads.js';
import { isRecord } from '../guards.js';
import { memoize } from '../memo.js';
import type {
  DestinationRuleRecord,
  InjectedPodRecord,
  MtlsSetting,
  PeerAuthenticationRecord,
  ServiceEntryRecord,
  ServicePort,
  ServiceRecord,
  TrafficTls,
  WorkloadRecord,
} from './view.js';

// Slim records from raw API objects: only what policies read, so a cache of 50 000 Services
// stays small. Input is unknown (API, manifests), so every field is checked.

type Obj = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** `namespace`, when given, is where the object is stored (an admission request's namespace). */
function meta(obj: Obj, namespace: string | undefined): { namespace: string; name: string } | undefined {
  const m = obj.metadata;
  if (!isRecord(m) || typeof m.name !== 'string') return undefined;
  return { namespace: namespace ?? str(m.namespace) ?? 'default', name: m.name };
}

export function namespaceRecord(obj: unknown): { name: string; labels: Record<string, string> } | undefined {
  if (!isRecord(obj) || !isRecord(obj.metadata) || typeof obj.metadata.name !== 'string') return undefined;
  const name = obj.metadata.name;
  // The API server labels every namespace with its name (Kubernetes >= 1.21), and webhook
  // selectors use it; a Namespace read from a file lacks it.
  return { name, labels: { 'kubernetes.io/metadata.name': name, ...stringMap(obj.metadata.labels) } };
}

// Most Services of a cluster use one of a few port layouts (80→8080 "http", …): records share one
// frozen list per layout, which is most of what a record would otherwise weigh. Bounded: past
// MAX_LAYOUTS distinct layouts, new ones are simply not shared.
const MAX_LAYOUTS = 10_000;
const layouts = new Map<string, readonly ServicePort[]>();

function sharedPorts(ports: ServicePort[]): readonly ServicePort[] {
  if (ports.length === 0) return noPorts;
  const key = JSON.stringify(ports.map((p) => [p.port, p.protocol, p.name, p.targetPort, p.appProtocol]));
  const shared = layouts.get(key);
  if (shared) return shared;
  for (const p of ports) Object.freeze(p);
  const frozen = Object.freeze(ports);
  if (layouts.size < MAX_LAYOUTS) layouts.set(key, frozen);
  return frozen;
}
const noPorts: readonly ServicePort[] = Object.freeze([]);

const EXPORT_TO = 'networking.istio.io/exportTo';
const AUTOALLOCATE = 'networking.istio.io/enable-autoallocate-ip';

// Namespace names are few and repeated by every object in them; one copy each.
const sharedNamespace = memoize((ns) => ns, 100_000);

export function serviceRecord(obj: unknown, namespace?: string): ServiceRecord | undefined {
  if (!isRecord(obj)) return undefined;
  const id = meta(obj, namespace);
  if (!id) return undefined;
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const ports: ServicePort[] = [];
  for (const p of Array.isArray(spec.ports) ? spec.ports : []) {
    if (!isRecord(p) || typeof p.port !== 'number') continue;
    const port: ServicePort = { port: p.port, protocol: str(p.protocol) ?? 'TCP' };
    if (typeof p.name === 'string') port.name = p.name;
    if (typeof p.targetPort === 'number' || typeof p.targetPort === 'string') port.targetPort = p.targetPort;
    if (typeof p.appProtocol === 'string') port.appProtocol = p.appProtocol;
    ports.push(port);
  }
  const selector = stringMap(spec.selector);
  // By convention a Service selects app=<its own name>: keep one copy of that string.
  if (selector) for (const k in selector) if (selector[k] === id.name) selector[k] = id.name;
  const externalName = str(spec.externalName);
  // A literal, not `{ ...id, type }`: V8 builds a spread-then-extended object on a slow path, into
  // a dictionary of several hundred bytes; a cluster view holds tens of thousands of these.
  const record: ServiceRecord = {
    namespace: sharedNamespace(id.namespace),
    name: id.name,
    type: str(spec.type) ?? 'ClusterIP',
    ports: sharedPorts(ports),
  };
  if (selector && Object.keys(selector).length > 0) record.selector = selector;
  if (externalName !== undefined) record.externalName = externalName;
  // Istio splits the annotation at commas and trims each entry (pilot/pkg/serviceregistry/kube/conversion.go).
  const exportTo = isRecord(obj.metadata) && isRecord(obj.metadata.annotations) && obj.metadata.annotations[EXPORT_TO];
  if (typeof exportTo === 'string' && exportTo !== '') record.exportTo = exportTo.split(',').map((s) => s.trim());
  return record;
}

export function serviceEntryRecord(obj: unknown, namespace?: string): ServiceEntryRecord | undefined {
  if (!isRecord(obj)) return undefined;
  const id = meta(obj, namespace);
  if (!id) return undefined;
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const ports = (Array.isArray(spec.ports) ? spec.ports : []).flatMap((p) => {
    if (!isRecord(p) || typeof p.number !== 'number') return [];
    return [
      {
        number: p.number,
        ...(typeof p.protocol === 'string' && { protocol: p.protocol }),
        ...(typeof p.name === 'string' && { name: p.name }),
      },
    ];
  });
  const record: ServiceEntryRecord = {
    namespace: sharedNamespace(id.namespace),
    name: id.name,
    hosts: strings(spec.hosts),
    addresses: strings(spec.addresses),
    ports,
    resolution: str(spec.resolution)?.toUpperCase() ?? 'NONE',
  };
  if (Array.isArray(spec.exportTo)) record.exportTo = strings(spec.exportTo);
  // Istio's allocator skips an entry labelled "false" in any case (pilot/pkg/networking/serviceentry/ip_autoallocation.go).
  const labels = isRecord(obj.metadata) ? stringMap(obj.metadata.labels) : undefined;
  if (labels?.[AUTOALLOCATE]?.toLowerCase() === 'false') record.autoAllocateOptOut = true;
  // status.addresses: [{value, host}], written by the allocator (pilot/pkg/controllers/ipallocate/ipallocate.go).
  if (isRecord(obj.status) && Array.isArray(obj.status.addresses) && obj.status.addresses.length > 0)
    record.allocated = true;
  return record;
}

const created = (obj: Obj): string | undefined =>
  isRecord(obj.metadata) ? str(obj.metadata.creationTimestamp) : undefined;

/** A selector's matchLabels when it has any (Istio's WorkloadSelector: labels only). */
function matchLabels(v: unknown): Record<string, string> | undefined {
  const labels = isRecord(v) ? stringMap(v.matchLabels) : undefined;
  return labels && Object.keys(labels).length > 0 ? labels : undefined;
}

const mtlsModes: ReadonlySet<string> = new Set(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']);
/** A MutualTLS message's mode; a missing message or mode is UNSET (security/v1beta1 peer_authentication.proto). */
const mtlsMode = (v: unknown): MtlsSetting => {
  const mode = isRecord(v) ? v.mode : undefined;
  return typeof mode === 'string' && mtlsModes.has(mode) ? (mode as MtlsSetting) : 'UNSET';
};

export function peerAuthenticationRecord(obj: unknown, namespace?: string): PeerAuthenticationRecord | undefined {
  if (!isRecord(obj)) return undefined;
  const id = meta(obj, namespace);
  if (!id) return undefined;
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const record: PeerAuthenticationRecord = {
    namespace: sharedNamespace(id.namespace),
    name: id.name,
    mode: mtlsMode(spec.mtls),
  };
  const when = created(obj);
  if (when !== undefined) record.created = when;
  const selector = matchLabels(spec.selector);
  if (selector) record.selector = selector;
  // portLevelMtls is a map keyed by port number (JSON keys are strings).
  if (isRecord(spec.portLevelMtls)) {
    const ports = Object.entries(spec.portLevelMtls).flatMap(([k, v]) =>
      /^[0-9]+$/.test(k) ? [{ port: Number(k), mode: mtlsMode(v) }] : [],
    );
    if (ports.length > 0) record.ports = ports;
  }
  return record;
}

const tlsModeOf = (v: unknown): string | undefined => (isRecord(v) && typeof v.mode === 'string' ? v.mode : undefined);

/** A traffic policy's TLS settings. A tls block without a mode is DISABLE, the enum's zero value. */
function trafficTls(v: unknown): TrafficTls | undefined {
  if (!isRecord(v)) return undefined;
  const out: TrafficTls = {};
  if (isRecord(v.tls)) out.tls = tlsModeOf(v.tls) ?? 'DISABLE';
  if (Array.isArray(v.portLevelSettings)) {
    const ports = v.portLevelSettings.flatMap((p) => {
      if (!isRecord(p) || !isRecord(p.port) || typeof p.port.number !== 'number') return [];
      return [isRecord(p.tls) ? { port: p.port.number, tls: tlsModeOf(p.tls) ?? 'DISABLE' } : { port: p.port.number }];
    });
    if (ports.length > 0) out.ports = ports;
  }
  return out;
}

export function destinationRuleRecord(obj: unknown, namespace?: string): DestinationRuleRecord | undefined {
  if (!isRecord(obj)) return undefined;
  const id = meta(obj, namespace);
  if (!id) return undefined;
  const spec = isRecord(obj.spec) ? obj.spec : {};
  if (typeof spec.host !== 'string' || spec.host === '') return undefined;
  const record: DestinationRuleRecord = {
    namespace: sharedNamespace(id.namespace),
    name: id.name,
    host: spec.host,
    subsets: (Array.isArray(spec.subsets) ? spec.subsets : []).flatMap((s) => {
      if (!isRecord(s) || typeof s.name !== 'string') return [];
      const subset: DestinationRuleRecord['subsets'][number] = { name: s.name };
      const labels = stringMap(s.labels);
      if (labels && Object.keys(labels).length > 0) subset.labels = labels;
      const policy = trafficTls(s.trafficPolicy);
      if (policy) subset.trafficPolicy = policy;
      return [subset];
    }),
  };
  const when = created(obj);
  if (when !== undefined) record.created = when;
  if (Array.isArray(spec.exportTo)) record.exportTo = strings(spec.exportTo);
  const selector = isRecord(spec.workloadSelector) ? (stringMap(spec.workloadSelector.matchLabels) ?? {}) : undefined;
  if (selector) record.workloadSelector = selector;
  const policy = trafficTls(spec.trafficPolicy);
  if (policy) record.trafficPolicy = policy;
  return record;
}

/** Every tls mode a rule sets: its own, its ports', its subsets'. */
export function tlsModesOf(dr: DestinationRuleRecord): Set<string> {
  const modes = new Set<string>();
  const add = (p: TrafficTls | undefined) => {
    if (p?.tls) modes.add(p.tls);
    for (const port of p?.ports ?? []) if (port.tls) modes.add(port.tls);
  };
  add(dr.trafficPolicy);
  for (const s of dr.subsets) add(s.trafficPolicy);
  return modes;
}

/**
 * A workload's pods as far as the mesh cares (labels, annotations, hostNetwork, container ports);
 * undefined for other kinds, and for objects a controller owns: their owner stands for them.
 */
export function workloadRecord(obj: unknown): WorkloadRecord | undefined {
  if (!isRecord(obj) || typeof obj.kind !== 'string' || typeof obj.apiVersion !== 'string') return undefined;
  const group = obj.apiVersion.includes('/') ? obj.apiVersion.slice(0, obj.apiVersion.lastIndexOf('/')) : '';
  const isPod = group === '' && obj.kind === 'Pod';
  const path = isPod ? [] : templatePath(group, obj.kind);
  if (!path) return undefined;
  const id = meta(obj, undefined);
  if (!id || !isRecord(obj.metadata)) return undefined;
  const owners = obj.metadata.ownerReferences;
  if (Array.isArray(owners) && owners.some((o) => isRecord(o) && o.controller === true)) return undefined;
  const pod = isPod ? (obj as KubeObject) : podFromTemplate(obj as KubeObject, path, obj.kind);
  if (!pod) return undefined;
  const m = isRecord(pod.metadata) ? pod.metadata : {};
  const spec = isRecord(pod.spec) ? pod.spec : {};
  const containers = (Array.isArray(spec.containers) ? spec.containers : []).flatMap((c) =>
    isRecord(c) && typeof c.name === 'string' ? [{ name: c.name, ports: Array.isArray(c.ports) ? c.ports : [] }] : [],
  );
  return {
    namespace: sharedNamespace(id.namespace),
    kind: obj.kind,
    name: id.name,
    pod: {
      metadata: { labels: stringMap(m.labels) ?? {}, annotations: stringMap(m.annotations) ?? {} },
      spec: { hostNetwork: spec.hostNetwork === true, containers },
    },
  };
}

/**
 * The revision that injected a pod, from the `sidecar.istio.io/status` annotation Istio's injector
 * writes (pkg/kube/inject/inject.go SidecarInjectionStatus, `"revision":"<rev>"`, 1.11 to today).
 * Undefined for a pod Istio did not inject, or whose status does not say.
 */
export function injectedRevision(annotations: Readonly<Record<string, string>>): string | undefined {
  const status = annotations['sidecar.istio.io/status'];
  if (status === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(status);
    const revision = isRecord(parsed) ? parsed.revision : undefined;
    return typeof revision === 'string' && revision !== '' ? revision : undefined;
  } catch {
    return undefined;
  }
}

/** The annotations that decide a pod's injection (pkg/kube/inject: inject.go, webhook.go, the template). */
const injectionAnnotations = ['sidecar.istio.io/inject', 'inject.istio.io/templates', 'sidecar.istio.io/nativeSidecar'];

/**
 * A pod Istio injected and that will run again (not Succeeded or Failed), slimmed to what decides
 * its injection when its controller creates it again; undefined for any other pod.
 */
export function injectedPodRecord(obj: unknown): InjectedPodRecord | undefined {
  if (!isRecord(obj) || !isRecord(obj.metadata)) return undefined;
  const id = meta(obj, undefined);
  const all = stringMap(obj.metadata.annotations) ?? {};
  const revision = injectedRevision(all);
  if (!id || revision === undefined) return undefined;
  const phase = isRecord(obj.status) ? obj.status.phase : undefined;
  if (phase === 'Succeeded' || phase === 'Failed') return undefined;
  const annotations: Record<string, string> = {};
  for (const k of injectionAnnotations) if (all[k] !== undefined) annotations[k] = all[k];
  const hostNetwork = isRecord(obj.spec) && obj.spec.hostNetwork === true;
  return {
    namespace: sharedNamespace(id.namespace),
    name: id.name,
    revision,
    pod: {
      metadata: { labels: stringMap(obj.metadata.labels) ?? {}, annotations },
      spec: hostNetwork ? { hostNetwork } : {},
    },
  };
}
