import { Ajv } from 'ajv';
import type { AdmissionReview } from './types.js';

// Checks only what meshguard relies on; unknown fields pass through untouched.
const gvk = {
  type: 'object',
  required: ['group', 'version', 'kind'],
  properties: { group: { type: 'string' }, version: { type: 'string' }, kind: { type: 'string' } },
};
const objectOrNull = { type: ['object', 'null'] };
export const reviewSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'request'],
  properties: {
    apiVersion: { enum: ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] },
    kind: { const: 'AdmissionReview' },
    request: {
      type: 'object',
      required: ['uid', 'kind', 'operation'],
      properties: {
        uid: { type: 'string', minLength: 1, maxLength: 128 },
        kind: gvk,
        name: { type: 'string' },
        namespace: { type: 'string' },
        subResource: { type: 'string' },
        operation: { enum: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] },
        object: objectOrNull,
        oldObject: objectOrNull,
        dryRun: { type: 'boolean' },
      },
    },
  },
} as const;

// validateSchema: false skips checking this schema against JSON Schema's meta-schema at every
// start (compiling the meta-schema's validator is most of the start-up cost of ajv);
// test/schemas.test.ts checks it once, in strict mode.
const validate = new Ajv({ allErrors: false, strict: true, validateSchema: false }).compile<AdmissionReview>(reviewSchema);

export type Decoded = { ok: true; review: AdmissionReview } | { ok: false; reason: string };

/** Narrows a parsed JSON body to an AdmissionReview, or says what is wrong with it. */
export function decodeReview(body: unknown): Decoded {
  if (validate(body)) return { ok: true, review: body };
  const err = validate.errors?.[0];
  const where = err?.instancePath ? err.instancePath.slice(1).replaceAll('/', '.') : 'body';
  return { ok: false, reason: `not an AdmissionReview: ${where} ${err?.message ?? 'is invalid'}` };
}
