import { selects, type Labels } from './labels.js';
import type {
  ClusterView,
  DestinationRuleRecord,
  InjectedPodRecord,
  PeerAuthenticationRecord,
  ServiceEntryRecord,
  ServiceRecord,
  WorkloadRecord,
} from './view.js';
import {
  destinationRuleRecord,
  injectedPodRecord,
  namespaceRecord,
  peerAuthenticationRecord,
  serviceEntryRecord,
  serviceRecord,
  tlsModesOf,
  workloadRecord,
} from './records.js';

const key = (r: { namespace: string; name: string }) => `${r.namespace}/${r.name}`;
const none: readonly never[] = [];

/** Adds `value` under `index[k]`, keyed by `id`. */
function put<V>(index: Map<number | string, Map<string, V>>, k: number | string, id: string, value: V): void {
  let bucket = index.get(k);
  if (!bucket) index.set(k, (bucket = new Map()));
  bucket.set(id, value);
}

/**
 * Where a DestinationRule's host is indexed: a short name (no dot, not `*`) under its namespace,
 * since Istio expands it with the rule's namespace; anything else as written.
 */
const drHostKey = (dr: DestinationRuleRecord) =>
  !dr.host.includes('.') && dr.host !== '*'
    ? { short: `${dr.namespace}/${dr.host.toLowerCase()}` }
    : { host: dr.host.toLowerCase() };

/**
 * The Services of one large namespace (more than `indexAbove`) that send traffic to pods, by one
 * label of their selector (the first): label key → value → the Service, or the Services when several share it. Those without a
 * selector are under the key '', which no label has. Most values belong to one Service: it is
 * kept as itself, not in an array or a Map of its own (56 and about 170 bytes more per Service;
 * the goal is under 300 B per Service in the view).
 */
type BySelector = Map<string, Map<string, ServiceRecord | ServiceRecord[]>>;

function selectorKey(svc: ServiceRecord): [string, string] {
  for (const k in svc.selector) return [k, svc.selector[k] as string];
  return ['', ''];
}

function indexService(index: BySelector, svc: ServiceRecord): void {
  const [k, v] = selectorKey(svc);
  let values = index.get(k);
  if (!values) index.set(k, (values = new Map()));
  const found = values.get(v);
  if (found === undefined) values.set(v, svc);
  else if (Array.isArray(found)) found.push(svc);
  else values.set(v, [found, svc]);
}

function unindexService(index: BySelector, svc: ServiceRecord): void {
  const [k, v] = selectorKey(svc);
  const values = index.get(k);
  const found = values?.get(v);
  if (!values || !found) return;
  if (Array.isArray(found)) {
    found.splice(found.indexOf(svc), 1);
    if (found.length > 1) return;
    if (found.length === 1) return void values.set(v, found[0] as ServiceRecord);
  }
  values.delete(v);
  if (values.size === 0) index.delete(k);
}

const byName = (a: ServiceRecord, b: ServiceRecord) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function drop<V>(index: Map<number | string, Map<string, V>>, k: number | string, id: string): void {
  const bucket = index.get(k);
  if (bucket?.delete(id) && bucket.size === 0) index.delete(k);
}

/**
 * The cluster view's indices: by namespace, ExternalName Services and ServiceEntries by port
 * number, ServiceEntries by host, PeerAuthentications by namespace, DestinationRules by host and by
 * the tls modes they set, so a lookup costs what it finds, not what the cluster holds. Each watch
 * event updates them in place. The watch-backed view and `meshguard check` both fill one of these.
 */
