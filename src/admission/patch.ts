// RFC 6902 JSON Patch helpers. Policies emit ops against the object they were given; the
// engine merges the ops of several policies into one patch the API server can apply.
import { memoize } from '../memo.js';
import { isRecord } from '../guards.js';

export type PatchOp = { op: 'add' | 'replace' | 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
export function escapePointer(segment: string): string {
  // Most segments have neither: no new strings for them.
  if (!segment.includes('~') && !segment.includes('/')) return segment;
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

export function pointer(...segments: (string | number)[]): string {
  let path = '';
  for (const s of segments) path += '/' + (typeof s === 'number' ? String(s) : escapePointer(s));
  return path;
}

/**
 * The op that sets one annotation, whether or not the object already has annotations
 * (`add /metadata/annotations` with a map when there are none).
 */
export function setAnnotation(annotations: Record<string, string> | undefined, key: string, value: string): PatchOp {
  if (annotations == null) return { op: 'add', path: '/metadata/annotations', value: { [key]: value } };
  return { op: Object.hasOwn(annotations, key) ? 'replace' : 'add', path: annotationPath(key), value };
}

// Policies set a few constant keys, each with a `/` to escape: escaping them for every pod was 8 %
// of the time a pod review spends in the engine and its answer.
const annotationPath = memoize((key) => pointer('metadata', 'annotations', key), 64);

/**
 * How one path's two values, set by two policies in one review, combine (the later op's value
 * comes second). By default the later one wins, as JSON Patch would do.
 */
export type Combine = (path: string, earlier: unknown, later: unknown) => unknown;
const laterWins: Combine = (_path, _earlier, later) => later;

/**
 * A member of an annotations or labels map (a pod's, or a template's in `check`): two ops there set
 * one value. Policies use a few constant paths: each is tested once, not on every review.
 */
const isMapMember = memoize((path) => /\/metadata\/(annotations|labels)\/[^/]+$/.test(path), 256, 1024);

/** An add into an array (`/-` appends, `/3` inserts): two of them are two elements, never one. */
const ARRAY_INSERT = /\/(-|[0-9]+)$/;

const unescapePointer = (segment: string) => segment.replaceAll('~1', '/').replaceAll('~0', '~');

/**
 * Concatenates patches from several policies computed against the same object. Two `add`s of an
 * object at the same path (both policies creating `metadata.annotations`) become one add of the
 * merged map, and a later add of a child of such an object folds into it: otherwise the second add
 * would replace the first. Two policies setting one annotation or label (hold and drain both edit
 * proxy.istio.io/config) give one op whose value `combine` makes of both. Otherwise policies own
 * disjoint paths; a same-path conflict beyond that is a bug: the later op wins, as JSON Patch would do.
 */
export function mergePatches(patches: readonly (readonly PatchOp[])[], combine: Combine = laterWins): PatchOp[] {
  const out: PatchOp[] = [];
  // path → object value we add there; most patches add none, and then need no map
  let created: Map<string, Record<string, unknown>> | undefined;
  // annotation or label path → the op in `out` that sets it
  let members: Map<string, { value: unknown }> | undefined;
  const put = (into: Record<string, unknown>, path: string, key: string, value: unknown) => {
    into[key] = Object.hasOwn(into, key) ? combine(path, into[key], value) : value;
  };
  for (const patch of patches) {
    for (const op of patch) {
      if (op.op === 'add' && isRecord(op.value) && !ARRAY_INSERT.test(op.path)) {
        created ??= new Map();
        const existing = created.get(op.path);
        if (existing) {
          for (const [k, v] of Object.entries(op.value)) put(existing, `${op.path}/${escapePointer(k)}`, k, v);
          continue;
        }
        const value = { ...op.value };
        created.set(op.path, value);
        out.push({ op: 'add', path: op.path, value });
        continue;
      }
      if (op.op === 'add' || op.op === 'replace') {
        if (created) {
          const slash = op.path.lastIndexOf('/');
          const parent = created.get(op.path.slice(0, slash));
          if (parent) {
            put(parent, op.path, unescapePointer(op.path.slice(slash + 1)), op.value);
            continue;
          }
        }
        if (isMapMember(op.path)) {
          const prior = members?.get(op.path);
          if (prior) {
            prior.value = combine(op.path, prior.value, op.value);
            continue;
          }
          const copy = { ...op };
          (members ??= new Map()).set(op.path, copy);
          out.push(copy);
          continue;
        }
      }
      if (op.op === 'remove') members?.delete(op.path);
      out.push(op);
    }
  }
  return out;
}
