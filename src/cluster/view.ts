import type { KubeObject } from '../admission/types.js';

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
  service(namespace: string, name: string): ServiceRecord | undefined;
  /** ExternalName Services that have a port with this number (any protocol). */
  externalNamesOnPort(port: number): Iterable<ServiceRecord>;
  /** ServiceEntries that have a port with this number (any protocol). */
  serviceEntriesOnPort(port: number): Iterable<ServiceEntryRecord>;
  /** ServiceEntries that list this host (compared case-insensitively; wildcards only as written). */
  serviceEntriesWithHost(host: string): Iterable<ServiceEntryRecord>;
  /**
   * Running pods Istio injected in a namespace; undefined when pods are not known: only
   * `meshguard audit` lists them (the webhook watches no pods).
   */
  injectedPods(namespace: string): Iterable<InjectedPodRecord> | undefined;
}
