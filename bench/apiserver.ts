// What meshguard costs a pod's creation through a real API server (the e2e control plane:
// kube-apiserver 1.37, etcd, kube-controller-manager; Istio's injector installed by Helm from
// Istio's chart and served by the real istiod; meshguard installed by its chart, running as a local
// process). Three set-ups side by side in one cluster, told apart by namespace labels, so every
// batch meets the same API server, etcd and machine:
//   none      no webhook matches (meshguard.io/ignore, no injection label)
//   istio     Istio's injector only (istio-injection=enabled, meshguard.io/ignore)
//   meshguard meshguard, then Istio's injector (istio-injection=enabled)
// Pods never run (no kubelet): each is created, admitted, stored, then deleted between batches.
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiRequest, freePorts, startCluster, type Cluster } from '../test/e2e/cluster.js';
import { installIstioBase, installIstiod } from '../test/e2e/istiod.js';
import { installRelease, type Release } from '../test/e2e/release.js';
import { e2eBinDir } from '../test/e2e/cluster.js';
import { ISTIO_VERSION, KUBE_VERSION } from '../test/e2e/tools.js';
import { fmt, median, table } from './common.js';
import { add, histograms, minus, quantile, type Histogram } from './prometheus.js';
import { createAll, e2eBinaries } from './stack.js';

export const SETUPS = ['none', 'istio', 'meshguard'] as const;
export type Setup = (typeof SETUPS)[number];
/** patched: meshguard sets the hold and the drain (classic sidecars); alone: it has nothing to change. */
export const POD_KINDS = ['patched', 'alone'] as const;
export type PodKind = (typeof POD_KINDS)[number];

const NAMESPACE: Record<Setup, { name: string; labels: Record<string, string> }> = {
  none: { name: 'bench-none', labels: { 'meshguard.io/ignore': 'true' } },
  istio: { name: 'bench-istio', labels: { 'istio-injection': 'enabled', 'meshguard.io/ignore': 'true' } },
  meshguard: { name: 'bench-meshguard', labels: { 'istio-injection': 'enabled' } },
};
const MESHGUARD_NS = 'meshguard-system';

export interface ApiserverOptions {
  /** Pods per batch; a cell (set-up × clients × pod kind) gets one batch per round. */
  pods: number;
  rounds: number;
  concurrency: readonly number[];
  /** kubectl apply runs per set-up and round. */
  applies: number;
  log: (line: string) => void;
}

interface Cell {
  setup: Setup;
  clients: number;
  kind: PodKind;
  latencies: number[];
  seconds: number;
  /** p50 of each round's batch, for the run-to-run spread. */
  roundP50: number[];
  /** The API server's histogram of each webhook (by name), and meshguard's own /mutate one. */
  webhooks: Map<string, Histogram>;
  own: Histogram | undefined;
}

export interface ApiserverReport {
  options: Omit<ApiserverOptions, 'log'>;
  cells: Cell[];
  applies: { setup: Setup; ms: number[]; warnings: string[]; validate: Histogram | undefined }[];
  load: { start: number[]; end: number[]; batches: number[] };
  versions: string;
}

const ALONE_CONFIG =
  'holdApplicationUntilProxyStarts: true\nproxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"\n';

function pod(name: string, kind: PodKind): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: { app: 'bench' },
      // Already holding and draining: meshguard's hold and drain guardrails pass, nothing else applies.
      ...(kind === 'alone' && { annotations: { 'proxy.istio.io/config': ALONE_CONFIG } }),
    },
    // The ServiceAccount admission plugin is off in the e2e API server; Istio's template mounts its token.
    spec: {
      serviceAccountName: 'default',
      containers: [{ name: 'app', image: 'example.invalid/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
    },
  };
}

/** What a stored pod must look like in each set-up: a problem, or null. */
function check(stored: unknown, setup: Setup, kind: PodKind): string | null {
  const p = stored as {
    metadata?: { annotations?: Record<string, string> };
    spec?: { containers?: { name: string }[]; initContainers?: { name: string }[] };
  };
  const injected = [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].some(
    (c) => c.name === 'istio-proxy',
  );
  const config = p.metadata?.annotations?.['proxy.istio.io/config'] ?? '';
  if (injected !== (setup !== 'none')) return `istio-proxy ${injected ? 'injected' : 'missing'}`;
  const held = /holdApplicationUntilProxyStarts: true/.test(config);
  if (held !== (kind === 'alone' || setup === 'meshguard')) return `proxy.istio.io/config is ${JSON.stringify(config)}`;
  return null;
}

