// The servers the load and instruction benchmarks measure, each in a process of its own pinned to
// one core: bench/server.ts (bare fastify, meshguard with the in-memory view), or `meshguard serve`
// itself against a real API server (the live target).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request, type Agent } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../src/paths.js';
import { freePort } from './common.js';
import type { ServerKind, Target } from './targets.js';

const here = fileURLToPath(new URL('.', import.meta.url));
// Under tsx (the smoke test) the sibling is a .ts file that needs the loader; built, plain .js.
const fromSource = import.meta.url.endsWith('.ts');
const serverScript = join(here, fromSource ? 'server.ts' : 'server.js');
const cliScript = join(packageRoot, fromSource ? 'src/cli.ts' : 'dist/src/cli.js');
const nodeArgs = fromSource ? ['--import', 'tsx'] : [];

/** What the live server is pointed at: the e2e API server's kubeconfig, the configuration file. */
export interface LiveSetup {
  kubeconfig: string;
  configFile: string;
}

export interface Server {
  kind: ServerKind;
  proc: ChildProcess;
  port: number;
  exited: Promise<void>;
  /** Decision lines the server logged so far. */
  decisions(): number;
}

/** POSTs (or GETs, without a body) over HTTPS: on a connection of its own, or on one of `agent`'s. */
export function post(
  port: number,
  path: string,
  body: string | undefined,
  ca: string,
  agent: Agent | false = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: body === undefined ? 'GET' : 'POST',
        ca,
        agent,
        headers:
          body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
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

const DECISION = '"msg":"decision"';

/** The command line of a server: bench/server.ts, or `meshguard serve` as deployed for the live kind. */
function command(kind: ServerKind, port: number, dir: string, live: LiveSetup | undefined): string[] {
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  if (kind !== 'meshguard-live') return [serverScript, kind, String(port), cert, key];
  if (!live) throw new Error('the live target needs the e2e control plane (bench/stack.ts)');
  return [
    cliScript,
    'serve',
    ...['--host', '127.0.0.1', '--port', String(port), '--metrics-port', '0'],
    ...['--tls-cert', cert, '--tls-key', key, '--config', live.configFile],
    ...['--cluster', 'auto', '--kubeconfig', live.kubeconfig, '--log-level', 'info', '--shutdown-delay', '0'],
  ];
}

/** A server pinned to `cpu`, run under `wrapper` (a command line such as valgrind's) when given. */
export async function startServer(
  kind: ServerKind,
  cpu: string,
  extra: readonly string[],
  dir: string,
  wrapper: readonly string[] = [],
  live?: LiveSetup,
  env: Readonly<Record<string, string>> = {},
): Promise<Server> {
  const port = await freePort();
  // taskset execs node: the child's pid is the server's. Its stdout is a pipe this process
  // drains, as a container runtime would: lines are counted, then dropped (a file would grow by
  // hundreds of MB, and the file system's cost is not meshguard's).
  const proc = spawn(
    'taskset',
    ['-c', cpu, ...wrapper, process.execPath, ...extra, ...nodeArgs, ...command(kind, port, dir, live)],
    // No MESHGUARD_* variable of the caller's changes what serve does.
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MESHGUARD_'))), ...env },
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
  return { kind, proc, port, exited, decisions: () => decisions };
}

/**
 * The first answer the server gives to the target's request, once it listens (and, for `serve`,
 * once /readyz says its caches are synced: before that a pod review is judged without the view).
 * Waits as long as the process lives, up to `waitMs`: under valgrind, on a busy machine, node can
 * take minutes to start. Says every 30 s that it is still waiting.
 */
export async function untilAnswering(
  server: Server,
  target: Target,
  ca: string,
  waitMs = 120_000,
  log: (line: string) => void = () => {},
): Promise<string> {
  const started = Date.now();
  let said = started;
  for (;;) {
    try {
      if (server.kind === 'meshguard-live') {
        const ready = await post(server.port, '/readyz', undefined, ca);
        if (ready.status !== 200) throw new Error(`not ready: ${ready.body}`);
      }
      return (await post(server.port, target.path, target.body, ca)).body;
    } catch (err) {
      if (server.proc.exitCode !== null || server.proc.signalCode !== null)
        throw new Error(`the ${target.server} server exited (${server.proc.exitCode ?? server.proc.signalCode})`);
      if (Date.now() - started > waitMs)
        throw new Error(`the ${target.server} server did not answer in ${waitMs / 1000} s: ${(err as Error).message}`);
      if (Date.now() - said > 30_000) {
        said = Date.now();
        log(`${target.label}: still starting after ${Math.round((said - started) / 1000)} s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
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
