// Fuzzing the HTTP edge: random and mutated bodies at /mutate and /validate, through app.inject
// and over real HTTPS to `meshguard serve`. Never a 5xx, a crash or a hang; a valid review always
// gets its uid back. `npm run fuzz` runs 100 000 of the same cases (test/fuzz/run.ts).
// FUZZ_CASES and FUZZ_SEED change the number of cases and replay a run.
import t from 'tap';
import { everyFieldWrongType, fuzzCases, judge, Tally } from './fuzz/cases.js';
import { httpsCase, InjectRunner, pool, recordedReviews } from './fuzz/send.js';
import { startServe } from './serve-process.js';

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const cases = Number(process.env.FUZZ_CASES ?? 2000);

t.test(`${cases} cases through app.inject (seed ${seed})`, async (t) => {
  // In a worker thread: a case that blocks the event loop is reported, not waited for.
  const runner = new InjectRunner();
  const tally = new Tally();
  for (const c of fuzzCases(cases, seed)) {
    const { answer, ms } = await runner.run(c);
    tally.add(c, answer, ms);
  }
  t.comment(tally.summary());
  t.strictSame(tally.failures.slice(0, 5), [], 'no failures');
  t.ok((tally.byStatus.get('200') ?? 0) > cases / 5, 'a good share were valid reviews');
  t.ok((tally.byStatus.get('400') ?? 0) > cases / 5, 'a good share were refused');
  for (const kind of [
    'valid',
    'wrong-type',
    'huge-string',
    'long-run',
    'deep-nesting',
    'proto-keys',
    'duplicate-keys',
    'invalid-utf8',
    'truncated',
    'byte-flips',
    'garbage',
  ]) {
    t.ok((tally.byKind.get(kind) ?? 0) > 0, `has ${kind} cases`);
  }
  await runner.close();
});

t.test('every field of every recorded review, replaced by each other type', async (t) => {
  const runner = new InjectRunner();
  const tally = new Tally();
  for (const c of everyFieldWrongType(recordedReviews())) {
    const { answer, ms } = await runner.run(c);
    tally.add(c, answer, ms);
  }
  t.comment(
    tally
      .summary()
      .split('\n')
      .filter((l) => !l.startsWith('by kind'))
      .join('\n'),
  );
  t.strictSame(tally.failures.slice(0, 5), [], 'no failures');
  t.ok(tally.cases > 4000, `${tally.cases} cases`);
  await runner.close();
});

t.test('the same cases over real HTTPS to meshguard serve', async (t) => {
  const served = await startServe(['--shutdown-delay', '0']);
  t.teardown(() => served.proc.kill('SIGKILL'));
  const cas = [served.ca.cert];
  const tally = new Tally();
  await pool(fuzzCases(Number(process.env.FUZZ_HTTPS_CASES ?? 300), seed + 1), 4, async (c) => {
    tally.add(c, await httpsCase(served.port, cas, c));
  });
  t.comment(tally.summary());
  t.strictSame(tally.failures.slice(0, 5), [], 'no failures');
  t.equal(served.proc.exitCode, null, 'the process is still running');
  const health = await httpsCase(served.port, cas, {
    kind: 'health',
    path: '/mutate',
    contentType: 'application/json',
    body: Buffer.from('{}'),
  });
  t.equal(
    judge({ kind: 'health', path: '/mutate', contentType: 'application/json', body: Buffer.from('{}') }, health),
    null,
    'and still answers',
  );
  served.proc.kill('SIGTERM');
  t.equal(await served.exited, 0, 'exits 0 on SIGTERM');
});
