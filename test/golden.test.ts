// Golden cases: policies/<id>/cases/*.yaml hold the input objects and the expected decisions.
// REFRESH_GOLDEN=1 npm test rewrites the expectations; review them in the diff. A mutating case
// also records the object it leads to (`patched:`); the Job wrapper's script, tested under real
// shells in job-wrapper.test.ts, stands in case files as one marker line.
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
import { podFromTemplate, templatePath } from '../src/engine/workloads.js';
import { WRAPPER_MARKER, wrapperScript, type QuitOn } from '../src/mesh/job-wrapper.js';
import { configOf, engineOf, plain, requestFor } from './support.js';

interface Case {
  description: string;
  config?: unknown;
  /** Objects that form the cluster view (Namespaces, Services, ServiceEntries), or "off". */
  cluster?: unknown[] | 'off';
  /** The cluster objects are every Service of their namespaces, as a live cluster's watches are. */
  servicesComplete?: boolean;
  /** The cluster objects are every Pod of the cluster, as `meshguard audit` lists them. */
  podsListed?: boolean;
  stage?: Stage;
  operation?: Operation;
  namespace?: string;
  object: KubeObject;
  oldObject?: KubeObject;
  expect?: unknown[];
  /** What the request gets back: denials and warnings as the user reads them. */
  verdict?: unknown;
  /**
   * After a mutation: the object with the patch applied; for a workload's template, the pod its
   * controller creates, as meshguard patches it then.
   */
  patched?: unknown;
}

// `<meshguard job wrapper v1 (quitOn=exit, status port 15020, ready timeout 60 s)>`: the marker
// replaces a script only when the script is exactly what the wrapper renders for those values.
const MARKER = /^<meshguard job wrapper v1 \(quitOn=(exit|success), status port (\d+), ready timeout (\d+) s\)>$/;
const markerOf = (quitOn: QuitOn, port: number, timeout: number) =>
  `<meshguard job wrapper v1 (quitOn=${quitOn}, status port ${port}, ready timeout ${timeout} s)>`;

function mapStrings(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === 'string') return f(v);
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f));
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapStrings(x, f)]));
  return v;
}

const toMarkers = (v: unknown) =>
  mapStrings(v, (s) => {
    if (!s.startsWith(WRAPPER_MARKER)) return s;
    const quitOn: QuitOn = s.includes('\nmg_status=1\ntrap ') ? 'success' : 'exit';
    const port = Number(/127\.0\.0\.1:(\d+)\/quitquitquit/.exec(s)?.[1] ?? 15020);
    const timeout = Number(/-lt (\d+) \]/.exec(s)?.[1] ?? 0);
    return wrapperScript(timeout, port, quitOn) === s ? markerOf(quitOn, port, timeout) : s;
  });

// A case reads top to bottom: what it shows, the setting, the inputs, then what comes out.
const caseKeys = [
  'description',
  'config',
  'stage',
  'operation',
  'namespace',
  'servicesComplete',
  'podsListed',
  'cluster',
  'object',
  'oldObject',
  'expect',
  'verdict',
  'patched',
];

const fromMarkers = (v: unknown) =>
  mapStrings(v, (s) => {
    const m = MARKER.exec(s);
    return m ? wrapperScript(Number(m[3]), Number(m[2]), m[1] as QuitOn) : s;
  });

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
      const raw = yaml.load(readFileSync(path, 'utf8')) as Case;
      const c = fromMarkers(raw) as Case;
      t.test(file.replace(/\.yaml$/, ''), async (t) => {
        const engine = engineOf({
          policies: [policy],
          config: configOf(c.config),
          cluster: c.cluster ?? [],
          servicesComplete: c.servicesComplete,
          podsListed: c.podsListed,
        });
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
        let patched: unknown;
        for (const d of decisions) {
          if (d.outcome.result !== 'mutate') continue;
          const path = templatePath(c.object.apiVersion?.split('/').at(-2) ?? '', c.object.kind ?? '');
          const subject =
            d.subject === 'object' ? c.object : path && podFromTemplate(c.object, path, c.object.kind ?? '');
          const copy = structuredClone(subject);
          t.equal(jsonpatch.validate(d.outcome.patch, copy), undefined, 'patch applies cleanly');
          patched = jsonpatch.applyPatch(copy, d.outcome.patch, true, false).newDocument;
          if (d.subject !== 'object') continue;
          const again = run(patched as KubeObject).filter((x) => x.outcome.result === 'mutate');
          t.strictSame(plain(again), [], 'idempotent: the patched object needs no further change');
        }
        if (refresh) {
          const all: Record<string, unknown> = { ...raw, expect: got, verdict, patched };
          const out = Object.fromEntries(
            [...caseKeys, ...Object.keys(all)].flatMap((k) => (all[k] === undefined ? [] : [[k, all[k]]])),
          );
          writeFileSync(path, yaml.dump(toMarkers(out), { lineWidth: 120, noRefs: true }));
        } else {
          t.strictSame(toMarkers(got), raw.expect, c.description);
          t.strictSame(verdict, c.verdict, 'verdict');
          t.strictSame(patched === undefined ? undefined : toMarkers(patched), raw.patched, 'the patched object');
        }
      });
    }
  });
}
