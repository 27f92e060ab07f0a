// Instructions per request, counted by callgrind. Unlike CPU time, the count does not move with
// the machine's other load, so changes of a few per cent show (timed ratios here move by ±0.1).
// Each server runs under valgrind on one core: warmed up first, then counted over a fixed number
// of requests over keep-alive TLS, every answer checked against the verified one.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AdmissionReviewResponse } from '../src/admission/types.js';
import { ensureTools, fmt, median, servingPair, table, type ToolOptions } from './common.js';
import { pinSelf, post, startServer, untilAnswering, type LiveSetup } from './servers.js';
import { LABELS, LIVE_TARGETS, targets, type Target, type TargetName } from './targets.js';

export interface InstructionOptions {
  /** Requests before the count starts (the JIT compilers need thousands). */
  warmup: number;
  requests: number;
  connections: number;
  serverCpu: string;
  loaderCpu: string;
  targets?: readonly TargetName[];
  /**
   * How long a server under valgrind may take to answer (default 15 minutes: on a busy machine node
   * can take minutes to start under valgrind). A caller with a deadline of its own (a test runner's
   * timeout, which would kill this process and orphan the server) passes a shorter one.
   */
  startWaitMs?: number;
  /** Seconds counted with no request in flight before the live target's count (default 60). */
  idleSeconds?: number;
  /**
   * Processes counted per target, interleaved. A process's JIT state (what got optimised, what
   * stayed in baseline code) can put its count a few per cent off for its whole life.
   */
  processes?: number;
  /**
   * Keep callgrind's dumps here instead of deleting them, with V8's map of its generated code
   * (--perf-basic-prof) beside each, so bench/callgrind.ts can name the JavaScript functions.
   * Writing the map costs a little at each compile: such counts are for diagnosis.
   */
  keep?: string;
  /** The e2e API server the live target's `meshguard serve` watches (bench/stack.ts). */
  live?: LiveSetup;
  log?: (line: string) => void;
}

export interface InstructionCount {
  target: TargetName;
  /** 1-based: which of the target's processes. */
  process: number;
  /** Instructions per second of the server's main thread with no request in flight (0: not counted). */
  idlePerSecond: number;
  /** Of perRequest, the idle rate over the counted window's wall time, per request. */
  background: number;
  /** Instructions of the server's main thread per request: JavaScript, TLS, HTTP, GC. */
  perRequest: number;
  /**
   * Of those, Node's `process.nextTick` building its task objects through the V8 runtime, a state
   * some processes reach (bench/RESULTS.md); 0 when it did not happen.
   */
  nextTickRuntime: number;
}

export interface InstructionReport {
  options: InstructionOptions;
  counts: InstructionCount[];
  /** Per target, the median over its processes of the count without the nextTick state and the idle rate. */
  medians: { target: TargetName; perRequest: number }[];
  /** meshguard ÷ bare (medians), without the nextTick state in either. */
  ratios: { target: TargetName; ratio: number }[];
}

/** valgrind from Debian's package (and taskset): what is missing, or null; see ensureTools. */
export function ensureValgrind(opts: ToolOptions): string | null {
  return ensureTools(
    'valgrind',
    ['valgrind', 'callgrind_control', 'callgrind_annotate'],
    'npm run bench -- instructions',
    opts,
  );
}

