// The load benchmark: wrk over keep-alive HTTPS against meshguard (/mutate, /validate) and a bare
// fastify server, server pinned to one core and wrk to the other, interleaved rounds on several
// processes of each server, medians.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsonpatch from 'fast-json-patch';
import type { AdmissionReviewResponse, KubeObject } from '../src/admission/types.js';
import {
  ensureTools,
  fmt,
  freePort,
  median,
  REVIEWS,
  review,
  reviewText,
  servingPair,
  table,
  type ToolOptions,
} from './common.js';

export interface LoadOptions {
  /** Seconds of each measured run. */
  duration: number;
  /** Seconds of load on each target after its server starts, before it is measured. */
  warmup: number;
  rounds: number;
  /**
   * How many times each server is started: the rounds are shared among its processes. One process
   * can be several per cent faster or slower than the next for its whole life (where the JIT and
   * the heap happened to put things), and the bare server's process divides every ratio.
   */
  processes: number;
  connections: number;
  /** Cores for the servers and for wrk. */
  serverCpu: string;
  loaderCpu: string;
  /** Only these targets (the smoke test runs the bare server alone). */
  targets?: readonly TargetName[];
  /** Extra node flags for the servers, e.g. --cpu-prof (profiling changes the figures: not for the record). */
  serverNodeArgs?: readonly string[];
  /** Progress lines go here. */
  log?: (line: string) => void;
}

export type TargetName = 'bare' | 'mutate' | 'validate' | 'mutate-quiet';
type ServerKind = 'bare' | 'meshguard' | 'meshguard-quiet';

export const LABELS: Record<TargetName, string> = {
  bare: 'bare fastify (limit)',
  mutate: 'meshguard /mutate (pod)',
  validate: 'meshguard /validate (DR)',
  'mutate-quiet': 'meshguard /mutate, no decision logs',
};

export interface Target {
  name: TargetName;
  label: string;
  server: ServerKind;
  path: string;
  body: string;
  /** Checks the one verified answer; returns a problem or null. */
  verify(answer: AdmissionReviewResponse): string | null;
}

export interface RunResult {
  target: TargetName;
  round: number;
  requests: number;
  seconds: number;
  rps: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  /** Responses that were not a 200 carrying exactly the verified answer, plus socket errors. */
  bad: number;
  ok: number;
  socketErrors: number;
  serverCpuUsPerReq: number;
  /** Busy share of the server's and the loader's core over the run (all processes, from /proc/stat). */
  serverCoreBusy: number;
  loaderCoreBusy: number;
  /** Of the server core's busy time, the share that was the server process. */
  serverShareOfCore: number;
}

export interface LoadReport {
  options: LoadOptions;
  runs: RunResult[];
  summary: Record<TargetName, { rps: number; p50Us: number; p99Us: number; cpuUsPerReq: number } | undefined>;
  /** meshguard ÷ bare: medians over the rounds of the ratio within each round (targets run back to back). */
  ratios: { target: TargetName; rps: number; cpu: number; p50: number; p99: number }[];
  loadBefore: string;
  loadAfter: string;
  logLines: number;
  requestsToMeshguard: number;
}

const here = fileURLToPath(new URL('.', import.meta.url));
// Under tsx (the smoke test) the sibling is a .ts file that needs the loader; built, plain .js.
const fromSource = import.meta.url.endsWith('.ts');
const serverScript = join(here, fromSource ? 'server.ts' : 'server.js');
const nodeArgs = fromSource ? ['--import', 'tsx'] : [];

/** wrk from Debian's package (and taskset): what is missing, or null; see ensureTools. */
export function ensureWrk(opts: ToolOptions): string | null {
  return ensureTools('wrk', ['wrk'], 'npm run bench', opts);
}

/** POSTs a JSON body over HTTPS: on a connection of its own, or on one of `agent`'s. */
export function post(
  port: number,
  path: string,
  body: string,
  ca: string,
  agent: Agent | false = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca,
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU time of a process so far, in clock ticks (utime + stime). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name can hold spaces and parentheses: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of stat(5)
}

