// Service host names resolved the way Istio resolves a DestinationRule's `host`: a name without a
// dot is expanded with the rule's own namespace; a name with a dot is taken literally.

export type HostKind =
  /** `*`, or a wildcard outside any cluster namespace: cannot tell whose it is. */
  | { kind: 'any' }
  /** `reviews`: a service in the rule's own namespace. */
  | { kind: 'short' }
  /** `name.ns.svc.<domain>` or `*.ns.svc.<domain>`. */
  | { kind: 'cluster'; name: string; namespace: string }
  /** `name.ns` / `name.ns.svc`: Istio does not expand these, so they match no Service. */
  | { kind: 'unexpanded'; name: string; namespace: string; fqdn: string }
  /** An external or ServiceEntry host. */
  | { kind: 'other' };

// Namespaces every cluster has, so `reviews.default` is a mistake even when the view doesn't know them.
const everywhere = new Set(['default', 'kube-system', 'kube-public']);

export function resolveHost(host: string, clusterDomain: string, knownNamespace: (ns: string) => boolean): HostKind {
  if (host === '*') return { kind: 'any' };
  if (!host.includes('.')) return { kind: 'short' };
  const labels = host.split('.');
  const suffix = `.svc.${clusterDomain}`;
  if (host.endsWith(suffix) && labels.length === 3 + clusterDomain.split('.').length) {
    const [name = '', namespace = ''] = labels;
    if (namespace !== '*' && namespace !== '') return { kind: 'cluster', name, namespace };
    return { kind: 'any' };
  }
  if (labels[0] === '*') return { kind: 'any' };
  const [name = '', namespace = '', third] = labels;
  const fqdn = `${name}.${namespace}${suffix}`;
  // `name.ns.svc` is never an internet name; `name.ns` is one only when ns isn't a namespace.
  if (labels.length === 3 && third === 'svc') return { kind: 'unexpanded', name, namespace, fqdn };
  if (labels.length === 2 && (everywhere.has(namespace) || knownNamespace(namespace))) {
    return { kind: 'unexpanded', name, namespace, fqdn };
  }
  return { kind: 'other' };
}

/**
 * Where a Service or ServiceEntry is visible: in every namespace, or in a set of them. Istio's
 * exportTo (pkg/config/visibility/visibility.go): `*` every namespace, `.` its own, `~` none, else
 * namespace names; unset is the mesh's default, `*` (pkg/config/mesh/mesh.go). As
 * PushContext.IsServiceVisible reads it (pilot/pkg/model/push_context.go).
 */
export type Visibility = 'all' | ReadonlySet<string>;

export function visibility(exportTo: readonly string[] | undefined, namespace: string): Visibility {
  if (exportTo === undefined || exportTo.length === 0 || exportTo.includes('*')) return 'all';
  const seen = new Set<string>();
  for (const e of exportTo) if (e !== '~') seen.add(e === '.' ? namespace : e);
  return seen;
}

/** Some namespace sees both: a sidecar there has both objects' listeners. */
export function meet(a: Visibility, b: Visibility): boolean {
  if (a === 'all') return b === 'all' || b.size > 0;
  if (b === 'all') return a.size > 0;
  for (const ns of a) if (b.has(ns)) return true;
  return false;
}
