// The schemas meshguard compiles without meta-schema validation at start-up (to start faster) are
// checked here once: valid JSON Schema, and accepted by ajv in strict mode.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import t from 'tap';
import { reviewSchema } from '../src/admission/decode.js';
import { configSchemaPath } from '../src/paths.js';

const schemas: [string, object][] = [
  ['policies/meshguard.schema.json', JSON.parse(readFileSync(configSchemaPath, 'utf8')) as object],
  ['the AdmissionReview schema of src/admission/decode.ts', reviewSchema],
];

for (const [name, schema] of schemas) {
  t.test(name, async (t) => {
    const ajv = new Ajv({ strict: true, allErrors: true, useDefaults: true });
    t.ok(ajv.validateSchema(schema), `valid against the meta-schema: ${ajv.errorsText(ajv.errors)}`);
    t.doesNotThrow(() => ajv.compile(schema), 'compiles in strict mode');
  });
}
