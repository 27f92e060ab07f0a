// meshguard on a large cluster: the e2e API server holding 10k, then 100k Services with
// ServiceEntries, DestinationRules, PeerAuthentications, namespaces and Nodes (bench/scale-objects.ts),
// written through the API server; at each level `meshguard serve` as deployed: time from start
// to ready, memory, how long a watch event takes to change an answer, instructions per pod review.
// Beside it, the view alone in a fresh process: heap per object, µs per watch event.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../src/paths.js';
import { apiRequest, freePorts } from '../test/e2e/cluster.js';
import { benchConfig, benchObjects, fmt, median, REVIEWS, reviewText, servingPair, table } from './common.js';
import { runInstructions } from './instructions.js';
import { divided, objectsBetween, SCALES, type Scale } from './scale-objects.js';
import { post } from './servers.js';
import { createAll, startStack, type Stack } from './stack.js';

export interface ScaleOptions {
  /** Counts divided by this (1: the issue's sizes; 100 for a quick run). */
  divisor: number;
  /** Starts of `serve` timed per level. */
  starts: number;
  /** Also count instructions per pod review under callgrind at each level (minutes per level). */
  instructions: boolean;
  log: (line: string) => void;
}

export interface Level {
  scale: Scale | { name: string };
  objects: number;
  writeSeconds: number;
  readyMs: number[];
  rssMiB: number;
  heapMiB: number;
  /** ms from the API server's answer to a create (delete) to the first review answered differently. */
  eventMs: number[];
  view?: { perObject: Record<string, number>; events: Record<string, number> };
  instructions?: number;
  load: number;
}

export interface ScaleReport {
  options: Omit<ScaleOptions, 'log'>;
  levels: Level[];
  load: { start: number[]; end: number[] };
}

const here = fileURLToPath(new URL('.', import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');

/** The view alone at a scale, in a fresh process with --expose-gc. */
function viewChild(scale: Scale): Promise<NonNullable<Level['view']>> {
  const args = [
    '--expose-gc',
    ...(fromSource ? ['--import', 'tsx'] : []),
    join(here, fromSource ? 'scale-view.ts' : 'scale-view.js'),
    JSON.stringify(scale),
  ];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as Level['view'] & object) : reject(new Error(`scale-view exited ${code}`)),
    );
  });
}

interface Serve {
  proc: ChildProcess;
  port: number;
  metricsPort: number;
  stop(): Promise<void>;
}

/** `meshguard serve` as deployed against the stack; resolves once /readyz answers 200. */
async function serve(stack: Stack, dir: string, ca: string): Promise<Serve & { readyMs: number }> {
  const [port, metricsPort] = (await freePorts(2)) as [number, number];
  const started = performance.now();
  const proc = spawn(
    process.execPath,
    [
      ...(fromSource ? ['--import', 'tsx'] : []),
      join(packageRoot, fromSource ? 'src/cli.ts' : 'dist/src/cli.js'),
      'serve',
      ...['--host', '127.0.0.1', '--port', String(port), '--metrics-port', String(metricsPort)],
      ...['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--config', stack.live.configFile],
      ...['--kubeconfig', stack.live.kubeconfig, '--log-level', 'warn', '--shutdown-delay', '0'],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => proc.on('close', () => resolve()));
  const stop = async () => {
    proc.kill('SIGTERM');
    await exited;
  };
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`serve exited (${proc.exitCode}) before it was ready`);
    const r = await post(port, '/readyz', undefined, ca).catch(() => undefined);
    if (r?.status === 200) return { proc, port, metricsPort, stop, readyMs: performance.now() - started };
    await new Promise((res) => setTimeout(res, 20));
  }
}

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpRequest(`http://127.0.0.1:${port}/metrics`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}
const gauge = (text: string, name: string) =>
  Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);

/**
 * A Service in `shop` sending traffic to the nginx pods' health port: with it, the recorded pod
 * review's probe port 8087 is no longer excluded (a warning instead). The time from the API
 * server's answer to the first review answered the new way is the watch event's path end to end.
 */
async function eventLatency(stack: Stack, s: Serve, ca: string, rounds: number): Promise<number[]> {
  const body = reviewText(REVIEWS.pod);
  const excluded = async () => {
    const answer = JSON.parse((await post(s.port, '/mutate', body, ca)).body) as { response: { patch?: string } };
    return Buffer.from(answer.response.patch ?? '', 'base64')
      .toString()
      .includes('excludeInboundPorts');
  };
  const until = async (want: boolean) => {
    const deadline = Date.now() + 30_000;
    while ((await excluded()) !== want) if (Date.now() > deadline) throw new Error('the watch event never arrived');
  };
  const out: number[] = [];
  const path = '/api/v1/namespaces/shop/services';
  for (let i = 0; i < rounds; i++) {
    await until(true);
    let t0 = performance.now();
    await apiRequest(stack.cluster, 'POST', path, {
      metadata: { name: 'health' },
      spec: { selector: { app: 'nginx' }, ports: [{ name: 'health', port: 8087, targetPort: 8087 }] },
    });
    t0 = performance.now();
    await until(false);
    out.push(performance.now() - t0);
    await apiRequest(stack.cluster, 'DELETE', `${path}/health`);
    t0 = performance.now();
    await until(true);
    out.push(performance.now() - t0);
  }
  return out;
}