/** Busy and total ticks per CPU, from /proc/stat. */
function coreTicks(): Map<string, { busy: number; total: number }> {
  const out = new Map<string, { busy: number; total: number }>();
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const v = (m[2] ?? '').trim().split(/\s+/).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    out.set(m[1] ?? '', { busy: total - idle, total });
  }
  return out;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export function targets(): Target[] {
  const pod = review(REVIEWS.pod);
  const dr = review(REVIEWS.destinationRule);
  const mutate = (name: TargetName, server: ServerKind): Target => ({
    name,
    label: LABELS[name],
    server,
    path: '/mutate',
    body: reviewText(REVIEWS.pod),
    verify(a) {
      if (a.response.uid !== pod.request.uid || a.response.allowed !== true || a.response.patchType !== 'JSONPatch')
        return 'expected an allowed JSONPatch answer echoing the uid';
      const ops = JSON.parse(Buffer.from(a.response.patch ?? '', 'base64').toString()) as jsonpatch.Operation[];
      const patched = jsonpatch.applyPatch(
        structuredClone(pod.request.object as KubeObject),
        ops,
        true,
        false,
      ).newDocument;
      const want = {
        'proxy.istio.io/config': 'terminationDrainDuration: 20s\nholdApplicationUntilProxyStarts: true\n',
        'traffic.sidecar.istio.io/excludeInboundPorts': '8087',
      };
      return JSON.stringify(patched.metadata?.annotations) === JSON.stringify(want)
        ? null
        : `unexpected patch result ${JSON.stringify(patched.metadata?.annotations)}`;
    },
  });
  return [
    {
      name: 'bare',
      label: LABELS.bare,
      server: 'bare',
      path: '/mutate',
      body: reviewText(REVIEWS.pod),
      verify: (a) =>
        a.response.uid === pod.request.uid && a.response.allowed === true
          ? null
          : 'expected an allowed answer echoing the uid',
    },
    mutate('mutate', 'meshguard'),
    {
      name: 'validate',
      label: LABELS.validate,
      server: 'meshguard',
      path: '/validate',
      body: reviewText(REVIEWS.destinationRule),
      verify: (a) =>
        a.response.uid === dr.request.uid &&
        a.response.allowed === false &&
        a.response.status?.code === 403 &&
        /destinationrule-placement/.test(a.response.status.message)
          ? null
          : 'expected a 403 denial by destinationrule-placement echoing the uid',
    },
    mutate('mutate-quiet', 'meshguard-quiet'),
  ];
}

const luaString = (s: string) => {
  let eq = '=';
  while (s.includes(`]${eq}]`)) eq += '=';
  return `[${eq}[${s}]${eq}]`;
};

/** wrk script: POSTs the review; every response must be a 200 whose body is exactly the verified one. */
function wrkScript(body: string, expected: string): string {
  return `-- generated by bench/load.ts
wrk.method = "POST"
wrk.body = ${luaString(body)}
wrk.headers["Content-Type"] = "application/json"
local expected = ${luaString(expected)}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body == expected then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do ok = ok + t:get("ok"); bad = bad + t:get("bad") end
  local e = summary.errors
  io.write(string.format("MG requests=%d duration_us=%d ok=%d bad=%d connect=%d read=%d write=%d status=%d timeout=%d p50=%d p90=%d p99=%d max=%d\\n",
    summary.requests, summary.duration, ok, bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;
}

interface Server {
  proc: ChildProcess;
  port: number;
  exited: Promise<void>;
  /** Decision lines the server logged so far. */
  decisions(): number;
}

const DECISION = '"msg":"decision"';

/** A server pinned to `cpu`, run under `wrapper` (a command line such as valgrind's) when given. */
export async function startServer(
  kind: ServerKind,
  cpu: string,
  extra: readonly string[],
  dir: string,
  wrapper: readonly string[] = [],
): Promise<Server> {
  const port = await freePort();
  // taskset execs node: the child's pid is the server's. Its stdout is a pipe this process
  // drains, as a container runtime would: lines are counted, then dropped (a file would grow by
  // hundreds of MB, and the file system's cost is not meshguard's).
  const proc = spawn(
    'taskset',
    [
      '-c',
      cpu,
      ...wrapper,
      process.execPath,
      ...extra,
      ...nodeArgs,
      serverScript,
      kind,
      String(port),
      join(dir, 'tls.crt'),
      join(dir, 'tls.key'),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let decisions = 0;
  let tail = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    const text = tail + chunk;
    let at = text.indexOf(DECISION);
    while (at >= 0) {
      decisions++;
      at = text.indexOf(DECISION, at + DECISION.length);
    }
    tail = text.slice(-(DECISION.length - 1));
  });
  // 'close': exited, and its stdout read to the end.
  const exited = new Promise<void>((resolve) => proc.on('close', () => resolve()));
  return { proc, port, exited, decisions: () => decisions };
}

/** The first answer the server gives to the target's request, waiting up to `waitMs` for it to listen. */
export async function untilAnswering(server: Server, target: Target, ca: string, waitMs = 30_000): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return (await post(server.port, target.path, target.body, ca)).body;
    } catch (err) {
      if (server.proc.exitCode !== null)
        throw new Error(`the ${target.server} server exited (${server.proc.exitCode})`);
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function runWrk(
  opts: LoadOptions,
  port: number,
  target: Target,
  script: string,
  seconds: number,
): Promise<{ out: string; code: number | null }> {
  const args = [
    '-c',
    opts.loaderCpu,
    'wrk',
    '-t1',
    `-c${opts.connections}`,
    `-d${seconds}s`,
    '--latency',
    '--timeout',
    '5s',
    '-s',
    script,
    `https://127.0.0.1:${port}${target.path}`,
  ];
  return new Promise((resolve, reject) => {
    const p = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ out, code }));
  });
}