/** GET a text over HTTP(S): the API server's /metrics (its CA, the admin token), meshguard's. */
function getText(url: string, opts: { ca?: string; token?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { ...(opts.ca && { ca: opts.ca }), headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const WEBHOOK_METRIC = 'apiserver_admission_webhook_admission_duration_seconds';
const OWN_METRIC = 'meshguard_admission_duration_seconds';

interface Scrape {
  /** Mutating webhooks on pod CREATE, by webhook name. */
  admit: Map<string, Histogram>;
  /** Validating webhooks on CREATE, by webhook name. */
  validate: Map<string, Histogram>;
  /** meshguard's own /mutate and /validate histograms, by endpoint. */
  own: Map<string, Histogram>;
}

interface Bench {
  cluster: Cluster;
  release: Release;
  metricsPort: number;
}

async function scrape({ cluster, release, metricsPort }: Bench): Promise<Scrape> {
  const [api, own] = await Promise.all([
    getText(`${cluster.server}/metrics`, { ca: cluster.caPem, token: cluster.token }),
    getText(`http://${release.host}:${metricsPort}/metrics`),
  ]);
  return {
    admit: histograms(api, WEBHOOK_METRIC, 'name', (l) => l.type === 'admit' && l.operation === 'CREATE'),
    validate: histograms(api, WEBHOOK_METRIC, 'name', (l) => l.type !== 'admit' && l.operation === 'CREATE'),
    own: histograms(own, OWN_METRIC, 'endpoint'),
  };
}

const delta = (after: Map<string, Histogram>, before: Map<string, Histogram>) =>
  new Map([...after].map(([k, h]) => [k, minus(h, before.get(k))] as const).filter(([, h]) => h.count > 0));

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    if (await fn().catch((err: unknown) => ((last = err), false))) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Deletes every pod of a namespace (never scheduled: gone at once) and waits until none is listed. */
async function deletePods(cluster: Cluster, namespace: string): Promise<void> {
  await apiRequest(cluster, 'DELETE', `/api/v1/namespaces/${namespace}/pods`);
  await until(`the pods of ${namespace} to go`, 120_000, async () => {
    const r = await apiRequest(cluster, 'GET', `/api/v1/namespaces/${namespace}/pods?limit=1`);
    return ((r.body as { items?: unknown[] }).items ?? []).length === 0;
  });
}

/** The control plane, Istio's injector (classic sidecars), meshguard's release; every namespace's ServiceAccount. */
async function setUp(log: (line: string) => void): Promise<Bench> {
  e2eBinaries(log);
  const cluster = await startCluster({ istioCrds: false, waitForControllers: true });
  try {
    log(`control plane ready in ${(cluster.startupMs / 1000).toFixed(1)} s`);
    for (const { name, labels } of Object.values(NAMESPACE))
      await apiRequest(cluster, 'POST', '/api/v1/namespaces', { metadata: { name, labels } });
    await installIstioBase(cluster);
    // Classic sidecars: the trap meshguard's hold guardrail patches exists.
    const istiod = await installIstiod(cluster, '', { ENABLE_NATIVE_SIDECARS: 'false' });
    log(`istiod serving its injector at ${istiod.injectionUrl}`);
    const [metricsPort] = (await freePorts(1)) as [number];
    // istiod runs outside the cluster: meshguard is told the mesh runs classic sidecars, as the e2e test does.
    const release = await installRelease(
      cluster,
      MESHGUARD_NS,
      ['--set', 'config.mesh.nativeSidecars=disabled'],
      ['--metrics-port', String(metricsPort)],
    );
    log(`meshguard serving at ${release.host}:${release.served.port}, metrics on ${metricsPort}`);
    for (const { name } of Object.values(NAMESPACE))
      await until(`ServiceAccount ${name}/default`, 60_000, async () => {
        const r = await apiRequest(cluster, 'GET', `/api/v1/namespaces/${name}/serviceaccounts/default`);
        return r.status === 200;
      });
    return { cluster, release, metricsPort };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

const percentile = (sorted: readonly number[], q: number) =>
  sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);
const load1 = () => loadavg()[0] ?? NaN;

export async function runApiserver(opts: ApiserverOptions): Promise<ApiserverReport> {
  const { log } = opts;
  const loadStart = loadavg();
  const bench = await setUp(log);
  const { cluster, release } = bench;
  const kubectlCache = mkdtempSync(join(tmpdir(), 'meshguard-kubectl-'));
  try {
    // Each set-up and pod kind once, checked as stored; Istio's injector answers once istiod has
    // read its configuration, so the first ones are retried.
    let serial = 0;
    for (const setup of SETUPS)
      for (const kind of POD_KINDS)
        await until(`a ${kind} pod as expected in ${setup}`, 120_000, async () => {
          const { first } = await createAll(cluster, batch(setup, kind, `check-${++serial}`, 1));
          const problem = check(first, setup, kind);
          if (problem) log(`${setup}/${kind}: ${problem}; again`);
          return problem === null;
        });
    log('every set-up answers as expected; warming up');
    for (const setup of SETUPS) {
      await createAll(cluster, batch(setup, 'patched', 'warm', Math.min(opts.pods, 100)), { concurrency: 10 });
      await deletePods(cluster, NAMESPACE[setup].name);
    }

    const cells = new Map<string, Cell>();
    const batches: number[] = [];
    for (let round = 1; round <= opts.rounds; round++)
      for (const clients of opts.concurrency)
        for (const kind of POD_KINDS)
          for (let i = 0; i < SETUPS.length; i++) {
            // Rotated, so no set-up always runs first or after the same neighbour.
            const setup = SETUPS[(i + round - 1) % SETUPS.length] as Setup;
            const before = await scrape(bench);
            const created = await createAll(cluster, batch(setup, kind, `r${round}c${clients}`, opts.pods), {
              concurrency: clients,
              existingOk: false,
            });
            const after = await scrape(bench);
            const problem = check(created.first, setup, kind);
            if (problem) throw new Error(`${setup}/${kind}: ${problem}`);
            batches.push(load1());
            const key = `${setup}/${clients}/${kind}`;
            const cell = cells.get(key) ?? {
              setup,
              clients,
              kind,
              latencies: [],
              seconds: 0,
              roundP50: [],
              webhooks: new Map<string, Histogram>(),
              own: undefined,
            };
            cells.set(key, cell);
            cell.latencies.push(...created.latencies);
            cell.seconds += created.seconds;
            cell.roundP50.push(
              percentile(
                [...created.latencies].sort((a, b) => a - b),
                0.5,
              ),
            );
            for (const [name, h] of delta(after.admit, before.admit))
              cell.webhooks.set(name, add(cell.webhooks.get(name), h));
            const own = delta(after.own, before.own).get('mutate');
            if (own) cell.own = add(cell.own, own);
            log(
              `round ${round} ${String(clients).padStart(2)} clients ${kind.padEnd(7)} ${setup.padEnd(9)} ${fmt(opts.pods / created.seconds, 0).padStart(5)} pods/s  p50 ${fmt(cell.roundP50.at(-1) ?? NaN, 1)} ms  load ${fmt(load1(), 1)}`,
            );
            await deletePods(cluster, NAMESPACE[setup].name);
          }

    const applies: ApiserverReport['applies'] = [];
    if (opts.applies > 0) {
      for (const setup of ['none', 'meshguard'] as const)
        applies.push({ setup, ms: [], warnings: [], validate: undefined });
      // kubectl's discovery cache warmed once, outside the figures.
      await kubectlApply(bench, kubectlCache, deployment('warm', NAMESPACE.none.name));
      for (let round = 1; round <= opts.rounds; round++)
        for (let i = 0; i < applies.length; i++) {
          const a = applies[(i + round - 1) % applies.length] as (typeof applies)[number];
          const before = await scrape(bench);
          for (let n = 0; n < opts.applies; n++) {
            const r = await kubectlApply(bench, kubectlCache, deployment(`web-${round}-${n}`, NAMESPACE[a.setup].name));
            a.ms.push(r.ms);
            if (a.warnings.length === 0) a.warnings.push(...r.warnings);
          }
          const after = await scrape(bench);
          const v = delta(after.validate, before.validate).get('validate.meshguard.io');
          if (v) a.validate = add(a.validate, v);
        }
    }
    return {
      options: { pods: opts.pods, rounds: opts.rounds, concurrency: opts.concurrency, applies: opts.applies },
      cells: [...cells.values()],
      applies,
      load: { start: loadStart, end: loadavg(), batches },
      versions: `kube-apiserver ${KUBE_VERSION}, istiod ${ISTIO_VERSION}, Node ${process.version}`,
    };
  } finally {
    rmSync(kubectlCache, { recursive: true, force: true });
    release.served.proc.kill('SIGTERM');
    await cluster.stop();
  }
}

function batch(setup: Setup, kind: PodKind, prefix: string, n: number): unknown[] {
  const namespace = NAMESPACE[setup].name;
  return Array.from({ length: n }, (_, i) => {
    const p = pod(`${prefix}-${kind}-${i}`, kind) as { metadata: Record<string, unknown> };
    return { ...p, metadata: { ...p.metadata, namespace } };
  });
}

/** A Deployment whose pods will get meshguard's hold patch: `kubectl apply` shows that warning. */
function deployment(name: string, namespace: string): unknown {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    // No replicas: the apply is measured, not the pods the controllers would create after it.
    spec: {
      replicas: 0,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { serviceAccountName: 'default', containers: [{ name: 'app', image: 'example.invalid/app:1' }] },
      },
    },
  };
}

/** `kubectl apply -f -` as a user runs it; wall time and the Warning: lines it printed. */
function kubectlApply(
  { cluster }: Bench,
  cacheDir: string,
  object: unknown,
): Promise<{ ms: number; warnings: string[] }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(
      join(e2eBinDir(), 'kubectl'),
      ['--kubeconfig', cluster.kubeconfigPath, '--cache-dir', cacheDir, 'apply', '-f', '-'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let err = '';
    p.stdout.resume();
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`kubectl apply failed (${code}): ${err}`));
      resolve({ ms, warnings: err.split('\n').filter((l) => l.startsWith('Warning:')) });
    });
    p.stdin.end(JSON.stringify(object));
  });
}

