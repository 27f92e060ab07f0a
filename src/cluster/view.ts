// What policies may know about the cluster. Policies never do I/O: the server feeds this view
// from watches, `meshguard check` from its input manifests, tests from plain data.

export interface ServicePort {
  name?: string;
  port: number;
  /** A number, a container port name, or undefined (= port). */
  targetPort?: number | string;
  protocol: string;
}

export interface ServiceRecord {
  namespace: string;
  name: string;
  type: string;
  selector?: Readonly<Record<string, string>>;
  ports: readonly ServicePort[];
  externalName?: string;
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
  /** ExternalName Services that have a port with this number (any protocol). */
  externalNamesOnPort(port: number): Iterable<ServiceRecord>;
  /** ServiceEntries that have a port with this number (any protocol). */
  serviceEntriesOnPort(port: number): Iterable<ServiceEntryRecord>;
}
