// Istio's order of configuration objects of one kind (pilot/pkg/model/config.go
// configCompareByCreationTime): creation time, then name, then namespace. Where the oldest wins
// (PeerAuthentications in a scope, DestinationRules merged for one host), this decides. An unset
// time (a manifest) is Go's zero time: the oldest.

interface Config {
  readonly namespace: string;
  readonly name: string;
  /** metadata.creationTimestamp, RFC 3339 in UTC as the API server writes it: ordered as text. */
  readonly created?: string;
}

export function older(a: Config, b: Config): boolean {
  const at = a.created ?? '';
  const bt = b.created ?? '';
  if (at !== bt) return at < bt;
  if (a.name !== b.name) return a.name < b.name;
  return a.namespace < b.namespace;
}

/** A sort comparator, oldest first. */
export const oldestFirst = (a: Config, b: Config): number => (older(a, b) ? -1 : older(b, a) ? 1 : 0);
