// npm run bench [-- load|micro|instructions|apiserver|check|scale] [--duration S] [--rounds N] [--processes N] [--warmup S|N] [--requests N] [--connections N] [--json FILE] [--profile DIR] [--only bare,mutate,validate,mutate-quiet,mutate-live] [--live] [--keep DIR] | apiserver [--pods N] [--rounds N] [--clients 10,50] [--applies N] | check [--megabytes 10,50] [--formats text,json] [--baseline DIR[,DIR]] | scale [--divisor N] [--starts N] [--with-instructions]
// Runs the load benchmark (wrk, HTTPS) and the in-process micro-benchmarks, and prints the
// figures against the targets of the performance issue. `instructions` (not part of the default
// run: it needs valgrind and takes minutes) counts instructions per request under callgrind.
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { benchConfig, benchObjects, fmt, table } from './common.js';
import { ensureWrk, formatLoad, runLoad, type LoadReport } from './load.js';
import { startStack, type Stack } from './stack.js';
import { formatApiserver, runApiserver, type ApiserverReport } from './apiserver.js';
import { formatCheckScale, runCheckScale, type CheckScaleReport } from './check-scale.js';
import { formatScale, runScale, type ScaleReport } from './scale.js';
import { LABELS, LIVE_TARGETS, type TargetName } from './targets.js';
import { formatMicro, runMicro, type MicroReport } from './micro.js';
import { ensureValgrind, formatInstructions, runInstructions, type InstructionReport } from './instructions.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string', default: '3' },
    // load: 15; apiserver: 3.
    rounds: { type: 'string' },
    // Times each server is started; the rounds are shared among its processes.
    // load: 5; instructions: 1 (each process counted is minutes under valgrind).
    processes: { type: 'string' },
    // Seconds of load before the rounds; for instructions, requests (default 6000).
    warmup: { type: 'string' },
    // instructions: requests counted per target.
    requests: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '16' },
    json: { type: 'string' },
    // Profiles the servers under load (node --cpu-prof into DIR); the figures are then not for the record.
    profile: { type: 'string' },
    // Only some targets, e.g. --only bare,mutate (ratios need bare).
    only: { type: 'string' },
    // Also meshguard as deployed: `meshguard serve` watching the e2e API server (mutate-live).
    live: { type: 'boolean', default: false },
    // instructions: keep callgrind's dumps in DIR (callgrind_annotate them).
    keep: { type: 'string' },
    // apiserver: pods per batch, concurrent clients, kubectl applies per set-up and round.
    pods: { type: 'string', default: '300' },
    clients: { type: 'string', default: '10,50' },
    applies: { type: 'string', default: '10' },
    // check: MB of YAML per generated tree, report formats.
    megabytes: { type: 'string', default: '10,50' },
    formats: { type: 'string', default: 'text,json' },
    // check: other builds (checkouts with dist/ built) measured beside this one.
    baseline: { type: 'string' },
    // scale: the counts divided by N (a quick run), serve starts per level, callgrind per level.
    divisor: { type: 'string', default: '1' },
    starts: { type: 'string', default: '3' },
    'with-instructions': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run bench [-- load|micro|instructions|apiserver|check|scale] [--duration S] [--rounds N] [--processes N] [--warmup S|N] [--requests N] [--connections N] [--json FILE] [--profile DIR] [--only bare,mutate,validate,mutate-quiet,mutate-live] [--live] [--keep DIR] | apiserver [--pods N] [--rounds N] [--clients 10,50] [--applies N] | check [--megabytes 10,50] [--formats text,json] [--baseline DIR[,DIR]] | scale [--divisor N] [--starts N] [--with-instructions]\n',
  );
  process.exit(0);
}
const what = positionals[0] ?? 'all';
if (!['all', 'load', 'micro', 'instructions', 'apiserver', 'check', 'scale'].includes(what)) {
  process.stderr.write(
    `unknown part ${JSON.stringify(what)}: load, micro, instructions, apiserver, check, scale, or nothing for load and micro\n`,
  );
  process.exit(2);
}
const log = (l: string) => process.stderr.write(`  ${l}\n`);
const only = values.only?.split(',');
if (only?.some((name) => !(name in LABELS))) {
  process.stderr.write(`--only: targets are ${Object.keys(LABELS).join(', ')}\n`);
  process.exit(2);
}
const num = (v: string | undefined, name: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`--${name}: expected a positive number\n`);
    process.exit(2);
  }
  return n;
};

