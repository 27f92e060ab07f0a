/** Labels as Kubernetes objects carry them (metadata.labels, a selector's matchLabels). */
export type Labels = Readonly<Record<string, string>>;

/**
 * Every label of the selector, with the same value (Istio's labels.Instance.SubsetOf, Kubernetes'
 * equality-based selectors): a Service's selector, a PeerAuthentication's, a subset's labels. An
 * empty selector selects everything; the caller decides what that means for its kind.
 */
export function selects(selector: Labels, labels: Labels | undefined): boolean {
  for (const k in selector)
    if (labels === undefined || !Object.hasOwn(labels, k) || labels[k] !== selector[k]) return false;
  return true;
}

/** A selector with no label (or none at all): a Service with it selects no pod itself; its endpoints are written by hand. */
export function isEmpty(selector: Labels | undefined): boolean {
  for (const _ in selector) return false;
  return true;
}
