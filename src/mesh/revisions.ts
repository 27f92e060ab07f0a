import type { MeshProfile } from './profile.js';
import type { LabelSelector } from './selector.js';

// Which injector a namespace's labels select, and what `istio.io/rev` may name: read from the
// profile's injector webhooks, as the API server matches them (istio-discovery
// templates/mutatingwebhook.yaml and revision-tags-mwc.yaml; shared/istio/webhook/SELECTORS.yaml).

export const REV = 'istio.io/rev';
export const INJECTION = 'istio-injection';

/** A value `istio.io/rev` can take on a namespace: a revision, or a tag naming one. */
export interface RevisionName {
  /** The label value. */
  readonly name: string;
  /** The revision whose istiod injects (the tag's target, or the name itself). */
  readonly revision: string;
}

/** The `istio.io/rev` values a selector requires (matchLabels, or In). */
export function revValues(selector: LabelSelector): string[] {
  const out: string[] = [];
  const own = selector.matchLabels?.[REV];
  if (own !== undefined) out.push(own);
  for (const e of selector.matchExpressions ?? [])
    if (e.key === REV && e.operator === 'In') out.push(...(e.values ?? []));
  return out;
}

const namesOf = new WeakMap<MeshProfile, readonly RevisionName[]>();

/**
 * The installed revisions and tags: each `istio.io/rev` value some injector webhook's
 * namespaceSelector takes (a namespace labelled with it alone is served). A tag's webhooks carry
 * the tag in their selectors and its revision in the configuration's own `istio.io/rev`. Computed
 * once per profile.
 */
export function revisionNames(mesh: MeshProfile): readonly RevisionName[] {
  let names = namesOf.get(mesh);
  if (names) return names;
  const seen = new Map<string, RevisionName>();
  for (const w of mesh.webhooks) {
    for (const name of revValues(w.namespaceSelector)) {
      if (!seen.has(name) && w.matchesNamespace({ [REV]: name })) seen.set(name, { name, revision: w.revision });
    }
  }
  names = Object.freeze([...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
  namesOf.set(mesh, names);
  return names;
}

/** "default, canary, prod (tag of canary)": the installed names as a message lists them. */
export function showRevisionNames(names: readonly RevisionName[]): string {
  if (names.length === 0) return 'none';
  return names.map((n) => (n.name === n.revision ? n.name : `${n.name} (tag of ${n.revision})`)).join(', ');
}