export class MemoryClusterView implements ClusterView {
  private readonly namespaces = new Map<string, Readonly<Record<string, string>>>();
  private readonly services = new Map<string, Map<string, ServiceRecord>>();
  private readonly selecting = new Map<string, BySelector>();
  private readonly externalNames = new Map<number | string, Map<string, ServiceRecord>>();
  private readonly serviceEntries = new Map<string, ServiceEntryRecord>();
  private readonly entriesByPort = new Map<number | string, Map<string, ServiceEntryRecord>>();
  private readonly entriesByHost = new Map<number | string, Map<string, ServiceEntryRecord>>();
  private readonly pods = new Map<number | string, Map<string, InjectedPodRecord>>();
  private readonly peerAuthentications = new Map<string, Map<string, PeerAuthenticationRecord>>();
  private readonly destinationRules = new Map<string, DestinationRuleRecord>();
  private readonly rulesByNamespace = new Map<number | string, Map<string, DestinationRuleRecord>>();
  private readonly rulesByHost = new Map<number | string, Map<string, DestinationRuleRecord>>();
  private readonly rulesByShortHost = new Map<number | string, Map<string, DestinationRuleRecord>>();
  private readonly rulesByTlsMode = new Map<number | string, Map<string, DestinationRuleRecord>>();
  private readonly workloads = new Map<number | string, Map<string, WorkloadRecord>>();

  /**
   * Filled from a live cluster (watches, a listing) unless told otherwise: it then holds every
   * Service. `podsListed`: it is given every Pod of the cluster (`meshguard audit`'s listing) and
   * keeps the injected ones.
   */
  constructor(
    readonly enabled = true,
    readonly servicesComplete = enabled,
    readonly podsListed = false,
    /**
     * Namespaces with more Services than this are indexed by label for servicesFor; smaller ones
     * are looked through: a few comparisons cost less than the index's maps (about 70 B per Service).
     */
    private readonly indexAbove = 16,
  ) {}

  /**
   * A view of the Namespaces, Services and ServiceEntries among arbitrary objects (manifests):
   * they hold every Service of their namespaces only when whoever gave them says so, and every
   * Pod only when `podsListed`.
   */
  static fromObjects(objects: Iterable<unknown>, servicesComplete = false, podsListed = false): MemoryClusterView {
    const view = new MemoryClusterView(true, servicesComplete, podsListed);
    for (const obj of objects) view.addObject(obj);
    return view;
  }

  /** Adds an object if it is one the view indexes; ignores the rest. */
  addObject(obj: unknown): void {
    if (typeof obj !== 'object' || obj === null) return;
    const { apiVersion, kind } = obj as { apiVersion?: unknown; kind?: unknown };
    if (kind === 'Namespace' && apiVersion === 'v1') {
      const ns = namespaceRecord(obj);
      if (ns) this.setNamespace(ns.name, ns.labels);
    } else if (kind === 'Service' && apiVersion === 'v1') {
      const svc = serviceRecord(obj);
      if (svc) this.setService(svc);
    } else if (
      kind === 'ServiceEntry' &&
      typeof apiVersion === 'string' &&
      apiVersion.startsWith('networking.istio.io/')
    ) {
      const se = serviceEntryRecord(obj);
      if (se) this.setServiceEntry(se);
    } else if (
      kind === 'PeerAuthentication' &&
      typeof apiVersion === 'string' &&
      apiVersion.startsWith('security.istio.io/')
    ) {
      const pa = peerAuthenticationRecord(obj);
      if (pa) this.setPeerAuthentication(pa);
    } else if (
      kind === 'DestinationRule' &&
      typeof apiVersion === 'string' &&
      apiVersion.startsWith('networking.istio.io/')
    ) {
      const dr = destinationRuleRecord(obj);
      if (dr) this.setDestinationRule(dr);
    } else {
      // A Pod is a workload of its own (when no controller owns it) and, for audit, maybe an injected one.
      const workload = workloadRecord(obj);
      if (workload) put(this.workloads, workload.namespace, `${workload.kind}/${workload.name}`, workload);
      if (kind === 'Pod' && apiVersion === 'v1' && this.podsListed) {
        const pod = injectedPodRecord(obj);
        if (pod) put(this.pods, pod.namespace, pod.name, pod);
      }
    }
  }

  setNamespace(name: string, labels: Readonly<Record<string, string>>): void {
    this.namespaces.set(name, labels);
  }

  deleteNamespace(name: string): void {
    this.namespaces.delete(name);
  }