/** Sends `count` requests over `connections` keep-alive connections; every answer must be `expected`. */
async function send(
  port: number,
  target: Target,
  ca: string,
  expected: string,
  count: number,
  connections: number,
): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  let left = count;
  const worker = async () => {
    while (left-- > 0) {
      const { status, body } = await post(port, target.path, target.body, ca, agent);
      if (status !== 200 || body !== expected)
        throw new Error(`${target.label}: not the verified answer (${status}): ${body.slice(0, 200)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    agent.destroy();
  }
}

/** The count callgrind dumped for the main thread (part 1, thread 1). */
function mainThreadTotal(dir: string, name: string, part = 1): { file: string; total: number } {
  const file = readdirSync(dir).find((f) => f === `${name}.out.${part}-01`);
  if (!file) throw new Error(`callgrind wrote no dump for ${name}`);
  const total = /^totals: (\d+)$/m.exec(readFileSync(join(dir, file), 'utf8'))?.[1];
  if (!total) throw new Error(`no totals line in ${file}`);
  return { file: join(dir, file), total: Number(total) };
}

/** Instructions under `fn` in the dump, by callgrind_annotate. */
function costOf(file: string, fn: string): number {
  const out =
    spawnSync('callgrind_annotate', ['--threshold=100', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      .stdout ?? '';
  const line = out.split('\n').find((l) => l.includes(fn));
  return line ? Number(/^\s*([\d,]+)/.exec(line)?.[1]?.replaceAll(',', '') ?? 0) : 0;
}

/** One process of a target under callgrind: warmed up, then counted over `requests`. */
async function countOne(
  t: Target,
  p: number,
  {
    opts,
    ca,
    dir,
    out,
    log,
  }: { opts: InstructionOptions; ca: string; dir: string; out: string; log: (l: string) => void },
): Promise<InstructionCount> {
  const name = (opts.processes ?? 1) > 1 ? `${t.name}-${p}` : t.name;
  const valgrind = [
    'valgrind',
    '--tool=callgrind',
    '--smc-check=all-non-file', // V8 writes and rewrites code in its heap
    '--instr-atstart=no',
    '--separate-threads=yes', // the compilers' background threads apart from the request's work
    `--callgrind-out-file=${join(out, `${name}.out`)}`,
    `--log-file=${join(dir, `${name}.valgrind.log`)}`,
  ];
  // GC on the main thread, builtins called as in the plain binary: the same for every target.
  // No memory reducer: it starts full collections when the allocation rate per second of wall
  // time is low, which a server slowed down by valgrind (and more so on a busy machine) seems
  // to be; with it, counts of one build moved by 15 % with the machine's load, without it by
  // 0.4 %. A server under real load allocates too fast for it to act.
  // The young generation at a fixed size, the largest V8 grows it to on its own (16 MB semi-spaces):
  // left to grow, it settled at different sizes in different processes of one build, and the
  // scavenges per request with it (one process of a pair spent 7 500 instructions per request
  // scanning roots, its twin 500), so that counts of one tree spread over 10 %.
  const server = await startServer(
    t.server,
    opts.serverCpu,
    [
      '--single-threaded-gc',
      '--no-short-builtin-calls',
      '--no-memory-reducer',
      '--min-semi-space-size=16',
      '--max-semi-space-size=16',
      // The perf map also turns on V8's log: into the kept directory, not the working one.
      ...(opts.keep
        ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(out, `${name}.v8.log`)}`]
        : []),
    ],
    dir,
    valgrind,
    opts.live,
    // The log batch goes out when it holds 32 KiB or every 100 ms, whichever comes first. At full
    // speed (thousands of reviews a second) it fills first, every ~50 reviews; under valgrind,
    // 50 times slower, 100 ms holds a few reviews, and each flush's fixed cost (a buffer, a write)
    // would count several times over per review. The interval is stretched as time is.
    { BENCH_LOG_FLUSH_MS: '5000' },
  );
  try {
    // Node under valgrind on a busy machine can take minutes to listen.
    const expected = await untilAnswering(server, t, ca, opts.startWaitMs ?? 900_000, log);
    const problem = t.verify(JSON.parse(expected) as AdmissionReviewResponse);
    if (problem) throw new Error(`${t.label}: the verified request failed: ${problem}`);
    log(`${t.label} (${p}): ${opts.warmup} requests to warm up under valgrind`);
    await send(server.port, t, ca, expected, opts.warmup, opts.connections);
    const pid = String(server.proc.pid);
    spawnSync('callgrind_control', ['-i', 'on', pid], { stdio: 'ignore' });
    // What the server does with no request in flight (watches, timers), per second of wall time:
    // under valgrind a review takes some 50 times longer, so work that comes with time and not
    // with reviews would count about 50 times over per review.
    const idle = t.server === 'meshguard-live' ? (opts.idleSeconds ?? 60) : 0;
    let idlePerSecond = 0;
    if (idle > 0) {
      log(`${t.label} (${p}): ${idle} s idle`);
      await new Promise((r) => setTimeout(r, idle * 1000));
      spawnSync('callgrind_control', ['-d', pid], { stdio: 'ignore' });
      idlePerSecond = mainThreadTotal(out, name, 1).total / idle;
    }
    const started = performance.now();
    await send(server.port, t, ca, expected, opts.requests, opts.connections);
    const seconds = (performance.now() - started) / 1000;
    spawnSync('callgrind_control', ['-d', pid], { stdio: 'ignore' });
    const { file, total } = mainThreadTotal(out, name, idle > 0 ? 2 : 1);
    if (opts.keep) {
      copyFileSync(`/tmp/perf-${pid}.map`, join(opts.keep, `${name}.perf.map`));
      rmSync(`/tmp/perf-${pid}.map`, { force: true });
    }
    const background = (idlePerSecond * seconds) / opts.requests;
    log(
      `${t.label} (${p}): ${Math.round(total / opts.requests)} instructions per request${idle > 0 ? `, of which ${Math.round(background)} the idle rate's over the ${fmt(seconds, 0)} s counted` : ''}`,
    );
    return {
      target: t.name,
      process: p,
      perRequest: total / opts.requests,
      idlePerSecond,
      background,
      nextTickRuntime: costOf(file, 'Runtime_DefineKeyedOwnPropertyInLiteral') / opts.requests,
    };
  } finally {
    server.proc.kill('SIGKILL');
    await server.exited;
  }
}

