import type { AdmissionResponse, AdmissionReviewResponse, ReviewVersion } from './types.js';
import type { PatchOp } from './patch.js';
import { memoize } from '../memo.js';

export interface Verdict {
  allowed: boolean;
  /** Shown to the user on denial, one line per failing policy. */
  denials: string[];
  warnings: string[];
  patch: PatchOp[];
}

// The pods of one workload get the same patch, so its base64 is kept by the patch's JSON text:
// under load, encoding it for every pod cost 5 % of a pod review's CPU (paired runs), looking it
// up much less. At most 256 texts of up to 4 KiB.
const base64Of = memoize((json) => Buffer.from(json).toString('base64'), 256, 4096);

/** Builds the response answered in the same version the request came in. */
export function buildReview(version: ReviewVersion, uid: string, verdict: Verdict): AdmissionReviewResponse {
  const response: AdmissionResponse = { uid, allowed: verdict.allowed };
  if (!verdict.allowed) response.status = { code: 403, message: verdict.denials.join('; ') };
  if (verdict.warnings.length > 0) response.warnings = verdict.warnings;
  // The API server rejects a patch on a denial; a patch only makes sense when allowed.
  if (verdict.allowed && verdict.patch.length > 0) {
    response.patch = base64Of(JSON.stringify(verdict.patch));
    response.patchType = 'JSONPatch';
  }
  return { apiVersion: version, kind: 'AdmissionReview', response };
}
