import type { KubeObject } from '../admission/types.js';
import type { Labels } from './labels.js';

// What policies may know about the cluster. Policies never do I/O: the server feeds this view
// from watches, `meshguard check` from its input manifests, tests from plain data.

export interface ServicePort {
  name?: string;
  port: number;
  /** A number, a container port name, or undefined (= port). */
  targetPort?: number | string;
  protocol: string;
  /** spec.ports[].appProtocol: Istio reads it before the port name. */
  appProtocol?: string;
}

export interface ServiceRecord {
  namespace: string;
  name: string;
  type: string;
  selector?: Readonly<Record<string, string>>;
  ports: readonly ServicePort[];
  externalName?: string;
  /** The annotation networking.istio.io/exportTo, split at commas; unset = the mesh default (all). */
  exportTo?: readonly string[];
}

export interface ServiceEntryPort {
  number: number;
  protocol?: string;
  name?: string;
}

export interface ServiceEntryRecord {
  namespace: string;
  name: string;
  hosts: readonly string[];
  addresses: readonly string[];
  ports: readonly ServiceEntryPort[];
  exportTo?: readonly string[];
  /** spec.resolution, upper case; NONE when unset (the enum's zero value). */
  resolution: string;
  /** Labelled networking.istio.io/enable-autoallocate-ip: "false": Istio's allocator skips it. */
  autoAllocateOptOut?: true;
  /** status.addresses holds addresses Istio's allocator gave it. */
  allocated?: true;
}

/** PeerAuthentication's mTLS modes (security.istio.io): UNSET inherits from the parent scope. */
export type MtlsSetting = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationRecord {
  namespace: string;
  name: string;
  /** metadata.creationTimestamp (RFC 3339, as the API server writes it); unset in manifests. */
  created?: string;
  /** selector.matchLabels when it has any: a workload-level policy; otherwise namespace-wide (mesh-wide in the root namespace). */
  selector?: Readonly<Record<string, string>>;
  /** spec.mtls.mode; UNSET when mtls or its mode is not set. */
  mode: MtlsSetting;
  /** spec.portLevelMtls: container (target) port → mode. Istio reads it on workload-level policies only. */
  ports?: readonly { port: number; mode: MtlsSetting }[];
}

/** The TLS part of a DestinationRule's traffic policy (rule or subset level). */
export interface TrafficTls {
  /** tls.mode as written (DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL) when tls is set; undefined = no tls (auto mTLS). */
  tls?: string;
  /**
   * portLevelSettings in order (Istio takes the first for a port): each replaces the whole policy
   * for its Service port, tls included, so an entry without tls means no tls there.
   */
  ports?: readonly { port: number; tls?: string }[];
}

export interface DestinationRuleRecord {
  namespace: string;
  name: string;
  /** spec.host as written. */
  host: string;
  created?: string;
  exportTo?: readonly string[];
  /** workloadSelector.matchLabels: the rule is then private to the sidecars it selects (Istio >= 1.14). */
  workloadSelector?: Readonly<Record<string, string>>;
  /** spec.trafficPolicy's TLS settings; undefined when the rule has no trafficPolicy. */
  trafficPolicy?: TrafficTls;
  /** Subsets: their labels narrow the Service's pods; their traffic policy is merged over the rule's. */
  subsets: readonly { name: string; labels?: Readonly<Record<string, string>>; trafficPolicy?: TrafficTls }[];
}

/** A workload (or a Pod no controller owns) as the pods it makes, for `meshguard check` and `audit`. */
export interface WorkloadRecord {
  namespace: string;
  kind: string;
  name: string;
  /** Its pod template as a Pod: labels, annotations, hostNetwork and containers' ports only. */
  pod: KubeObject;
}

/** A pod Istio injected, as `meshguard audit` lists it: what decides its injection when it is created again. */
export interface InjectedPodRecord {
  namespace: string;
  name: string;
  /** The revision whose injector added its sidecar (its `sidecar.istio.io/status`). */
  revision: string;
  /** The pod as it would be created again: its labels, the annotations that decide injection, hostNetwork. */
  pod: KubeObject;
}

export interface ClusterView {
  /** false when lookups are off: the answers below are then empty, not authoritative. */
  readonly enabled: boolean;
  /**
   * servicesIn lists every Service of a namespace (a live cluster's watches or listing), not only
   * some (the manifests given to `meshguard check`): only then does "no Service uses this port"
   * hold.
   */
  readonly servicesComplete: boolean;
  /** Labels of a namespace, or undefined when the namespace is unknown. */
  namespaceLabels(namespace: string): Readonly<Record<string, string>> | undefined;
  servicesIn(namespace: string): Iterable<ServiceRecord>;
  /**
   * The Services of a namespace that may send traffic to a pod with these labels, sorted by name:
   * those whose selector the labels match, and those without a selector, whose endpoints are
   * written by hand and may name any pod; never an ExternalName Service. Indexed by label: costs
   * what it finds, not the namespace's Service count.
   */
  servicesFor(namespace: string, labels: Labels | undefined): Iterable<ServiceRecord>;
  service(namespace: string, name: string): ServiceRecord | undefined;
  /** ExternalName Services that have a port with this number (any protocol). */
  externalNamesOnPort(port: number): Iterable<ServiceRecord>;
  /** ServiceEntries that have a port with this number (any protocol). */
  serviceEntriesOnPort(port: number): Iterable<ServiceEntryRecord>;
  /** ServiceEntries that list this host (compared case-insensitively; wildcards only as written). */
  serviceEntriesWithHost(host: string): Iterable<ServiceEntryRecord>;
  /** PeerAuthentications of a namespace (security.istio.io). */
  peerAuthenticationsIn(namespace: string): Iterable<PeerAuthenticationRecord>;
  /**
   * DestinationRules whose spec.host is written exactly so (case-insensitively): a full name, or a
   * wildcard such as `*.ns.svc.cluster.local` or `*`. Short hosts are found with the next one.
   */
  destinationRulesWithHost(host: string): Iterable<DestinationRuleRecord>;
  /** DestinationRules of a namespace whose host is a short name (no dot), which Istio expands with the rule's namespace. */
  destinationRulesWithShortHost(namespace: string, name: string): Iterable<DestinationRuleRecord>;
  /** DestinationRules of a namespace. */
  destinationRulesIn(namespace: string): Iterable<DestinationRuleRecord>;
  /** DestinationRules that set this tls mode anywhere: the rule, a port, a subset. */
  destinationRulesWithTlsMode(mode: string): Iterable<DestinationRuleRecord>;
  /** Namespaces that hold Services. */
  serviceNamespaces(): Iterable<string>;
  /**
   * Workloads of a namespace (Deployments, StatefulSets, …, Pods no controller owns): only in
   * `meshguard check` and `audit`, from the objects they read; the webhook's view holds none.
   */
  workloadsIn(namespace: string): Iterable<WorkloadRecord>;
  /**
   * Running pods Istio injected in a namespace; undefined when pods are not known: only
   * `meshguard audit` lists them (the webhook watches no pods).
   */
  injectedPods(namespace: string): Iterable<InjectedPodRecord> | undefined;
}
