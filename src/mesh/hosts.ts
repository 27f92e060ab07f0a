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