function parseWrk(out: string): Record<string, number> {
  const line = out.split('\n').find((l) => l.startsWith('MG '));
  if (!line) throw new Error(`wrk printed no summary:\n${out}`);
  return Object.fromEntries(
    line
      .slice(3)
      .split(' ')
      .map((kv) => kv.split('='))
      .map(([k, v]) => [k ?? '', Number(v)]),
  );
}

/**
 * Sets this process's CPUs (all its threads) and returns the ones it had. It drains the meshguard
 * server's log pipe: woken by each write, it would run on the server's core (the kernel wakes a
 * pipe reader next to its writer), taking CPU time and caches from the server it measures.
 */
export function pinSelf(cpus: string): string | undefined {
  const pid = String(process.pid);
  const before = /list:\s*(\S+)/.exec(spawnSync('taskset', ['-c', '-p', pid], { encoding: 'utf8' }).stdout)?.[1];
  spawnSync('taskset', ['-a', '-c', '-p', cpus, pid], { stdio: 'ignore' });
  return before;
}

export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-bench-'));
  const servers = new Map<string, Server>();
  // With the loader, not the servers, while they run (their own taskset sets their CPU).
  const cpusBefore = pinSelf(opts.loaderCpu);
  try {
    // The same kind of certificate meshguard serves in production: ECDSA P-256 from src/tls.
    const ca = await servingPair(dir);

    const all = targets().filter((t) => !opts.targets || opts.targets.includes(t.name));
    // Each target's answer, verified once; wrk then demands exactly it, from every process.
    const scripts = new Map<TargetName, string>();
    let decisionLines = 0;
    const stopServers = async () => {
      for (const s of servers.values()) s.proc.kill('SIGTERM');
      await Promise.all([...servers.values()].map((s) => s.exited));
      decisionLines += servers.get('meshguard')?.decisions() ?? 0;
      servers.clear();
    };
    const startServers = async () => {
      for (const kind of new Set(all.map((t) => t.server)))
        servers.set(kind, await startServer(kind, opts.serverCpu, opts.serverNodeArgs ?? [], dir));
      for (const t of all) {
        const body = await untilAnswering(servers.get(t.server) as Server, t, ca);
        if (!scripts.has(t.name)) {
          const problem = t.verify(JSON.parse(body) as AdmissionReviewResponse);
          if (problem) throw new Error(`${t.label}: the verified request failed: ${problem}\n${body}`);
          const file = join(dir, `${t.name}.lua`);
          writeFileSync(file, wrkScript(t.body, body));
          scripts.set(t.name, file);
          log(
            `verified ${t.label}: ${body.length} bytes, ${t.name === 'mutate' ? 'patch as expected' : t.name === 'validate' ? 'denied as expected' : 'allowed'}`,
          );
        }
      }
    };

    const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
    const measure = async (t: Target, seconds: number, round: number): Promise<RunResult> => {
      const server = servers.get(t.server) as Server;
      const pid = server.proc.pid as number;
      const cpu0 = cpuTicks(pid);
      const cores0 = coreTicks();
      const { out, code } = await runWrk(opts, server.port, t, scripts.get(t.name) as string, seconds);
      const cpu1 = cpuTicks(pid);
      const cores1 = coreTicks();
      if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out}`);
      const w = parseWrk(out);
      const requests = w.requests ?? 0;
      const socketErrors = (w.connect ?? 0) + (w.read ?? 0) + (w.write ?? 0) + (w.timeout ?? 0);
      const busy = (cpu: string) => {
        const a = cores0.get(cpu);
        const b = cores1.get(cpu);
        return a && b && b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : NaN;
      };
      const serverCoreTicks = (() => {
        const a = cores0.get(opts.serverCpu);
        const b = cores1.get(opts.serverCpu);
        return a && b ? b.busy - a.busy : NaN;
      })();
      const seconds_ = (w.duration_us ?? 0) / 1e6;
      return {
        target: t.name,
        round,
        requests,
        seconds: seconds_,
        rps: requests / seconds_,
        p50Us: w.p50 ?? NaN,
        p90Us: w.p90 ?? NaN,
        p99Us: w.p99 ?? NaN,
        maxUs: w.max ?? NaN,
        ok: w.ok ?? 0,
        bad: (w.bad ?? 0) + socketErrors,
        socketErrors,
        serverCpuUsPerReq: (((cpu1 - cpu0) / CLK_TCK) * 1e6) / requests,
        serverCoreBusy: busy(opts.serverCpu),
        loaderCoreBusy: busy(opts.loaderCpu),
        serverShareOfCore: (cpu1 - cpu0) / serverCoreTicks,
      };
    };

    const warmUp = async () => {
      for (const t of all) {
        const r = await measure(t, opts.warmup, 0);
        log(
          `warm-up ${t.label}: ${opts.warmup} s, ${r.requests} requests, ${fmt(r.rps, 0)} req/s, ${fmt(r.serverCpuUsPerReq, 1)} µs CPU/req`,
        );
        if (r.bad > 0) throw new Error(`${t.label}: ${r.bad} bad responses during warm-up`);
      }
    };
    const runs: RunResult[] = [];
    let current = -1;
    for (let round = 1; round <= opts.rounds; round++) {
      // Fresh servers for each share of the rounds, each warmed up before it is measured.
      const next = Math.floor(((round - 1) * opts.processes) / opts.rounds);
      if (next !== current) {
        current = next;
        await stopServers();
        log(`servers started (${current + 1} of ${opts.processes})`);
        await startServers();
        await warmUp();
      }
      // Rotate the order so no target always runs first (or right after the same neighbour).
      const order = all.map((_, i) => all[(i + round - 1) % all.length] as Target);
      for (const t of order) {
        const r = await measure(t, opts.duration, round);
        runs.push(r);
        log(
          `round ${round}/${opts.rounds} ${t.label.padEnd(26)} ${fmt(r.rps, 0).padStart(7)} req/s  p50 ${fmt(r.p50Us / 1000)} ms  p99 ${fmt(r.p99Us / 1000)} ms  ` +
            `${fmt(r.serverCpuUsPerReq, 1)} µs CPU/req  bad ${r.bad}  cores ${fmt(r.serverCoreBusy * 100, 0)}%/${fmt(r.loaderCoreBusy * 100, 0)}% (server ${fmt(r.serverShareOfCore * 100, 0)}% of its core)`,
        );
        if (r.bad > 0)
          throw new Error(
            `${t.label}: ${r.bad} of ${r.requests} responses were not the verified 200 answer — a benchmark of errors is worthless`,
          );
      }
    }
    const loadAfter = readFileSync('/proc/loadavg', 'utf8').trim();

    const summary = {} as LoadReport['summary'];
    for (const t of all) {
      const mine = runs.filter((r) => r.target === t.name);
      summary[t.name] = {
        rps: median(mine.map((r) => r.rps)),
        p50Us: median(mine.map((r) => r.p50Us)),
        p99Us: median(mine.map((r) => r.p99Us)),
        cpuUsPerReq: median(mine.map((r) => r.serverCpuUsPerReq)),
      };
    }
    const ratios: LoadReport['ratios'] = [];
    if (summary.bare) {
      for (const t of all) {
        if (t.name === 'bare') continue;
        const pairs = [...new Set(runs.map((r) => r.round))].flatMap((round) => {
          const b = runs.find((r) => r.round === round && r.target === 'bare');
          const m = runs.find((r) => r.round === round && r.target === t.name);
          return b && m ? [{ b, m }] : [];
        });
        const med = (f: (x: { b: RunResult; m: RunResult }) => number) => median(pairs.map(f));
        ratios.push({
          target: t.name,
          rps: med(({ b, m }) => m.rps / b.rps),
          cpu: med(({ b, m }) => m.serverCpuUsPerReq / b.serverCpuUsPerReq),
          p50: med(({ b, m }) => m.p50Us / b.p50Us),
          p99: med(({ b, m }) => m.p99Us / b.p99Us),
        });
      }
    }
    const mgRequests = runs
      .filter((r) => r.target === 'mutate' || r.target === 'validate')
      .reduce((a, r) => a + r.requests, 0);
    await stopServers();
    return {
      options: opts,
      runs,
      summary,
      ratios,
      loadBefore,
      loadAfter,
      logLines: decisionLines,
      requestsToMeshguard: mgRequests,
    };
  } finally {
    for (const s of servers.values()) s.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    if (cpusBefore) pinSelf(cpusBefore);
  }
}

export function formatLoad(r: LoadReport): string {
  const rows = (Object.keys(r.summary) as TargetName[]).flatMap((k) => {
    const s = r.summary[k];
    const mine = r.runs.filter((x) => x.target === k);
    const loader = median(mine.map((x) => x.loaderCoreBusy));
    const share = median(mine.map((x) => x.serverShareOfCore));
    return s
      ? [
          [
            LABELS[k],
            fmt(s.rps, 0),
            fmt(s.p50Us / 1000, 2),
            fmt(s.p99Us / 1000, 2),
            fmt(s.cpuUsPerReq, 1),
            `${fmt(share * 100, 0)}%`,
            `${fmt(loader * 100, 0)}%`,
          ],
        ]
      : [];
  });
  const parts = [
    `Load: wrk -t1 -c${r.options.connections} over keep-alive HTTPS, ${r.options.rounds} interleaved rounds of ${r.options.duration} s, shared among ${r.options.processes} processes of each server, each warmed up for ${r.options.warmup} s; servers on CPU ${r.options.serverCpu}, wrk on CPU ${r.options.loaderCpu}. Medians over the rounds:`,
    '',
    table(
      ['target', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'server share of its core', 'loader core busy'],
      rows,
    ),
  ];
  if (r.ratios.length > 0) {
    parts.push(
      '',
      'meshguard ÷ bare, same run (median over the rounds of the ratio within each round):',
      '',
      table(
        ['target', 'throughput', 'CPU/req', 'p50', 'p99'],
        r.ratios.map((x) => [LABELS[x.target], `${fmt(x.rps)}×`, `${fmt(x.cpu)}×`, `${fmt(x.p50)}×`, `${fmt(x.p99)}×`]),
      ),
    );
  }
  const bad = r.runs.reduce((a, x) => a + x.bad, 0);
  const total = r.runs.reduce((a, x) => a + x.requests, 0);
  parts.push(
    '',
    `${total.toLocaleString('en-US')} measured responses, ${bad} not the verified 200 answer. Load average before ${r.loadBefore.split(' ').slice(0, 3).join(' ')}, after ${r.loadAfter.split(' ').slice(0, 3).join(' ')}.`,
  );
  if (r.requestsToMeshguard > 0) {
    parts.push(
      `The meshguard server (info) wrote ${r.logLines.toLocaleString('en-US')} decision log lines for ${r.requestsToMeshguard.toLocaleString('en-US')} measured requests plus warm-up.`,
    );
  }
  return parts.join('\n');
}