  setService(svc: ServiceRecord): void {
    this.deleteService(svc.namespace, svc.name);
    put(this.services, svc.namespace, svc.name, svc);
    if (svc.type === 'ExternalName') {
      for (const p of svc.ports) put(this.externalNames, p.port, key(svc), svc);
      return;
    }
    const index = this.selecting.get(svc.namespace);
    const all = this.services.get(svc.namespace);
    if (index) indexService(index, svc);
    else if (all && all.size > this.indexAbove) {
      const built: BySelector = new Map();
      for (const s of all.values()) if (s.type !== 'ExternalName') indexService(built, s);
      this.selecting.set(svc.namespace, built);
    }
  }

  deleteService(namespace: string, name: string): void {
    const old = this.services.get(namespace)?.get(name);
    if (!old) return;
    drop(this.services, namespace, name);
    if (old.type === 'ExternalName') for (const p of old.ports) drop(this.externalNames, p.port, key(old));
    const index = this.selecting.get(namespace);
    if (!index) return;
    if (old.type !== 'ExternalName') unindexService(index, old);
    // Half the size it was built at: a namespace near the line is not indexed and dropped by turns.
    if ((this.services.get(namespace)?.size ?? 0) <= this.indexAbove / 2) this.selecting.delete(namespace);
  }

  setServiceEntry(se: ServiceEntryRecord): void {
    this.deleteServiceEntry(se.namespace, se.name);
    this.serviceEntries.set(key(se), se);
    for (const p of se.ports) put(this.entriesByPort, p.number, key(se), se);
    for (const h of se.hosts) put(this.entriesByHost, h.toLowerCase(), key(se), se);
  }

  deleteServiceEntry(namespace: string, name: string): void {
    const id = `${namespace}/${name}`;
    const old = this.serviceEntries.get(id);
    if (!old) return;
    this.serviceEntries.delete(id);
    for (const p of old.ports) drop(this.entriesByPort, p.number, id);
    for (const h of old.hosts) drop(this.entriesByHost, h.toLowerCase(), id);
  }

  setPeerAuthentication(pa: PeerAuthenticationRecord): void {
    put(this.peerAuthentications, pa.namespace, pa.name, pa);
  }

  deletePeerAuthentication(namespace: string, name: string): void {
    drop(this.peerAuthentications, namespace, name);
  }

  setDestinationRule(dr: DestinationRuleRecord): void {
    this.deleteDestinationRule(dr.namespace, dr.name);
    const id = key(dr);
    this.destinationRules.set(id, dr);
    put(this.rulesByNamespace, dr.namespace, dr.name, dr);
    const at = drHostKey(dr);
    if (at.short !== undefined) put(this.rulesByShortHost, at.short, id, dr);
    else put(this.rulesByHost, at.host, id, dr);
    for (const mode of tlsModesOf(dr)) put(this.rulesByTlsMode, mode, id, dr);
  }

  deleteDestinationRule(namespace: string, name: string): void {
    const id = `${namespace}/${name}`;
    const old = this.destinationRules.get(id);
    if (!old) return;
    this.destinationRules.delete(id);
    drop(this.rulesByNamespace, namespace, name);
    const at = drHostKey(old);
    if (at.short !== undefined) drop(this.rulesByShortHost, at.short, id);
    else drop(this.rulesByHost, at.host, id);
    for (const mode of tlsModesOf(old)) drop(this.rulesByTlsMode, mode, id);
  }

  // A re-list replaces everything of one resource: deletions missed while disconnected go too.
  clearNamespaces(): void {
    this.namespaces.clear();
  }

  clearServices(): void {
    this.services.clear();
    this.selecting.clear();
    this.externalNames.clear();
  }

  clearServiceEntries(): void {
    this.serviceEntries.clear();
    this.entriesByPort.clear();
    this.entriesByHost.clear();
  }

  clearPeerAuthentications(): void {
    this.peerAuthentications.clear();
  }

