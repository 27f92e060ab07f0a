import type { ValidateFunction } from 'ajv';
import type { AdmissionReview } from './types.js';
import { validate as generated } from './review-validator.generated.js';

// Compiled from review-schema.ts ahead of time (npm run generate): compiling at start-up is slow.
const validate = generated as unknown as ValidateFunction<AdmissionReview>;

export type Decoded = { ok: true; review: AdmissionReview } | { ok: false; reason: string };

/** Narrows a parsed JSON body to an AdmissionReview, or says what is wrong with it. */
export function decodeReview(body: unknown): Decoded {
  if (validate(body)) return { ok: true, review: body };
  const err = validate.errors?.[0];
  const where = err?.instancePath ? err.instancePath.slice(1).replaceAll('/', '.') : 'body';
  return { ok: false, reason: `not an AdmissionReview: ${where} ${err?.message ?? 'is invalid'}` };
}