const ms = (seconds: number) => fmt(seconds * 1000, 1);
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const spread = (xs: readonly number[]) => (xs.length > 1 ? Math.max(...xs) - Math.min(...xs) : NaN);

/** The webhook histograms of a cell: meshguard's and Istio's, by the names their configurations give them. */
function hooks(cell: Cell): { meshguard?: Histogram; istio?: Histogram } {
  let istio: Histogram | undefined;
  for (const [name, h] of cell.webhooks) if (name.includes('sidecar-injector.istio.io')) istio = add(istio, h);
  return { meshguard: cell.webhooks.get('mutate.meshguard.io'), istio };
}

export function formatApiserver(r: ApiserverReport): string {
  const out: string[] = [
    `Pod creation through the API server (${r.versions}): ${r.options.pods} pods per batch, ${r.options.rounds} round${r.options.rounds === 1 ? '' : 's'}, set-ups interleaved; load average ${r.load.start.map((x) => fmt(x)).join(' ')} at start, ${r.load.end.map((x) => fmt(x)).join(' ')} at the end, 1-minute load ${fmt(Math.min(...r.load.batches), 1)}-${fmt(Math.max(...r.load.batches), 1)} over the batches. Latency: client-side, from sending the create to its answer. Webhook times: mean and p50 ~ p99 from the histograms (the API server's buckets are 5, 25, 100 ms…: its quantiles are interpolated within them; its mean is exact).`,
  ];
  for (const clients of r.options.concurrency)
    for (const kind of POD_KINDS) {
      const cells = SETUPS.map((s) => r.cells.find((c) => c.setup === s && c.clients === clients && c.kind === kind));
      const none = cells[0];
      const base = none ? percentile(sorted(none.latencies), 0.5) : NaN;
      const rows = cells.flatMap((c) => {
        if (!c) return [];
        const l = sorted(c.latencies);
        const { meshguard, istio } = hooks(c);
        const hook = (h: Histogram | undefined) =>
          h ? `${ms(h.sum / h.count)} (${ms(quantile(h, 0.5))} ~ ${ms(quantile(h, 0.99))})` : '';
        return [
          [
            c.setup,
            String(l.length),
            fmt(l.length / c.seconds, 0),
            fmt(percentile(l, 0.5), 1),
            fmt(percentile(l, 0.95), 1),
            fmt(percentile(l, 0.99), 1),
            c === none ? `±${fmt(spread(c.roundP50) / 2, 1)}` : `${fmt(percentile(l, 0.5) - base, 1)}`,
            hook(istio),
            // Calls per pod: with reinvocationPolicy IfNeeded the API server called meshguard again after Istio's injector.
            meshguard ? `${hook(meshguard)}, ${fmt(meshguard.count / l.length, 2)} calls per pod` : '',
            c.own ? `${fmt((c.own.sum / c.own.count) * 1e6, 0)} µs (p99 ${fmt(quantile(c.own, 0.99) * 1e6, 0)})` : '',
          ],
        ];
      });
      out.push(
        '',
        `${clients} concurrent clients, pods ${kind === 'patched' ? 'meshguard patches (hold)' : 'meshguard leaves alone'}:`,
        '',
        table(
          [
            'set-up',
            'pods',
            'pods/s',
            'p50 ms',
            'p95 ms',
            'p99 ms',
            'p50 vs none (none: ± half its round-to-round range)',
            'API server: Istio webhook ms',
            'API server: meshguard webhook ms',
            'meshguard /mutate (own histogram)',
          ],
          rows,
        ),
      );
    }
  if (r.applies.length > 0) {
    out.push(
      '',
      `kubectl apply of a Deployment (a new one each time, replicas 0), ${r.options.applies} per set-up and round, wall time of the kubectl process:`,
      '',
      table(
        [
          'set-up',
          'applies',
          'p50 ms',
          'p95 ms',
          'API server: meshguard /validate webhook ms',
          'warnings kubectl printed',
        ],
        r.applies.map((a) => {
          const l = sorted(a.ms);
          return [
            a.setup,
            String(l.length),
            fmt(percentile(l, 0.5), 0),
            fmt(percentile(l, 0.95), 0),
            a.validate ? `${ms(a.validate.sum / a.validate.count)} mean` : '',
            a.warnings.join(' / ') || '(none)',
          ];
        }),
      ),
    );
  }
  out.push('', ...goals(r));
  return out.join('\n');
}

