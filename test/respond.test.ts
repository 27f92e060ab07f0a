// answerJson: the patch goes out as base64 of its JSON, whatever was answered before.
import t from 'tap';
import type { PatchOp } from '../src/admission/patch.js';
import type { AdmissionReviewResponse } from '../src/admission/types.js';
import { answerJson } from '../src/admission/respond.js';

const decode = (patch: string | undefined) =>
  JSON.parse(Buffer.from(patch ?? '', 'base64').toString('utf8')) as PatchOp[];
const answer = (patch: PatchOp[]) =>
  (
    JSON.parse(
      answerJson('admission.k8s.io/v1', 'u', { allowed: true, denials: [], warnings: [], patch }),
    ) as AdmissionReviewResponse
  ).response;

t.test('each patch is encoded as itself, also when the same patch comes again', async (t) => {
  const patches: PatchOp[][] = [
    [{ op: 'add', path: '/metadata/annotations/a', value: 'x' }],
    [{ op: 'add', path: '/metadata/annotations/a', value: 'y' }],
    [{ op: 'add', path: '/metadata/annotations/ü', value: 'naïve — ünïcode 🚀' }],
    [{ op: 'replace', path: '/spec/containers/0/command', value: ['/bin/sh', '-c', 'x'.repeat(10_000)] }],
    // 3-byte characters near the size of the buffer the patch is encoded in (16 KiB), on both sides.
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
      const text = Buffer.from(answer(patch).patch ?? '', 'base64').toString('utf8');
      t.equal(text, JSON.stringify(patch), `round ${round}: the text JSON.stringify writes`);
    }
  }
  for (let i = 0; i < 600; i++) {
    const patch: PatchOp[] = [{ op: 'add', path: '/metadata/annotations/n', value: String(i) }];
    const [op] = decode(answer(patch).patch);
    if (op?.op !== 'add' || op.value !== String(i)) t.fail(`patch ${i}`);
  }
  t.equal(answer([]).patch, undefined, 'no patch, no patch field');
});
