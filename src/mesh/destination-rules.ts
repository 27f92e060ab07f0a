import type { ClusterView, DestinationRuleRecord, ServiceRecord, TrafficTls } from '../cluster/view.js';
import { oldestFirst } from './config-order.js';
import { visibility } from './hosts.js';
import type { MeshFeatures } from './releases.js';

// Which DestinationRule a sidecar reads for a Kubernetes Service's host, and the TLS it then
// originates to a Service port. istio/istio (master of 2026-08):
//   pilot/pkg/model/config.go  ResolveShortnameToFQDN (a host without a dot, other than `*`, is
//     <host>.<rule's namespace>.svc.<domain>), MostSpecificHostMatch (the exact host first, then
//     the longest wildcard whose suffix matches), pkg/config/host MoreSpecific.
//   pilot/pkg/model/push_context.go  destinationRule: the client's namespace, then the Service's
//     namespace (rules exported to the client), then the root namespace; setDestinationRules.
//   pilot/pkg/model/destination_rule.go  mergeDestinationRule: rules of one namespace for the same
//     host are merged, the oldest top-level trafficPolicy kept (from 1.24 only between rules with
//     the same exportTo).
//   pilot/pkg/networking/util/util.go  GetPortLevelTrafficPolicy (the first portLevelSettings entry
//     for the Service port replaces the whole policy, tls included), MergeSubsetTrafficPolicy.

/** A Service's host name in the cluster. */
export const serviceHost = (svc: Pick<ServiceRecord, 'namespace' | 'name'>, clusterDomain: string) =>
  `${svc.name}.${svc.namespace}.svc.${clusterDomain}`.toLowerCase();

/** A rule's host as Istio resolves it (lower-cased, as the view indexes it). */
export function resolvedHost(dr: Pick<DestinationRuleRecord, 'host' | 'namespace'>, clusterDomain: string): string {
  const host = dr.host.toLowerCase();
  return host.includes('.') || host === '*' ? host : `${host}.${dr.namespace}.svc.${clusterDomain}`;
}

const wildcard = (host: string) => host.startsWith('*');

/** Whether a rule's (resolved) host covers a Service host (host.Name.Matches, one side a plain name). */
export const covers = (pattern: string, host: string) =>
  wildcard(pattern) ? host.endsWith(pattern.slice(1)) : pattern === host;

/** host.MoreSpecific: a plain name before a wildcard, then the longer, then alphabetical. */
export function moreSpecific(a: string, b: string): boolean {
  if (wildcard(a) !== wildcard(b)) return !wildcard(a);
  return a.length === b.length ? a < b : a.length > b.length;
}

/** The wildcards that can cover a plain host: `*.<each suffix at a dot>` and `*`. */
function wildcardsOf(host: string): string[] {
  const out: string[] = [];
  for (let i = host.indexOf('.'); i >= 0; i = host.indexOf('.', i + 1)) out.push(`*${host.slice(i)}`);
  out.push('*');
  return out;
}

/** Every rule in the view whose host covers this Service's host, by index lookups only. */
export function rulesCovering(
  cluster: ClusterView,
  svc: ServiceRecord,
  clusterDomain: string,
): DestinationRuleRecord[] {
  const host = serviceHost(svc, clusterDomain);
  const out = [
    ...cluster.destinationRulesWithHost(host),
    ...cluster.destinationRulesWithShortHost(svc.namespace, svc.name),
  ];
  for (const w of wildcardsOf(host)) out.push(...cluster.destinationRulesWithHost(w));
  return out;
}

/**
 * The Services a rule's host can cover: one Service, every Service of a namespace
 * (`*.ns.svc.<domain>`), or every namespace's (`*`, `*.svc.<domain>`, `*.<domain>`, …). None for
 * hosts outside the cluster.
 */
export type ServiceScope =
  | { kind: 'service'; namespace: string; name: string }
  | { kind: 'namespace'; namespace: string }
  | { kind: 'all' }
  | { kind: 'none' };

export function serviceScope(dr: DestinationRuleRecord, clusterDomain: string): ServiceScope {
  const host = resolvedHost(dr, clusterDomain);
  const suffix = `.svc.${clusterDomain.toLowerCase()}`;
  if (!wildcard(host)) {
    const [name, namespace, ...rest] = host.endsWith(suffix) ? host.slice(0, -suffix.length).split('.') : [];
    return name && namespace && rest.length === 0 ? { kind: 'service', namespace, name } : { kind: 'none' };
  }
  // `*.<x>` covers name.ns.svc.<domain> when that ends with `.<x>`.
  const tail = host.slice(1);
  if (host === '*' || suffix.endsWith(tail)) return { kind: 'all' };
  if (tail.endsWith(suffix)) {
    const labels = tail.slice(1, -suffix.length).split('.');
    return labels.length === 1 && labels[0] ? { kind: 'namespace', namespace: labels[0] } : { kind: 'none' };
  }
  return { kind: 'none' };
}

/** The rule is exported to every namespace: exportTo unset (the mesh default `*`) or holding `*`. */
const exportedToAll = (dr: DestinationRuleRecord) =>
  !dr.exportTo || dr.exportTo.length === 0 || dr.exportTo.includes('*');

const sameSet = (a: readonly string[] = [], b: readonly string[] = []) =>
  a.length === b.length && a.every((x) => b.includes(x)) && b.every((x) => a.includes(x));

/** How a rule stands for one Service host. */
export type Use =
  /** No client reads it for this host: `by` is the rule read instead. */
  | { used: false; by: DestinationRuleRecord; why: string }
  /**
   * Read for this host. Rules of one namespace for the same host are merged: the top-level traffic
   * policy in force is the oldest one among them (`from`, when not this rule's), and a subset
   * whose name an older rule already defines is dropped.
   */
  | {
      used: true;
      trafficPolicy: TrafficTls | undefined;
      from?: DestinationRuleRecord;
      droppedSubsets: ReadonlySet<string>;
    };

