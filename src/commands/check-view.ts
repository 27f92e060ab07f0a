import { ISTIO_NAME_HINTS } from '../mesh/discover.js';

// `check` reads its inputs twice so that its memory does not grow with the tree: first for what
// every object is judged against (the cluster view, Istio's objects for the mesh profile, the
// scope of custom kinds), then file by file to judge and report. The first reading parses only the
// documents that may be such objects; this file decides which, from their text.

/**
 * Kinds the first reading parses: what MemoryClusterView.addObject indexes (and what a later view
 * may), what discoverMesh reads (isIstioObject; Deployments and ConfigMaps by name, below), CRDs.
 */
const KEPT_KINDS = new Set([
  'Namespace',
  'Service',
  'ServiceEntry',
  'DestinationRule',
  'PeerAuthentication',
  'Sidecar',
  'MutatingWebhookConfiguration',
  'Node',
  'CustomResourceDefinition',
]);

/** The one top-level `kind: Name` line of a simply written document. */
const KIND_LINE = /^kind:[ \t]+(["']?)([A-Za-z][A-Za-z0-9]*)\1[ \t]*(?:#.*)?$/m;

/**
 * Whether a YAML document may hold an object the first reading keeps. False only when its text
 * says for certain that it does not: it mentions `kind` once, on a top-level line of the plain
 * form (a second mention — a nested kind, a quoted, explicit or merged key — or any backslash,
 * which could escape a key, means parse it), and that kind is none kept, no List, and for the
 * kinds kept by name, the text lacks that name. A `kind:` line at column 0 is either the root
 * mapping's key or nested in a flow collection, and then the root has no kind at all.
 */
export function mayHoldClusterObject(document: string): boolean {
  const first = document.indexOf('kind');
  if (first < 0 || document.indexOf('kind', first + 4) >= 0 || document.includes('\\')) return true;
  const kind = KIND_LINE.exec(document)?.[2];
  if (kind === undefined) return true;
  if (KEPT_KINDS.has(kind) || kind.endsWith('List')) return true;
  const hint = ISTIO_NAME_HINTS[kind];
  return hint !== undefined && document.includes(hint);
}