const started = new Date();
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load average ${loadavg()
  .map((x) => x.toFixed(2))
  .join(' ')} at start`;
process.stdout.write(`meshguard bench, ${started.toISOString()}\n${machine}\n\n`);

// The live target watches a real API server holding the bench's cluster (bench/common.ts).
let stack: Stack | undefined;
if (
  (what === 'all' || what === 'load' || what === 'instructions') &&
  (values.live || only?.some((t) => LIVE_TARGETS.includes(t as TargetName)))
) {
  process.stderr.write('e2e control plane for the live target\n');
  // Stopped at the end; if this process dies first, test/e2e/cluster.ts's exit handler and
  // watchdog kill the control plane.
  // Istio's own CRDs (its base chart): every resource the view watches is served, as in a mesh.
  stack = await startStack({ objects: benchObjects(), config: (await benchConfig()).config, istioBase: true, log });
}
const live = stack && { live: stack.live };

let load: LoadReport | undefined;
let micro: MicroReport | undefined;
let instructions: InstructionReport | undefined;
if (what === 'all' || what === 'load') {
  const missing = ensureWrk({ install: true, log });
  if (missing) {
    process.stderr.write(`\nmeshguard bench: ${missing}\n`);
    process.exit(2);
  }
  if (cpus().length < 2) process.stderr.write('  only one CPU: server and wrk share it, the figures mean little\n');
  process.stderr.write('load benchmark\n');
  load = await runLoad({
    duration: num(values.duration, 'duration'),
    rounds: num(values.rounds ?? '15', 'rounds'),
    processes: Math.min(num(values.processes ?? '5', 'processes'), num(values.rounds ?? '15', 'rounds')),
    warmup: num(values.warmup ?? '3', 'warmup'),
    connections: num(values.connections, 'connections'),
    serverCpu: '0',
    loaderCpu: cpus().length > 1 ? '1' : '0',
    ...(only && { targets: only as TargetName[] }),
    ...(values.profile && { serverNodeArgs: ['--cpu-prof', '--cpu-prof-dir', values.profile] }),
    ...live,
    log,
  });
  process.stdout.write(formatLoad(load) + '\n\n');
}
if (what === 'instructions') {
  const missing = ensureValgrind({ install: true, log });
  if (missing) {
    process.stderr.write(`\nmeshguard bench: ${missing}\n`);
    process.exit(2);
  }
  process.stderr.write('instructions per request (callgrind; under a minute and a half per target)\n');
  instructions = await runInstructions({
    warmup: num(values.warmup ?? '6000', 'warmup'),
    requests: num(values.requests, 'requests'),
    connections: num(values.connections, 'connections'),
    serverCpu: '0',
    loaderCpu: cpus().length > 1 ? '1' : '0',
    ...(only && { targets: only as TargetName[] }),
    ...(values.keep && { keep: values.keep }),
    ...(values.processes && { processes: num(values.processes, 'processes') }),
    ...live,
    log,
  });
  process.stdout.write(formatInstructions(instructions) + '\n\n');
}
let apiserver: ApiserverReport | undefined;
if (what === 'apiserver') {
  process.stderr.write('pod creation through the e2e API server\n');
  apiserver = await runApiserver({
    pods: num(values.pods, 'pods'),
    rounds: num(values.rounds ?? '3', 'rounds'),
    concurrency: values.clients.split(',').map((c) => num(c, 'clients')),
    applies: Number(values.applies),
    log,
  });
  process.stdout.write(formatApiserver(apiserver) + '\n\n');
}
let checkScale: CheckScaleReport | undefined;
if (what === 'check') {
  process.stderr.write('meshguard check on large trees\n');
  checkScale = await runCheckScale({
    megabytes: values.megabytes.split(',').map((m) => num(m, 'megabytes')),
    ...(values.baseline && { baselines: values.baseline.split(',') }),
    formats: values.formats.split(','),
    log,
  });
  process.stdout.write(formatCheckScale(checkScale) + '\n\n');
}
let scale: ScaleReport | undefined;
if (what === 'scale') {
  process.stderr.write('meshguard on a large cluster\n');
  scale = await runScale({
    divisor: num(values.divisor, 'divisor'),
    starts: num(values.starts, 'starts'),
    instructions: values['with-instructions'],
    log,
  });
  process.stdout.write(formatScale(scale) + '\n\n');
}
if (what === 'all' || what === 'micro') {
  process.stderr.write('micro-benchmarks\n');
  micro = await runMicro({
    samples: 15,
    sampleMs: 20,
    externalNameSizes: [100, 10_000, 100_000],
    namespaceSizes: [0, 100, 1_000, 10_000],
    memory: { services: 50_000, namespaces: 5_000 },
    startRuns: 7,
    log,
  });
  process.stdout.write(formatMicro(micro) + '\n\n');
}

// The targets, with what this run measured.
const rows: string[][] = [];
const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
const mutate = load?.ratios.find((r) => r.target === 'mutate');
if (mutate) {
  rows.push(['pod mutation throughput ÷ bare', '≥ 0.90×', `${fmt(mutate.rps)}×`, mark(mutate.rps >= 0.9)]);
  rows.push(['pod mutation CPU/request ÷ bare', '≤ 1.15×', `${fmt(mutate.cpu)}×`, mark(mutate.cpu <= 1.15)]);
}
if (micro) {
  const engine = micro.engine[0]?.medianUs ?? NaN;
  rows.push(['engine on the pod review (median)', '≤ 10 µs', `${fmt(engine)} µs`, mark(engine <= 10)]);
  rows.push([
    'ExternalName check 100 000 ÷ 100 Services',
    '≤ 1.5×',
    `${fmt(micro.externalNameRatio)}×`,
    mark(micro.externalNameRatio <= 1.5),
  ]);
  rows.push([
    'cluster view, bytes per cached Service',
    '≤ 300 B',
    `${fmt(micro.memory.heapPerService, 0)} B`,
    mark(micro.memory.heapPerService <= 300),
  ]);
  rows.push([
    'start to ready (median)',
    '≤ 500 ms',
    `${fmt(micro.startMedianMs, 0)} ms`,
    mark(micro.startMedianMs <= 500),
  ]);
}
if (rows.length > 0) process.stdout.write(`Targets:\n\n${table(['target', 'goal', 'this run', ''], rows)}\n\n`);
process.stdout.write(
  `load average at the end ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}\n`,
);
if (values.json)
  writeFileSync(
    values.json,
    JSON.stringify(
      { started, machine, load, micro, instructions, apiserver, checkScale, scale },
      (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v),
      2,
    ),
  );
await stack?.stop();
