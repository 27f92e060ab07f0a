import { viewKinds } from '../cluster/list.js';
import { workloadKinds } from '../engine/workloads.js';
import { istioSources } from '../mesh/sources.js';

// `check` reads its inputs twice so that its memory does not grow with the tree: first for what
// every object is judged against (the cluster view, Istio's objects for the mesh profile, the
// scope of custom kinds), then file by file to judge and report. The first reading parses only the
// documents that may be such objects; this file decides which, from their text.

/**
 * Kinds the first reading parses whatever their name: what MemoryClusterView.addObject indexes (the
 * view's kinds; workloads and Pods, for the pods a Service selects), Istio's objects read whatever
 * their name, CRDs.
 */
const PARSED = new Set([
  ...viewKinds.map((k) => k.kind),
  ...workloadKinds.map((k) => k.kind),
  'Pod',
  ...istioSources.filter((s) => !s.names).map((s) => s.kind),
  'CustomResourceDefinition',
]);
/** Istio's objects read by name: their documents are parsed only when they hold that text. */
const BY_NAME = new Map(istioSources.flatMap((s) => (s.names && s.nameText ? [[s.kind, s.nameText] as const] : [])));

/** The one top-level `kind: Name` line of a simply written document. */
const KIND_LINE = /^kind:[ \t]+(["']?)([A-Za-z][A-Za-z0-9]*)\1[ \t]*(?:#.*)?$/m;

/**
 * Whether a YAML document may hold an object the first reading keeps. False only when its text
 * says for certain that it does not: it mentions `kind` once, on a top-level line of the plain
 * form (a second mention — a nested kind, a quoted, explicit or merged key — or any backslash,
 * which could escape a key, means parse it), and that kind is none of those kept, no List, and
 * for the kinds kept by name, the text lacks that name. A `kind:` line at column 0 is either the
 * root mapping's key or nested in a flow collection, and then the root has no kind at all.
 */
export function mayHoldClusterObject(document: string): boolean {
  const first = document.indexOf('kind');
  if (first < 0 || document.indexOf('kind', first + 4) >= 0 || document.includes('\\')) return true;
  const kind = KIND_LINE.exec(document)?.[2];
  if (kind === undefined) return true;
  if (PARSED.has(kind) || kind.endsWith('List')) return true;
  const name = BY_NAME.get(kind);
  return name !== undefined && document.includes(name);
}
