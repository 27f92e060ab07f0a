// meshguard's JSON Schemas are compiled ahead of time (npm run generate), without the meta-schema
// check ajv makes when it compiles at run time; both are checked here: valid JSON Schema, accepted
// by ajv in strict mode, and the generated validators up to date.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import t from 'tap';
import { reviewSchema } from '../src/admission/review-schema.js';
import { configSchemaPath, packageRoot } from '../src/paths.js';
import { generatedValidators } from '../scripts/generate-validators.js';

const schemas: [string, object][] = [
  ['policies/meshguard.schema.json', JSON.parse(readFileSync(configSchemaPath, 'utf8')) as object],
  ['the AdmissionReview schema of src/admission/review-schema.ts', reviewSchema],
];

for (const [name, schema] of schemas) {
  t.test(name, async (t) => {
    const ajv = new Ajv({ strict: true, allErrors: true, useDefaults: true });
    t.ok(ajv.validateSchema(schema), `valid against the meta-schema: ${ajv.errorsText(ajv.errors)}`);
    t.doesNotThrow(() => ajv.compile(schema), 'compiles in strict mode');
  });
}

t.test('the generated validators are those of the schemas as they are now', async (t) => {
  for (const [file, text] of generatedValidators()) {
    t.ok(readFileSync(join(packageRoot, file), 'utf8') === text, `${file} is up to date (else: npm run generate)`);
  }
});
