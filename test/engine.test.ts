// The engine: modes and overrides, exclusions, skip annotation, patch merging, templates, messages.
import jsonpatch from 'fast-json-patch';
import t from 'tap';
import { policies } from '../src/policies/index.js';
import { mergePatches, pointer, setAnnotation } from '../src/admission/patch.js';
import type { KubeObject } from '../src/admission/types.js';
import { evaluate } from '../src/engine/evaluate.js';
import { compileScope } from '../src/config/scope.js';
import type { Policy, Result } from '../src/engine/types.js';
import { MAX_WARNING, verdictOf } from '../src/engine/verdict.js';
import { configOf, engineOf, requestFor } from './support.js';

const pod = (annotations?: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'shop', ...(annotations && { annotations }) },
  spec: { containers: [{ name: 'c', image: 'x' }] },
});

/** A pod policy that sets one annotation, and counts its calls. */
function annotating(
  id: 'hold-application-until-proxy-starts' | 'probe-port-exclusion',
  key: string,
): Policy & { calls: number } {
  const p = {
    id,
    action: 'mutate' as const,
    targets: [{ group: '', kind: 'Pod', operations: ['CREATE' as const] }],
    calls: 0,
    explain: () => ({ exists: true, why: 'test' }),
    evaluate(ctx: { object: KubeObject }): Result {
      p.calls++;
      return {
        result: 'mutate',
        patch: [setAnnotation(ctx.object.metadata?.annotations, key, 'v')],
        summary: `set ${key}`,
      };
    },
  };
  return p as Policy & { calls: number };
}

const failing = (message: string): Policy => ({
  id: 'probe-port-exclusion',
  action: 'mutate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  explain: () => ({ exists: true, why: 'test' }),
  evaluate: () => ({ result: 'fail', message }),
});

t.test('two policies adding annotations to an object without any: one valid patch', async (t) => {
  const engine = engineOf({
    policies: [annotating('hold-application-until-proxy-starts', 'a/x'), annotating('probe-port-exclusion', 'b~y')],
  });
  const object = pod();
  const verdict = verdictOf(evaluate({ request: requestFor(object), stage: 'mutate' }, engine), engine.scope.config);
  t.strictSame(verdict.patch, [{ op: 'add', path: '/metadata/annotations', value: { 'a/x': 'v', 'b~y': 'v' } }]);
  const patched = jsonpatch.applyPatch(
    structuredClone(object),
    verdict.patch as jsonpatch.Operation[],
    true,
    false,
  ).newDocument;
  t.strictSame(patched.metadata?.annotations, { 'a/x': 'v', 'b~y': 'v' });
  const withSome = pod({ keep: '1' });
  const again = verdictOf(evaluate({ request: requestFor(withSome), stage: 'mutate' }, engine), engine.scope.config);
  t.strictSame(
    again.patch.map((p) => p.path),
    ['/metadata/annotations/a~1x', '/metadata/annotations/b~0y'],
    'RFC 6901 escaping',
  );
});

t.test('mergePatches folds a child add into an object created earlier', async (t) => {
  const merged = mergePatches([
    [{ op: 'add', path: '/metadata/annotations', value: { a: '1' } }],
    [{ op: 'add', path: pointer('metadata', 'annotations', 'x/y'), value: '2' }],
  ]);
  t.strictSame(merged, [{ op: 'add', path: '/metadata/annotations', value: { a: '1', 'x/y': '2' } }]);
});

