// `npm run fuzz`: 100 000 fuzz cases through app.inject, every field of the recorded reviews with
// each wrong type, then a share of the cases over real HTTPS to `meshguard serve`; prints the
// counts and exits 1 on any failure.
//   npm run fuzz -- [--cases 100000] [--https 5000] [--seed N] [--concurrency 4]
import { parseArgs } from 'node:util';
import { startServe } from '../serve-process.js';
import { everyFieldWrongType, fuzzCases, judge, Tally } from './cases.js';
import { httpsCase, InjectRunner, pool, recordedReviews } from './send.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    https: { type: 'string', default: '5000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    concurrency: { type: 'string', default: '4' },
  },
});
const seed = Number(values.seed);
const count = Number(values.cases);
const httpsCount = Number(values.https);
for (const [name, n] of Object.entries({
  seed,
  cases: count,
  https: httpsCount,
  concurrency: Number(values.concurrency),
})) {
  // A seed that is not a number would make fast-check pick one of its own: the run could not be replayed.
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(
      `npm run fuzz: --${name} must be a whole number, not ${JSON.stringify(values[name as keyof typeof values])}`,
    );
    process.exit(2);
  }
}

function report(title: string, tally: Tally, ms: number): void {
  console.log(`\n== ${title} (${(ms / 1000).toFixed(1)} s)`);
  console.log(tally.summary());
  for (const f of tally.failures.slice(0, 10))
    console.log(`FAIL ${f.kind} ${f.path}: ${f.reason}\n  body: ${JSON.stringify(f.body)}`);
}

console.log(`meshguard fuzz: seed ${seed}; replay with npm run fuzz -- --seed ${seed}`);
let failed = 0;

{
  // In a worker thread: a case that blocks the event loop is reported, not waited for.
  const runner = new InjectRunner();
  const tally = new Tally();
  const started = performance.now();
  let next = 10_000;
  for (const c of fuzzCases(count, seed)) {
    const { answer, ms } = await runner.run(c);
    tally.add(c, answer, ms);
    if (tally.cases === next) {
      console.log(`  ${tally.cases} cases, ${tally.failures.length} failures`);
      next += 10_000;
    }
  }
  report('app.inject', tally, performance.now() - started);
  failed += tally.failures.length;
  await runner.close();
}

{
  const runner = new InjectRunner();
  const tally = new Tally();
  const started = performance.now();
  for (const c of everyFieldWrongType(recordedReviews())) {
    const { answer, ms } = await runner.run(c);
    tally.add(c, answer, ms);
  }
  tally.byKind.clear();
  report('every field of every recorded review, replaced by each other type', tally, performance.now() - started);
  failed += tally.failures.length;
  await runner.close();
}

if (httpsCount > 0) {
  const served = await startServe(['--shutdown-delay', '0']);
  const cas = [served.ca.cert];
  const tally = new Tally();
  const started = performance.now();
  try {
    await pool(fuzzCases(httpsCount, seed + 1), Number(values.concurrency), async (c) => {
      tally.add(c, await httpsCase(served.port, cas, c));
    });
    report(`HTTPS to meshguard serve (cases of seed ${seed + 1})`, tally, performance.now() - started);
    failed += tally.failures.length;
    const probe = { kind: 'after', path: '/mutate' as const, contentType: 'application/json', body: Buffer.from('{}') };
    const alive = served.proc.exitCode === null && judge(probe, await httpsCase(served.port, cas, probe)) === null;
    console.log(`serve still running and answering: ${alive ? 'yes' : 'NO'}`);
    if (!alive) failed++;
    served.proc.kill('SIGTERM');
    const code = await served.exited;
    console.log(`serve exit code after SIGTERM: ${code}`);
    if (code !== 0) failed++;
  } finally {
    served.proc.kill('SIGKILL');
  }
}

console.log(
  `\n${failed === 0 ? 'OK' : 'FAILED'}: ${failed} failures (seed ${seed}; npm run fuzz -- --seed ${seed} replays the same cases)`,
);
process.exit(failed === 0 ? 0 : 1);