export async function runInstructions(opts: InstructionOptions): Promise<InstructionReport> {
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-instructions-'));
  const out = opts.keep ?? dir;
  if (opts.keep) mkdirSync(opts.keep, { recursive: true });
  const cpusBefore = pinSelf(opts.loaderCpu);
  const counts: InstructionCount[] = [];
  try {
    const ca = await servingPair(dir);
    const wanted = opts.targets ?? ['bare', 'mutate', 'mutate-quiet', ...(opts.live ? LIVE_TARGETS : [])];
    const chosen = targets().filter((x) => wanted.includes(x.name));
    for (let p = 1; p <= (opts.processes ?? 1); p++)
      // Rotated: no target is always counted first, or right after the same one.
      for (let i = 0; i < chosen.length; i++) {
        const t = chosen[(i + p - 1) % chosen.length] as Target;
        counts.push(await countOne(t, p, { opts, ca, dir, out, log }));
      }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (cpusBefore) pinSelf(cpusBefore);
  }
  const steady = (c: InstructionCount) => c.perRequest - c.nextTickRuntime - c.background;
  const medians = [...new Set(counts.map((c) => c.target))].map((target) => ({
    target,
    perRequest: median(counts.filter((c) => c.target === target).map(steady)),
  }));
  const bare = medians.find((c) => c.target === 'bare');
  const ratios = bare
    ? medians.filter((c) => c !== bare).map((c) => ({ target: c.target, ratio: c.perRequest / bare.perRequest }))
    : [];
  return { options: opts, counts, medians, ratios };
}

export function formatInstructions(r: InstructionReport): string {
  const rows = r.medians.map((m) => {
    const mine = r.counts.filter((c) => c.target === m.target);
    const ratio = r.ratios.find((x) => x.target === m.target);
    const nextTick = mine.filter((c) => c.nextTickRuntime > 0);
    return [
      LABELS[m.target],
      fmt(m.perRequest, 0),
      mine.map((c) => fmt(c.perRequest, 0)).join(', '),
      mine.some((c) => c.idlePerSecond > 0)
        ? mine.map((c) => `${fmt(c.idlePerSecond / 1e6, 1)} M/s → ${fmt(c.background, 0)}`).join(', ')
        : '',
      nextTick.map((c) => `${c.process}: ${fmt(c.nextTickRuntime, 0)}`).join(', '),
      ratio ? `${fmt(ratio.ratio)}×` : '',
    ];
  });
  return [
    `Instructions per request (callgrind, main thread), counted over ${r.options.requests} requests after ${r.options.warmup}, ${r.options.processes ?? 1} process(es) per target; servers on CPU ${r.options.serverCpu}, the client on CPU ${r.options.loaderCpu}:`,
    '',
    table(
      [
        'target',
        'instructions per request (median, net of the idle rate and of nextTick through the runtime)',
        'each process, as counted',
        'idle rate → its share per request, each process',
        'nextTick through the runtime (process: per request)',
        '÷ bare',
      ],
      rows,
    ),
  ].join('\n');
}
