import type { AdmissionResponse, AdmissionReviewResponse, Base64, Verdict } from './types.js';
import type { PatchOp } from './patch.js';
import { jsonString, jsonValue } from '../json-text.js';
import { memoize } from '../memo.js';

// A patch's strings repeat from pod to pod, as the same string objects: annotation paths, and
// values derived from an annotation text every pod of a workload carries (memoised by their
// policies). Looking them up costs less than checking them again (the string's hash is kept in it),
// and much less than JSON.stringify for the YAML of a ProxyConfig, whose newlines need escaping
// (cost and equivalence test: the ledger in bench/RESULTS.md). At most 256 strings of up to 4 KiB.
const patchString = memoize(jsonString, 256, 4096);

/** A patch as JSON text, as JSON.stringify writes it (ops written by meshguard: op, path, value). */
function patchJson(patch: readonly PatchOp[]): string {
  let text = '[';
  for (const op of patch) {
    text += `${text.length > 1 ? ',' : ''}{"op":"${op.op}","path":${patchString(op.path)}`;
    let value: string | undefined;
    if ('value' in op) value = typeof op.value === 'string' ? patchString(op.value) : jsonValue(op.value);
    text += value === undefined ? '}' : `,"value":${value}}`;
  }
  return `${text}]`;
}

const base64 = (text: string) => Buffer.from(text).toString('base64') as Base64;

/**
 * The answer to a request for its verdict. The API server rejects a patch on a denial: only an
 * allowed answer carries one.
 */
export function responseOf(uid: string, verdict: Verdict): AdmissionResponse {
  const response: AdmissionResponse = { uid, allowed: verdict.allowed };
  if (!verdict.allowed) response.status = { code: 403, message: verdict.denials.join('; ') };
  if (verdict.warnings.length > 0) response.warnings = verdict.warnings;
  if (verdict.allowed && verdict.patch.length > 0) {
    response.patch = base64(patchJson(verdict.patch));
    response.patchType = 'JSONPatch';
  }
  return response;
}

/**
 * An answer as the JSON text JSON.stringify writes for it when its fields were set in the order
 * of their types (as responseOf sets them). Written out rather than by JSON.stringify, which would
 * escape-check the patch's base64 character by character: base64 cannot need escaping, and
 * patch's type only admits encoded text. Strings from the request or from policies go through
 * jsonString or JSON.stringify.
 */
export function answerJson(answer: AdmissionReviewResponse): string {
  const { uid, allowed, status, warnings, patch, patchType } = answer.response;
  let text = `{"uid":${jsonString(uid)},"allowed":${allowed ? 'true' : 'false'}`;
  if (status !== undefined) text += `,"status":{"code":${status.code},"message":${jsonString(status.message)}}`;
  if (warnings !== undefined) text += `,"warnings":${JSON.stringify(warnings)}`;
  if (patch !== undefined) text += `,"patch":"${patch}"`;
  if (patchType !== undefined) text += `,"patchType":"${patchType}"`;
  return `{"apiVersion":"${answer.apiVersion}","kind":"${answer.kind}","response":${text}}}`;
}
