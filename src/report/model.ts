import type { PatchOp } from '../admission/patch.js';

// One finding model for every report format (text, json, sarif, junit, PolicyReport), shared by
// `check` and `audit`.

export interface Finding {
  policy: string;
  /**
   * deny | warn | patch | error, as the request would meet it; patches on templates apply to the
   * pods. In warn mode nothing is denied or patched: those come as warnings ("would …").
   */
  action: 'deny' | 'warn' | 'patch' | 'error';
  mode: string;
  subject: 'object' | 'template';
  message: string;
  /** Why this could not be verified (an unknown namespace, unknown namespace labels); absent when it was. */
  unverified?: string;
}

export interface ObjectReport {
  source: string;
  document: number;
  /** 1-based line where the object's document starts (0 when it did not come from a file). */
  line: number;
  apiVersion: string;
  kind: string;
  /** "" for cluster-scoped objects; null when the namespace is unknown (none in the file, no --namespace). */
  namespace: string | null;
  name: string;
  /** The policies that judged the object (or its pods), with or without findings. */
  policies: string[];
  /** Something verified would be denied. */
  denied: boolean;
  findings: Finding[];
  /** The object's JSON Patch and a unified diff of it, when a policy would change it or its pods. */
  patch?: PatchOp[];
  diff?: string;
}

export interface Totals {
  objects: number;
  denied: number;
  withWarnings: number;
  patched: number;
  errors: number;
  unverified: number;
}

/** Totals counted one report at a time (reports can be written out as they come). */
export class Tally {
  readonly totals: Totals = { objects: 0, denied: 0, withWarnings: 0, patched: 0, errors: 0, unverified: 0 };

  add(r: ObjectReport): void {
    const t = this.totals;
    const has = (action: Finding['action']) => r.findings.some((f) => f.action === action);
    t.objects++;
    if (r.denied) t.denied++;
    if (has('warn')) t.withWarnings++;
    if (r.patch !== undefined) t.patched++;
    if (has('error')) t.errors++;
    if (r.findings.some((f) => f.unverified !== undefined)) t.unverified++;
  }
}

export function totals(reports: readonly ObjectReport[]): Totals {
  const tally = new Tally();
  for (const r of reports) tally.add(r);
  return tally.totals;
}

/** How an object is named in reports: `Kind ns/name`, `Kind name` (cluster-scoped), or with its namespace unknown. */
export function objectName(r: Pick<ObjectReport, 'kind' | 'namespace' | 'name'>): string {
  if (r.namespace === null) return `${r.kind} ${r.name} (namespace not given)`;
  return `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`;
}

export function exitCode(reports: readonly ObjectReport[]): 0 | 1 {
  return reports.some((r) => r.denied) ? 1 : 0;
}