  clearDestinationRules(): void {
    this.destinationRules.clear();
    this.rulesByNamespace.clear();
    this.rulesByHost.clear();
    this.rulesByShortHost.clear();
    this.rulesByTlsMode.clear();
  }

  namespaceLabels(namespace: string): Readonly<Record<string, string>> | undefined {
    return this.namespaces.get(namespace);
  }

  servicesIn(namespace: string): Iterable<ServiceRecord> {
    return this.services.get(namespace)?.values() ?? none;
  }

  servicesFor(namespace: string, labels: Labels | undefined): Iterable<ServiceRecord> {
    const index = this.selecting.get(namespace);
    const out: ServiceRecord[] = [];
    if (!index) {
      // A few Services: looked at one by one (an empty selector, like none, selects every pod).
      for (const svc of this.services.get(namespace)?.values() ?? none)
        if (svc.type !== 'ExternalName' && (!svc.selector || selects(svc.selector, labels))) out.push(svc);
      return out.length > 1 ? out.sort(byName) : out;
    }
    const add = (found: ServiceRecord | ServiceRecord[] | undefined, selected: (svc: ServiceRecord) => boolean) => {
      if (found === undefined) return;
      if (!Array.isArray(found)) {
        if (selected(found)) out.push(found);
      } else for (const svc of found) if (selected(svc)) out.push(svc);
    };
    add(index.get('')?.get(''), () => true);
    // A Service is under one label of its selector: each is met at most once.
    if (labels) {
      const selected = (svc: ServiceRecord) => selects(svc.selector as Labels, labels);
      for (const k in labels) add(index.get(k)?.get(labels[k] as string), selected);
    }
    return out.length > 1 ? out.sort(byName) : out;
  }

  service(namespace: string, name: string): ServiceRecord | undefined {
    return this.services.get(namespace)?.get(name);
  }

  externalNamesOnPort(port: number): Iterable<ServiceRecord> {
    return this.externalNames.get(port)?.values() ?? none;
  }

  serviceEntriesOnPort(port: number): Iterable<ServiceEntryRecord> {
    return this.entriesByPort.get(port)?.values() ?? none;
  }

  serviceEntriesWithHost(host: string): Iterable<ServiceEntryRecord> {
    return this.entriesByHost.get(host.toLowerCase())?.values() ?? none;
  }

  injectedPods(namespace: string): Iterable<InjectedPodRecord> | undefined {
    if (!this.podsListed) return undefined;
    return this.pods.get(namespace)?.values() ?? none;
  }

  peerAuthenticationsIn(namespace: string): Iterable<PeerAuthenticationRecord> {
    return this.peerAuthentications.get(namespace)?.values() ?? none;
  }

  destinationRulesWithHost(host: string): Iterable<DestinationRuleRecord> {
    return this.rulesByHost.get(host.toLowerCase())?.values() ?? none;
  }

  destinationRulesWithShortHost(namespace: string, name: string): Iterable<DestinationRuleRecord> {
    return this.rulesByShortHost.get(`${namespace}/${name.toLowerCase()}`)?.values() ?? none;
  }

  destinationRulesIn(namespace: string): Iterable<DestinationRuleRecord> {
    return this.rulesByNamespace.get(namespace)?.values() ?? none;
  }

  destinationRulesWithTlsMode(mode: string): Iterable<DestinationRuleRecord> {
    return this.rulesByTlsMode.get(mode)?.values() ?? none;
  }

  workloadsIn(namespace: string): Iterable<WorkloadRecord> {
    return this.workloads.get(namespace)?.values() ?? none;
  }

  serviceNamespaces(): Iterable<string> {
    return this.services.keys();
  }

  get size(): { namespaces: number; services: number; serviceEntries: number } {
    let services = 0;
    for (const m of this.services.values()) services += m.size;
    return { namespaces: this.namespaces.size, services, serviceEntries: this.serviceEntries.size };
  }
}

/** The view when cluster lookups are off: knows nothing, and says so. */
export const clusterOff: ClusterView = new MemoryClusterView(false);