/** The issue's goals for pod creation, with what this run measured. */
function goals(r: ApiserverReport): string[] {
  const cell = (s: Setup, clients: number) =>
    r.cells.filter((c) => c.setup === s && c.clients === clients).flatMap((c) => c.latencies);
  const lines: string[] = [];
  const [low, high] = [Math.min(...r.options.concurrency), Math.max(...r.options.concurrency)];
  const p = (s: Setup, c: number, q: number) => percentile(sorted(cell(s, c)), q);
  const noise = median(
    r.cells.filter((c) => c.setup === 'none' && c.clients === low).map((c) => spread(c.roundP50) / 2),
  );
  const added = p('meshguard', low, 0.5) - p('istio', low, 0.5);
  lines.push(
    `Goal: meshguard adds no more than the API server's run-to-run noise to p50 at ${low} clients: adds ${fmt(added, 1)} ms (meshguard+Istio − Istio), noise ±${fmt(noise, 1)} ms (half the range of the none set-up's per-round p50) — ${Number.isFinite(noise) ? (added <= noise ? 'met' : 'MISSED') : 'needs 2+ rounds'}.`,
  );
  const mg = p('meshguard', high, 0.99) - p('istio', high, 0.99);
  const istio = p('istio', high, 0.99) - p('none', high, 0.99);
  lines.push(
    `Goal: meshguard adds less than Istio's injector at p99 at ${high} clients: meshguard adds ${fmt(mg, 1)} ms, Istio's injector ${fmt(istio, 1)} ms — ${mg < istio ? 'met' : 'MISSED'}.`,
  );
  return lines;
}