export async function runScale(opts: ScaleOptions): Promise<ScaleReport> {
  const { log } = opts;
  const start = loadavg();
  const levels: Level[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-scale-'));
  const stack = await startStack({
    objects: benchObjects(),
    config: (await benchConfig()).config,
    // Istio's own CRDs (its base chart); no EndpointSlice controller writing a slice per Service;
    // a service range for 100 000 cluster IPs.
    istioBase: true,
    cluster: { controllers: ['serviceaccount'], apiserverArgs: ['--service-cluster-ip-range=10.96.0.0/12'] },
    log,
  });
  try {
    const ca = await servingPair(dir);
    let previous: Scale | undefined;
    for (const scale of [undefined, ...SCALES.map((s) => divided(s, opts.divisor))]) {
      const name = scale?.name ?? 'bench cluster only';
      let objects = 0;
      let writeSeconds = 0;
      if (scale) {
        const batch = [...objectsBetween(previous, scale)];
        log(`${name}: writing ${batch.length} objects through the API server`);
        writeSeconds = (await createAll(stack.cluster, batch, { concurrency: 16 })).seconds;
        log(`${name}: written in ${fmt(writeSeconds, 0)} s (${fmt(batch.length / writeSeconds, 0)}/s)`);
        previous = scale;
      }
      objects = previous ? [...objectsBetween(undefined, previous)].length : 0;
      const readyMs: number[] = [];
      let last: (Serve & { readyMs: number }) | undefined;
      for (let i = 0; i < opts.starts; i++) {
        await last?.stop();
        last = await serve(stack, dir, ca);
        readyMs.push(last.readyMs);
        log(`${name}: serve ready in ${fmt(last.readyMs, 0)} ms`);
      }
      const s = last as Serve & { readyMs: number };
      // Discovery of Istio's objects (the Nodes) is not waited for by /readyz: a few seconds.
      await new Promise((r) => setTimeout(r, 3000));
      const m = await metrics(s.metricsPort);
      const eventMs = await eventLatency(stack, s, ca, 5);
      await s.stop();
      const level: Level = {
        scale: scale ?? { name },
        objects,
        writeSeconds,
        readyMs,
        rssMiB: gauge(m, 'process_resident_memory_bytes') / 2 ** 20,
        heapMiB: gauge(m, 'nodejs_heap_size_used_bytes') / 2 ** 20,
        eventMs,
        load: loadavg()[0] ?? NaN,
      };
      if (scale) level.view = await viewChild(scale);
      if (opts.instructions) {
        log(`${name}: instructions per pod review under callgrind`);
        const r = await runInstructions({
          warmup: 3000,
          requests: 1000,
          connections: 16,
          serverCpu: '0',
          loaderCpu: '1',
          targets: ['mutate-live'],
          live: stack.live,
          log,
        });
        level.instructions = r.medians[0]?.perRequest;
      }
      log(
        `${name}: ready ${fmt(median(readyMs), 0)} ms, RSS ${fmt(level.rssMiB, 0)} MiB, heap ${fmt(level.heapMiB, 0)} MiB, event ${fmt(median(eventMs), 1)} ms${level.instructions ? `, ${fmt(level.instructions, 0)} instructions per review` : ''}`,
      );
      levels.push(level);
    }
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    options: { divisor: opts.divisor, starts: opts.starts, instructions: opts.instructions },
    levels,
    load: { start, end: loadavg() },
  };
}

export function formatScale(r: ScaleReport): string {
  const b = (l: Level, kind: string) => (l.view ? fmt(l.view.perObject[kind] ?? NaN, 0) : '');
  const us = (l: Level, event: string) => (l.view ? fmt(l.view.events[event] ?? NaN, 1) : '');
  return [
    `meshguard serve against the e2e API server as the cluster grows (counts ÷ ${r.options.divisor}); objects written through the API server, Istio's CRDs from its base chart; load average ${r.load.start.map((x) => fmt(x)).join(' ')} at start, ${r.load.end.map((x) => fmt(x)).join(' ')} at the end. Ready: from spawning serve to /readyz 200 (median of ${r.options.starts}); memory from its /metrics 3 s after ready; a watch event: from the API server's answer to a Service create or delete in the pod's namespace to the first pod review answered accordingly (polled back to back; 5 of each). The view alone (fresh process, --expose-gc): heap per object and µs per event (the object parsed from JSON, as the watch delivers it, and applied).`,
    '',
    table(
      [
        'cluster',
        'objects beyond the bench cluster',
        'written in s',
        'ready ms',
        'RSS MiB',
        'heap MiB',
        'watch event → answer ms (median, max)',
        'instructions per pod review',
        'load',
      ],
      r.levels.map((l) => [
        l.scale.name,
        String(l.objects),
        l.writeSeconds > 0 ? fmt(l.writeSeconds, 0) : '',
        fmt(median(l.readyMs), 0),
        fmt(l.rssMiB, 0),
        fmt(l.heapMiB, 0),
        `${fmt(median(l.eventMs), 1)}, ${fmt(Math.max(...l.eventMs), 1)}`,
        l.instructions ? fmt(l.instructions, 0) : '',
        fmt(l.load, 1),
      ]),
    ),
    '',
    table(
      [
        'cluster',
        'view B per Service',
        'ServiceEntry',
        'DestinationRule',
        'PeerAuthentication',
        'Namespace',
        'µs: Service modified',
        'DestinationRule modified',
        'Service added and deleted',
      ],
      r.levels
        .filter((l) => l.view)
        .map((l) => [
          l.scale.name,
          b(l, 'Service'),
          b(l, 'ServiceEntry'),
          b(l, 'DestinationRule'),
          b(l, 'PeerAuthentication'),
          b(l, 'Namespace'),
          us(l, 'serviceModified'),
          us(l, 'destinationRuleModified'),
          us(l, 'serviceAddedDeleted'),
        ]),
    ),
  ].join('\n');
}