t.test('effective modes: policy mode, override policy mode, capped by the global or override mode', async (t) => {
  const scope = compileScope(
    configOf({
      policies: { 'probe-port-exclusion': { mode: 'warn' } },
      overrides: [
        { namespaces: ['legacy', 'team-*'], mode: 'warn', policies: { 'job-sidecar-quit': { mode: 'off' } } },
        { namespaces: ['strict'], policies: { 'probe-port-exclusion': { mode: 'enforce' } } },
        { namespaces: ['team-a'], mode: 'enforce' },
      ],
    }),
  );
  t.equal(scope.modeOf('probe-port-exclusion', 'default'), 'warn', 'policy mode');
  t.equal(scope.modeOf('destinationrule-placement', 'default'), 'enforce');
  t.equal(scope.modeOf('destinationrule-placement', 'team-a'), 'warn', 'first match wins: team-* before team-a');
  t.equal(scope.modeOf('job-sidecar-quit', 'team-x'), 'off', 'off stays off');
  t.equal(scope.modeOf('probe-port-exclusion', 'strict'), 'enforce', 'override replaces the policy mode');
  const dryRun = compileScope(configOf({ mode: 'warn', overrides: [{ namespaces: ['canary'], mode: 'enforce' }] }));
  t.equal(dryRun.modeOf('destinationrule-placement', 'default'), 'warn', 'global warn caps');
  t.equal(dryRun.modeOf('destinationrule-placement', 'canary'), 'enforce', 'an override mode replaces the global one');
  t.equal(dryRun.modeOf('externalname-tcp-collision', 'canary'), 'warn', 'the policy mode still applies under it');
});

t.test('excluded namespaces (globs) and the webhook namespace are never evaluated', async (t) => {
  const p = annotating('hold-application-until-proxy-starts', 'a');
  const engine = engineOf({
    policies: [p],
    config: configOf({ excludeNamespaces: ['kube-*'] }),
    selfNamespace: 'mesh-system',
  });
  for (const ns of ['kube-system', 'kube-node-lease', 'mesh-system']) {
    t.strictSame(evaluate({ request: requestFor(pod(), { namespace: ns }), stage: 'mutate' }, engine), [], ns);
  }
  t.equal(p.calls, 0);
  t.equal(evaluate({ request: requestFor(pod(), { namespace: 'shop' }), stage: 'mutate' }, engine).length, 1);
});

t.test('stages: mutating policies at /mutate only; a pod at /validate meets none of them', async (t) => {
  const p = annotating('hold-application-until-proxy-starts', 'a');
  const engine = engineOf({ policies: [p] });
  t.strictSame(evaluate({ request: requestFor(pod()), stage: 'validate' }, engine), []);
  t.strictSame(
    evaluate({ request: requestFor(pod(), { operation: 'UPDATE' }), stage: 'mutate' }, engine),
    [],
    'CREATE only',
  );
  t.strictSame(
    evaluate({ request: { ...requestFor(pod()), object: null, operation: 'DELETE' }, stage: 'mutate' }, engine),
    [],
  );
});

t.test('the skip annotation exempts from the named mutating policies only', async (t) => {
  const engine = engineOf({
    policies: [annotating('hold-application-until-proxy-starts', 'a'), annotating('probe-port-exclusion', 'b')],
  });
  const decisions = evaluate(
    { request: requestFor(pod({ 'meshguard.io/skip': ' probe-port-exclusion ,other' })), stage: 'mutate' },
    engine,
  );
  t.strictSame(
    decisions.map((d) => d.outcome.result),
    ['mutate', 'skip'],
  );
});

t.test(
  "workload templates: a mutating policy's failure is a warning, a validating one's denies; each change its pods will get is said",
  async (t) => {
    const engine = engineOf({ policies: [failing('bad pod'), annotating('hold-application-until-proxy-starts', 'a')] });
    for (const [apiVersion, kind] of [
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'StatefulSet'],
      ['apps/v1', 'DaemonSet'],
      ['apps/v1', 'ReplicaSet'],
      ['batch/v1', 'Job'],
    ] as const) {
      const workload: KubeObject = {
        apiVersion,
        kind,
        metadata: { name: 'w', namespace: 'shop' },
        spec: { template: { metadata: { labels: { app: 'w' } }, spec: {} } },
      };
      const decisions = evaluate({ request: requestFor(workload), stage: 'validate' }, engine);
      t.strictSame(
        decisions.map((d) => [d.subject, d.outcome.result]),
        [
          ['template', 'fail'],
          ['template', 'mutate'],
        ],
        kind,
      );
      const verdict = verdictOf(decisions, engine.scope.config);
      t.strictSame(
        verdict,
        {
          allowed: true,
          denials: [],
          warnings: [
            'meshguard probe-port-exclusion: bad pod',
            'meshguard hold-application-until-proxy-starts: when its pods are created, meshguard will set a',
          ],
          patch: [],
        },
        kind,
      );
    }
    // A validating pod policy's failure on a template: every pod would be refused, so it denies.
    const refusing: Policy = { ...failing('the injector refuses it'), action: 'validate' };
    const deployment: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'w', namespace: 'shop' },
      spec: { template: { spec: {} } },
    };
    const denied = verdictOf(
      evaluate({ request: requestFor(deployment), stage: 'validate' }, engineOf({ policies: [refusing] })),
      engine.scope.config,
    );
    t.strictSame(denied.denials, ['meshguard probe-port-exclusion: the injector refuses it'], 'validating: denied');
    const cron: KubeObject = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'c', namespace: 'shop' },
      spec: { jobTemplate: { spec: { template: { spec: {} } } } },
    };
    let owner: unknown;
    const spy: Policy = {
      ...failing('x'),
      evaluate: (ctx) => ((owner = ctx.object.metadata?.ownerReferences), { result: 'pass' }),
    };
    evaluate({ request: requestFor(cron), stage: 'validate' }, engineOf({ policies: [spy] }));
    t.match(owner, [{ kind: 'Job' }], "a CronJob's template makes pods owned by a Job");
    t.strictSame(cron.spec, { jobTemplate: { spec: { template: { spec: {} } } } }, 'the workload is not modified');
  },
);

