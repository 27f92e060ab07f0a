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

export function totals(reports: readonly ObjectReport[]): Totals {
  const count = (p: (r: ObjectReport) => boolean) => reports.filter(p).length;
  const has = (r: ObjectReport, action: Finding['action']) => r.findings.some((f) => f.action === action);
  return {
    objects: reports.length,
    denied: count((r) => r.denied),
    withWarnings: count((r) => has(r, 'warn')),
    patched: count((r) => r.patch !== undefined),
    errors: count((r) => has(r, 'error')),
    unverified: count((r) => r.findings.some((f) => f.unverified !== undefined)),
  };
}

/** How an object is named in reports: `Kind ns/name`, `Kind name` (cluster-scoped), or with its namespace unknown. */
export function objectName(r: Pick<ObjectReport, 'kind' | 'namespace' | 'name'>): string {
  if (r.namespace === null) return `${r.kind} ${r.name} (namespace not given)`;
  return `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`;
}

export function exitCode(reports: readonly ObjectReport[]): 0 | 1 {
  return reports.some((r) => r.denied) ? 1 : 0;
}
