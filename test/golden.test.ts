// Golden cases: policies/<id>/cases/*.yaml hold the input objects and the expected decisions.
// REFRESH_GOLDEN=1 npm test rewrites the expectations; review them in the diff.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import yaml from 'js-yaml';
import t from 'tap';
import type { KubeObject, Operation } from '../src/admission/types.js';
import { evaluate } from '../src/engine/evaluate.js';
import { verdictOf } from '../src/engine/verdict.js';
import type { Stage } from '../src/engine/types.js';
import { packageRoot } from '../src/paths.js';
import type { Policy } from '../src/engine/types.js';
import { configOf, engineOf, plain, requestFor } from './support.js';

interface Case {
  description: string;
  config?: unknown;
  /** Objects that form the cluster view (Namespaces, Services, ServiceEntries), or "off". */
  cluster?: unknown[] | 'off';
  stage?: Stage;
  operation?: Operation;
  namespace?: string;
  object: KubeObject;
  oldObject?: KubeObject;
  expect?: unknown[];
  /** What the request gets back: denials and warnings as the user reads them. */
  verdict?: unknown;
}

const refresh = process.env.REFRESH_GOLDEN === '1';
const root = join(packageRoot, 'policies');
// GOLDEN=<policy-id> runs one policy's cases.
const ids = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory() && (!process.env.GOLDEN || d.name === process.env.GOLDEN))
  .map((d) => d.name);

for (const id of ids) {
  // The policy id is the file name: src/policies/<id>.ts default-exports the policy.
  const policy = ((await import(`../src/policies/${id}.js`)) as { default: Policy }).default;
  t.equal(policy.id, id, `src/policies/${id}.ts exports policy ${id}`);
  const dir = join(root, id, 'cases');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  t.test(policy.id, async (t) => {
    t.ok(files.length > 0, 'has golden cases');
    for (const file of files) {
      const path = join(dir, file);
      const c = yaml.load(readFileSync(path, 'utf8')) as Case;
      t.test(file.replace(/\.yaml$/, ''), async (t) => {
        const engine = engineOf({ policies: [policy], config: configOf(c.config), cluster: c.cluster ?? [] });
        const run = (object: KubeObject) =>
          evaluate(
            {
              request: requestFor(object, { operation: c.operation, namespace: c.namespace, oldObject: c.oldObject }),
              stage: c.stage ?? policy.action,
            },
            engine,
          );
        const decisions = run(c.object);
        const got = plain(decisions);
        const { allowed, denials, warnings } = verdictOf(decisions, engine.scope.config);
        const verdict = { allowed, ...(denials.length > 0 && { denials }), ...(warnings.length > 0 && { warnings }) };
        if (refresh) {
          writeFileSync(path, yaml.dump({ ...c, expect: got, verdict }, { lineWidth: 120, noRefs: true }));
        } else {
          t.strictSame(got, c.expect, c.description);
          t.strictSame(verdict, c.verdict, 'verdict');
        }
        for (const d of decisions) {
          if (d.outcome.result !== 'mutate' || d.subject !== 'object') continue;
          const copy = structuredClone(c.object);
          t.equal(jsonpatch.validate(d.outcome.patch, copy), undefined, 'patch applies cleanly');
          const patched = jsonpatch.applyPatch(copy, d.outcome.patch, true, false).newDocument;
          const again = run(patched).filter((x) => x.outcome.result === 'mutate');
          t.strictSame(plain(again), [], 'idempotent: the patched object needs no further change');
        }
      });
    }
  });
}
