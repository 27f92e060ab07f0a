// Answers: written as the text JSON.stringify writes for them; the patch goes out as base64 of its
// JSON, whatever was answered before.
import fc from 'fast-check';
import t from 'tap';
import type { PatchOp } from '../src/admission/patch.js';
import type { AdmissionResponse, AdmissionReviewResponse, Base64, Verdict } from '../src/admission/types.js';
import { answerJson, responseOf } from '../src/admission/respond.js';

const decode = (patch: string | undefined) =>
  JSON.parse(Buffer.from(patch ?? '', 'base64').toString('utf8')) as PatchOp[];
const answerText = (uid: string, verdict: Verdict) =>
  answerJson({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: responseOf(uid, verdict) });
const answer = (patch: PatchOp[]) =>
  (JSON.parse(answerText('u', { allowed: true, denials: [], warnings: [], patch })) as AdmissionReviewResponse)
    .response;

const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }));

t.test('answerJson writes what JSON.stringify writes for the same answer', async () => {
  const response: fc.Arbitrary<AdmissionResponse> = fc.record(
    {
      uid: text,
      allowed: fc.boolean(),
      status: fc.record({ code: fc.integer({ min: 100, max: 599 }), message: text }),
      warnings: fc.array(text, { maxLength: 4 }),
      patch: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64') as Base64),
      patchType: fc.constant('JSONPatch' as const),
    },
    { requiredKeys: ['uid', 'allowed'] },
  );
  fc.assert(
    fc.property(
      fc.record({
        apiVersion: fc.constantFrom('admission.k8s.io/v1' as const, 'admission.k8s.io/v1beta1' as const),
        kind: fc.constant('AdmissionReview' as const),
        response,
      }),
      (a) => answerJson(a) === JSON.stringify(a),
    ),
    { numRuns: 2000 },
  );
});

t.test(
  'responseOf: a status only on denial, warnings only when there are some, a patch only when allowed',
  async (t) => {
    const patch: PatchOp[] = [{ op: 'add', path: '/metadata/annotations/a', value: 'x' }];
    t.strictSame(responseOf('u', { allowed: true, denials: [], warnings: [], patch: [] }), { uid: 'u', allowed: true });
    t.strictSame(responseOf('u', { allowed: false, denials: ['a', 'b'], warnings: ['w'], patch }), {
      uid: 'u',
      allowed: false,
      status: { code: 403, message: 'a; b' },
      warnings: ['w'],
    });
    const patched = responseOf('u', { allowed: true, denials: [], warnings: [], patch });
    t.strictSame(Object.keys(patched), ['uid', 'allowed', 'patch', 'patchType']);
    t.strictSame(decode(patched.patch), patch);
  },
);

t.test('each patch is encoded as itself, also when the same patch comes again', async (t) => {
  const patches: PatchOp[][] = [
    [{ op: 'add', path: '/metadata/annotations/a', value: 'x' }],
    [{ op: 'add', path: '/metadata/annotations/a', value: 'y' }],
    [{ op: 'add', path: '/metadata/annotations/ü', value: 'naïve — ünïcode 🚀' }],
    [{ op: 'replace', path: '/spec/containers/0/command', value: ['/bin/sh', '-c', 'x'.repeat(10_000)] }],
    // Long patches of 3-byte characters.
    [{ op: 'add', path: '/metadata/annotations/b', value: '✓'.repeat(5400) }],
    [{ op: 'add', path: '/metadata/annotations/b', value: '✓'.repeat(5470) }],
    // Several ops; strings that need escaping (in a path too), an object value, an op without one.
    [
      {
        op: 'replace',
        path: '/metadata/annotations/proxy.istio.io~1config',
        value: 'a: "b"\nholdApplicationUntilProxyStarts: true\n',
      },
      { op: 'add', path: '/metadata/annotations', value: { 'k"\\': 'v\t\u0001', lone: '\ud800' } },
      { op: 'remove', path: '/metadata/labels/a"b' },
      { op: 'test', path: '/spec/n', value: 0 },
    ],
  ];
  // Three rounds: the second and third find the patch's strings in patchJson's memo.
  for (let round = 0; round < 3; round++) {
    for (const patch of patches) {
      const json = Buffer.from(answer(patch).patch ?? '', 'base64').toString('utf8');
      t.equal(json, JSON.stringify(patch), `round ${round}: the text JSON.stringify writes`);
    }
  }
  for (let i = 0; i < 600; i++) {
    const patch: PatchOp[] = [{ op: 'add', path: '/metadata/annotations/n', value: String(i) }];
    const [op] = decode(answer(patch).patch);
    if (op?.op !== 'add' || op.value !== String(i)) t.fail(`patch ${i}`);
  }
  t.equal(answer([]).patch, undefined, 'no patch, no patch field');
});
