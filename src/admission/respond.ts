import type { AdmissionResponse, AdmissionReviewResponse, ReviewVersion } from './types.js';
import type { PatchOp } from './patch.js';

export interface Verdict {
  allowed: boolean;
  /** Shown to the user on denial, one line per failing policy. */
  denials: string[];
  warnings: string[];
  patch: PatchOp[];
}

/** Builds the response answered in the same version the request came in. */
export function buildReview(version: ReviewVersion, uid: string, verdict: Verdict): AdmissionReviewResponse {
  const response: AdmissionResponse = { uid, allowed: verdict.allowed };
  if (!verdict.allowed) response.status = { code: 403, message: verdict.denials.join('; ') };
  if (verdict.warnings.length > 0) response.warnings = verdict.warnings;
  // The API server rejects a patch on a denial; a patch only makes sense when allowed.
  if (verdict.allowed && verdict.patch.length > 0) {
    response.patch = Buffer.from(JSON.stringify(verdict.patch)).toString('base64');
    response.patchType = 'JSONPatch';
  }
  return { apiVersion: version, kind: 'AdmissionReview', response };
}
