// Istio's own table-driven cases for the injector's annotation validation
// (test/fixtures/istio/validate-cases.yaml, from istio/istio at the commit it names), each run
// through the sidecar-annotations policy as a pod Istio injects: every one must agree — the pod is
// denied exactly where Istio's validation returns an error.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import tap from 'tap';
const t = tap;
import type { KubeObject } from '../src/admission/types.js';
import { evaluate } from '../src/engine/evaluate.js';
import { packageRoot } from '../src/paths.js';
import policy from '../src/policies/sidecar-annotations.js';
import { engineOf, requestFor } from './support.js';

interface Cases {
  source: { repository: string; commit: string };
  TestValidateResourceQuantity: { name: string; value: string; wantErr: boolean }[];
  TestValidateAnnotations: { name: string; annotations: Record<string, string>; wantErr: boolean }[];
  TestValidateInterfaceNames: { name: string; interfaces: string; wantErr: boolean }[];
  TestInjection: { input: string; subtest: string; annotations: Record<string, string>; refused: boolean }[];
}

const cases = yaml.load(
  readFileSync(join(packageRoot, 'test', 'fixtures', 'istio', 'validate-cases.yaml'), 'utf8'),
) as Cases;

// Istio's tests run the newest injector: the newest release's defaults, in a namespace the
// default install's webhook selects.
const engine = engineOf({
  policies: [policy],
  cluster: [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps', labels: { 'istio-injection': 'enabled' } } },
  ],
});

function judge(annotations: Record<string, string>) {
  const pod: KubeObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', namespace: 'apps', annotations },
    spec: { containers: [{ name: 'app', image: 'app' }] },
  };
  const [decision] = evaluate({ request: requestFor(pod), stage: 'mutate' }, engine);
  if (!decision) throw new Error('sidecar-annotations did not run');
  return decision.outcome;
}

/** Agrees when the pod is denied exactly where Istio's validation errs, with no other finding. */
function agree(
  t: Pick<typeof tap, 'equal' | 'notOk'>,
  annotations: Record<string, string>,
  wantErr: boolean,
  name: string,
) {
  const outcome = judge(annotations);
  t.equal(outcome.result, wantErr ? 'fail' : 'pass', `${name}: ${JSON.stringify(annotations)}`);
  if (outcome.result === 'fail') t.notOk(outcome.warnings, 'no warning beside the denial');
}

t.equal(
  cases.source.commit,
  '86c9f01fd735fb01d8192f5bcaf0d424afb7f14c',
  'the Istio commit the vendored cases were taken from',
);
t.ok(cases.TestValidateResourceQuantity.length >= 10 && cases.TestInjection.length >= 20, 'every case recorded');

t.test('TestValidateResourceQuantity, as each of the four proxy resource annotations', async (t) => {
  for (const c of cases.TestValidateResourceQuantity) {
    for (const name of ['proxyCPU', 'proxyMemory', 'proxyCPULimit', 'proxyMemoryLimit'])
      agree(t, { [`sidecar.istio.io/${name}`]: c.value }, c.wantErr, c.name);
  }
});

t.test('TestValidateAnnotations', async (t) => {
  for (const c of cases.TestValidateAnnotations) agree(t, c.annotations, c.wantErr, c.name);
});

t.test('TestValidateInterfaceNames, as each annotation validated with it', async (t) => {
  for (const c of cases.TestValidateInterfaceNames) {
    for (const name of [
      'traffic.sidecar.istio.io/excludeInterfaces',
      'traffic.sidecar.istio.io/kubevirtInterfaces',
      'istio.io/reroute-virtual-interfaces',
    ])
      agree(t, { [name]: c.interfaces }, c.wantErr, c.name);
  }
});

t.test('TestInjection inputs: refused exactly where the injector returned an error', async (t) => {
  for (const c of cases.TestInjection) agree(t, c.annotations, c.refused, `${c.subtest} (${c.input})`);
});
