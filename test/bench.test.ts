// A smoke run of `npm run bench`: the micro-benchmarks with tiny counts, the load harness for a
// second against the bare server, and the instruction count of a few requests to it (wrk and
// valgrind needed; each part is skipped, saying so, when its tool is not installed). It checks
// that the benchmark works, not how fast anything is.
import { cpus } from 'node:os';
import t from 'tap';
import { ensureValgrind, formatInstructions, runInstructions } from '../bench/instructions.js';
import { ensureWrk, formatLoad, runLoad } from '../bench/load.js';
import { formatMicro, runMicro } from '../bench/micro.js';
import { formatCheckScale, runCheckScale } from '../bench/check-scale.js';
import { divided, SCALES } from '../bench/scale-objects.js';
import { viewChild } from '../bench/scale.js';

t.test('micro-benchmarks, tiny counts', async (t) => {
  const report = await runMicro({
    samples: 2,
    sampleMs: 1,
    externalNameSizes: [100, 1000],
    namespaceSizes: [0, 100],
    memory: { services: 2000, namespaces: 200 },
    startRuns: 1,
  });
  t.ok(
    report.engine.every((x) => x.medianUs > 0),
    'the engine is timed',
  );
  t.equal(report.policies.length, 6, 'each policy is timed');
  t.equal(report.externalName.length, 2);
  t.equal(report.namespace.length, 2, 'the pod review is timed at each size of its namespace');
  t.ok(report.memory.heapPerService > 0, 'the cluster view is weighed');
  t.equal(report.startMs.meshguard.length, 1, 'meshguard serve got ready');
  t.match(formatMicro(report), /start to \/readyz 200/);
});

// The benchmark's own check, without installing anything: what is missing, or null.
const missing = ensureWrk({ install: false, log: () => {} });
t.test(
  'load harness, two rounds of 1 s against two processes of the bare server',
  { skip: missing ?? false },
  async (t) => {
    const report = await runLoad({
      duration: 1,
      warmup: 1,
      rounds: 2,
      processes: 2,
      connections: 2,
      serverCpu: '0',
      loaderCpu: cpus().length > 1 ? '1' : '0',
      targets: ['bare'],
    });
    t.equal(report.runs.length, 2, 'one run per round');
    for (const run of report.runs) {
      t.ok(run.requests > 0, `round ${run.round}: wrk made requests`);
      t.equal(run.bad, 0, `round ${run.round}: every response was the verified 200 answer`);
      t.ok(run.serverCpuUsPerReq > 0, `round ${run.round}: server CPU per request was read from /proc`);
    }
    t.match(formatLoad(report), /bare fastify/);
  },
);

const noValgrind = ensureValgrind({ install: false, log: () => {} });
t.test(
  'instruction count, a few requests to the bare server under callgrind',
  { skip: noValgrind ?? false },
  async (t) => {
    const report = await runInstructions({
      warmup: 20,
      requests: 20,
      connections: 2,
      serverCpu: '0',
      loaderCpu: cpus().length > 1 ? '1' : '0',
      targets: ['bare'],
      // Well inside tap's limit for the file: a test killed on timeout would orphan valgrind.
      startWaitMs: 90_000,
    });
    const [count] = report.counts;
    // A TLS request through fastify is hundreds of thousands of instructions, not zero or billions.
    t.ok(
      count && count.perRequest > 50_000 && count.perRequest < 50_000_000,
      `${Math.round(count?.perRequest ?? 0)} instructions per request`,
    );
    t.match(formatInstructions(report), /bare fastify/);
  },
);

t.test('check on a generated tree: documents, time and peak memory of each build', async (t) => {
  const report = await runCheckScale({ megabytes: [0.05], formats: ['text'], log: () => {} });
  t.equal(report.runs.length, 2, 'the tree with findings and the clean one');
  for (const r of report.runs) {
    t.ok(r.documents > 20 && r.peakMiB > 10 && r.cpuSeconds > 0, `${r.tree}: ${r.documents} documents`);
    t.equal(r.exit, 0, 'nothing denied');
  }
  t.ok(report.runs.find((r) => r.tree === 'findings')!.outputBytes > 1000, 'findings reported');
  t.match(formatCheckScale(report), /peak RSS MiB/);
});

t.test('the cluster view at a small scale: heap per object, µs per watch event', async (t) => {
  const scale = divided(SCALES[0]!, 100);
  const report = await viewChild(scale);
  t.ok(report.perObject.Service !== undefined && report.events.serviceModified! > 0, JSON.stringify(report.events));
});
