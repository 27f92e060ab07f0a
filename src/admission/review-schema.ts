// The AdmissionReview schema: the source of review-validator.generated.ts (npm run generate).
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