t.test('messages: one line, at most 256 characters, prefixed with the policy id', async (t) => {
  const engine = engineOf({
    policies: [failing(`first line\nsecond ${'x'.repeat(400)}`)],
    config: configOf({ mode: 'warn' }),
  });
  const verdict = verdictOf(evaluate({ request: requestFor(pod()), stage: 'mutate' }, engine), engine.scope.config);
  const [warning = ''] = verdict.warnings;
  t.equal(warning.length, MAX_WARNING);
  t.match(warning, /^meshguard probe-port-exclusion: first line second x+…$/);
});

t.test('a denial lists every failing policy', async (t) => {
  const a: Policy = {
    id: 'destinationrule-placement',
    action: 'validate',
    targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
    explain: () => ({ exists: true, why: 'test' }),
    evaluate: () => ({ result: 'fail', message: 'one' }),
  };
  const b: Policy = { ...a, id: 'externalname-tcp-collision', evaluate: () => ({ result: 'fail', message: 'two' }) };
  const engine = engineOf({
    policies: [a, b],
    config: configOf({ policies: { 'externalname-tcp-collision': { mode: 'enforce' } } }),
  });
  // Pod policies judge a Pod at /mutate, as Istio's injector sees it, whatever their action.
  const verdict = verdictOf(evaluate({ request: requestFor(pod()), stage: 'mutate' }, engine), engine.scope.config);
  t.strictSame(verdict.denials, [
    'meshguard destinationrule-placement: one',
    'meshguard externalname-tcp-collision: two',
  ]);
  t.strictSame(evaluate({ request: requestFor(pod()), stage: 'validate' }, engine), [], 'and not again at /validate');
});

t.test('a pod whose injection cannot be told: one warning per answer says why, not one per policy', async (t) => {
  const engine = engineOf({ policies, cluster: 'off', config: configOf({ mesh: { istioVersion: '1.11' } }) });
  const job: KubeObject = {
    ...pod(),
    metadata: { name: 'p', namespace: 'shop', ownerReferences: [{ kind: 'Job', name: 'j' }] },
    spec: { restartPolicy: 'Never', containers: [{ name: 'app', command: ['sh', '-c', 'true'] }] },
  };
  const decisions = evaluate({ request: requestFor(job), stage: 'mutate' }, engine);
  t.ok(decisions.length >= 3, 'every pod policy ran');
  t.strictSame(verdictOf(decisions, engine.scope.config).warnings, [
    'meshguard hold-application-until-proxy-starts: cannot tell whether Istio injects this pod: the labels of namespace shop are unknown (cluster lookups are off: give serve credentials or --cluster-state)',
  ]);
  const hostNetwork = { ...job, spec: { ...(job.spec as object), hostNetwork: true } };
  t.strictSame(
    verdictOf(evaluate({ request: requestFor(hostNetwork), stage: 'mutate' }, engine), engine.scope.config).warnings,
    [],
    'a pod plainly out of scope (hostNetwork is never injected) says nothing',
  );
});