const label = (dr: DestinationRuleRecord) => `${dr.namespace}/${dr.name}`;

/**
 * Whether sidecars read `rule` for a Service's host. Not when, in its namespace, a rule without a
 * workloadSelector has a more specific host (MostSpecificHostMatch answers with that one), nor
 * when it is in the root namespace and the Service's own namespace has a rule for the host
 * exported to every namespace (read before the root namespace's). `others` are the rules covering
 * the host (rulesCovering); `rule` itself may be among them.
 */
export function use(
  rule: DestinationRuleRecord,
  others: readonly DestinationRuleRecord[],
  svc: ServiceRecord,
  clusterDomain: string,
  rootNamespace: string,
  features: MeshFeatures,
): Use {
  const host = serviceHost(svc, clusterDomain);
  const mine = resolvedHost(rule, clusterDomain);
  const merged: DestinationRuleRecord[] = [rule];
  for (const other of others) {
    if (other.namespace === rule.namespace && other.name === rule.name) continue;
    const theirs = resolvedHost(other, clusterDomain);
    if (!covers(theirs, host)) continue;
    if (other.namespace === rule.namespace && !other.workloadSelector) {
      if (theirs !== mine && moreSpecific(theirs, mine))
        return { used: false, by: other, why: `${label(other)} is more specific for ${host}` };
      // The same host in one namespace: merged (from 1.24 only with an equal exportTo).
      if (
        theirs === mine &&
        !rule.workloadSelector &&
        (!features.destinationRuleMergeByExportTo || sameSet(rule.exportTo, other.exportTo))
      )
        merged.push(other);
    }
    if (
      rule.namespace === rootNamespace &&
      svc.namespace !== rootNamespace &&
      other.namespace === svc.namespace &&
      !other.workloadSelector &&
      exportedToAll(other)
    ) {
      return { used: false, by: other, why: `${label(other)} in the Service's namespace is read first` };
    }
  }
  // mergeDestinationRule keeps the first top-level policy in creation order, and the first subset of a name.
  merged.sort(oldestFirst);
  const from = merged.find((r) => r.trafficPolicy);
  const droppedSubsets = new Set<string>();
  for (const r of merged) {
    if (r === rule) break;
    for (const sub of r.subsets) droppedSubsets.add(sub.name);
  }
  return {
    used: true,
    trafficPolicy: from?.trafficPolicy,
    ...(from && from !== rule && { from }),
    droppedSubsets,
  };
}

/** Where a tls mode comes from, for messages. */
export interface TlsAt {
  /** The tls mode sent to the port, undefined for none (auto mTLS). */
  tls?: string;
  /** rule, port (a portLevelSettings entry), subset, or subset port. */
  level: 'rule' | 'port' | 'subset' | 'subset port' | 'none';
}

/** GetPortLevelTrafficPolicy: the first entry for the Service port replaces the policy, tls included. */
function atPort(policy: TrafficTls | undefined, port: number): { tls?: string; portLevel: boolean } | undefined {
  if (!policy) return undefined;
  const entry = policy.ports?.find((p) => p.port === port);
  return entry
    ? { ...(entry.tls && { tls: entry.tls }), portLevel: true }
    : { ...(policy.tls && { tls: policy.tls }), portLevel: false };
}

/** The tls mode a client sends to a Service port, for the rule's own traffic or one subset's (MergeSubsetTrafficPolicy). */
export function tlsFor(rulePolicy: TrafficTls | undefined, port: number, subsetPolicy?: TrafficTls): TlsAt {
  const base = atPort(rulePolicy, port);
  const fromRule: TlsAt = base?.tls ? { tls: base.tls, level: base.portLevel ? 'port' : 'rule' } : { level: 'none' };
  const sub = atPort(subsetPolicy, port);
  if (!sub) return fromRule;
  if (sub.portLevel) return sub.tls ? { tls: sub.tls, level: 'subset port' } : { level: 'none' };
  return sub.tls ? { tls: sub.tls, level: 'subset' } : fromRule;
}

/** host.Name.Matches: whether two hosts, either of them a wildcard, have a host in common. */
export function overlap(a: string, b: string): boolean {
  if (wildcard(a) && wildcard(b))
    return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (wildcard(a)) return b.endsWith(a.slice(1));
  if (wildcard(b)) return a.endsWith(b.slice(1));
  return a === b;
}

/**
 * The rules a wildcard rule in a client namespace keeps that namespace's clients from reading:
 * those of the root namespace and, for `*.ns.svc.<domain>`, of ns, that share a host with it, are
 * exported to the client namespace and select no workloads (push_context.go destinationRule: the
 * client's namespace is read first). Found by namespace, never by a scan of every rule.
 */
export function shadowedBy(
  rule: DestinationRuleRecord,
  cluster: ClusterView,
  clusterDomain: string,
  rootNamespace: string,
): DestinationRuleRecord[] {
  const host = resolvedHost(rule, clusterDomain);
  const scope = serviceScope(rule, clusterDomain);
  const namespaces = new Set([rootNamespace, ...(scope.kind === 'namespace' ? [scope.namespace] : [])]);
  namespaces.delete(rule.namespace);
  const out: DestinationRuleRecord[] = [];
  for (const ns of namespaces) {
    for (const other of cluster.destinationRulesIn(ns)) {
      if (other.workloadSelector || !overlap(host, resolvedHost(other, clusterDomain))) continue;
      const seen = visibility(other.exportTo, other.namespace);
      if (seen === 'all' || seen.has(rule.namespace)) out.push(other);
    }
  }
  return out.sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
}
