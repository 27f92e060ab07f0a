// In-process micro-benchmarks: policies and the engine on the recorded reviews, the ExternalName
// collision lookup against growing clusters, the cluster view's memory, and start-to-ready.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeReview } from '../src/admission/decode.js';
import { answerJson, responseOf } from '../src/admission/respond.js';
import type { AdmissionRequest, KubeObject } from '../src/admission/types.js';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { serviceRecord } from '../src/cluster/records.js';
import type { ClusterView } from '../src/cluster/view.js';
import type { Config } from '../src/config/types.js';
import { evaluate } from '../src/engine/evaluate.js';
import { Registry } from '../src/engine/registry.js';
import { compileScope } from '../src/config/scope.js';
import type { Policy, Stage } from '../src/engine/types.js';
import { verdictOf } from '../src/engine/verdict.js';
import { packageRoot } from '../src/paths.js';
import { policies } from '../src/policies/index.js';
import { nothingDiscovered, resolveProfile } from '../src/mesh/profile.js';
import { sidecarOf } from '../src/mesh/injection.js';
import {
  benchCluster,
  benchObjects,
  fmt,
  freePort,
  median,
  REVIEWS,
  review,
  reviewText,
  servingPair,
  table,
  benchConfig,
} from './common.js';

export interface MicroOptions {
  /** Timed samples per benchmark; the median is reported. */
  samples: number;
  /** Minimum duration of one sample, in ms (the batch size is calibrated to it). */
  sampleMs: number;
  /** Sizes of the cluster for the ExternalName lookup. */
  externalNameSizes: readonly number[];
  /** Services added to the pod's namespace for the pod review's timing (none select the pod). */
  namespaceSizes: readonly number[];
  memory: { services: number; namespaces: number };
  startRuns: number;
  log?: (line: string) => void;
}

export interface Timing {
  name: string;
  medianUs: number;
  minUs: number;
  samples: number;
  perSample: number;
}

/** Median µs per call of fn, over `samples` batches each lasting at least `sampleMs`. */
export function time(name: string, fn: () => unknown, opts: { samples: number; sampleMs: number }): Timing {
  return timeInterleaved([{ name, fn }], opts)[0] as Timing;
}

/**
 * Median µs per call of each function, over `samples` batches each lasting at least `sampleMs`
 * (after a warm-up that lets the JIT settle); the functions' samples alternate, one batch size
 * for all.
 */
export function timeInterleaved(
  fns: readonly { name: string; fn: () => unknown }[],
  opts: { samples: number; sampleMs: number },
): Timing[] {
  let sink: unknown;
  for (const { fn } of fns) {
    const warmEnd = performance.now() + Math.max(20, opts.sampleMs * 2);
    while (performance.now() < warmEnd) sink = fn();
  }
  const first = fns[0]?.fn ?? (() => undefined);
  let batch = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) sink = first();
    const took = performance.now() - t0;
    if (took >= opts.sampleMs || batch >= 1 << 26) break;
    batch = took <= 0 ? batch * 10 : Math.max(batch * 2, Math.ceil((batch * opts.sampleMs) / took));
  }
  const per = fns.map(() => [] as number[]);
  for (let s = 0; s < opts.samples; s++) {
    fns.forEach(({ fn }, k) => {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) sink = fn();
      per[k]?.push(((performance.now() - t0) * 1000) / batch);
    });
  }
  if (sink === Symbol.for('never')) console.log(sink);
  return fns.map(({ name }, k) => ({
    name,
    medianUs: median(per[k] ?? []),
    minUs: Math.min(...(per[k] ?? [])),
    samples: opts.samples,
    perSample: batch,
  }));
}

interface Ctx {
  config: Config;
  cluster: ClusterView;
}

function policyRun(policy: Policy, req: AdmissionRequest, ctx: Ctx): () => unknown {
  const object = req.object as KubeObject;
  const namespace = req.namespace ?? '';
  const mesh = resolveProfile(ctx.config.mesh, nothingDiscovered);
  // The engine decides injection once per review; a policy alone is handed that answer.
  const sidecar = sidecarOf(object, namespace, ctx.cluster, mesh);
  return () =>
    policy.evaluate({
      object,
      oldObject: req.oldObject ?? null,
      namespace,
      operation: req.operation,
      options: ctx.config.policies[policy.id],
      config: ctx.config,
      cluster: ctx.cluster,
      mesh,
      sidecar,
    });
}

/** An engine run as the server does one: evaluate, then the verdict. */
function engineRun(req: AdmissionRequest, stage: Stage, config: Config, cluster: ClusterView): () => unknown {
  const registry = new Registry(policies);
  const scope = compileScope(config);
  // Resolved once, as the server resolves it once per configuration or discovery change.
  const mesh = resolveProfile(config.mesh, nothingDiscovered);
  return () => verdictOf(evaluate({ request: req, stage }, { registry, scope, cluster, mesh }), config);
}

/**
 * A cluster of n Services: ClusterIP Services across namespaces and, one in twenty, ExternalName
 * Services each on a port of its own (a cluster without collisions), plus mysql-a on 3306, the
 * one mysql-b really collides with. The lookup should cost what collides, not what the cluster holds.
 */
export function clusterOfServices(n: number): MemoryClusterView {
  const view = MemoryClusterView.fromObjects(benchObjects());
  for (let i = 0; view.size.services < n; i++) {
    const external = i % 20 === 0;
    const svc = serviceRecord({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `svc-${i}`, namespace: `ns-${i % 1000}` },
      spec: external
        ? {
            type: 'ExternalName',
            externalName: `db-${i}.example.com`,
            ports: [{ name: 'tcp', port: 10_000 + i / 20, protocol: 'TCP' }],
          }
        : {
            type: 'ClusterIP',
            selector: { app: `app-${i}` },
            ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
          },
    });
    if (svc) view.setService(svc);
  }
  return view;
}

export interface MemoryResult {
  services: number;
  namespaces: number;
  heapPerService: number;
  heapPerNamespace: number;
  rssPerService: number;
  heapTotalMiB: number;
}

/** Runs bench/memory.js in a fresh process with --expose-gc. */
export function memoryChild(services: number, namespaces: number): Promise<MemoryResult> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const fromSource = import.meta.url.endsWith('.ts');
  const args = [
    '--expose-gc',
    ...(fromSource ? ['--import', 'tsx'] : []),
    join(here, fromSource ? 'memory.ts' : 'memory.js'),
    String(services),
    String(namespaces),
  ];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as MemoryResult) : reject(new Error(`memory benchmark exited with ${code}`)),
    );
  });
}

function readyz(port: number, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', ca, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export type Starter = 'meshguard' | 'fastify' | 'node';

/**
 * ms from spawning a server with certificate files to its first /readyz 200, for each starter,
 * interleaved: meshguard is `serve --cluster off`; fastify (a bare fastify HTTPS server) and node
 * (node:https alone) show what the stack itself costs on this machine at the same moment.
 */
export async function startToReady(
  runs: number,
  starters: readonly Starter[] = ['meshguard', 'fastify', 'node'],
): Promise<Record<Starter, number[]>> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const fromSource = import.meta.url.endsWith('.ts');
  const loader = fromSource ? ['--import', 'tsx'] : [];
  const commands: Record<Starter, string[]> = {
    meshguard: [
      ...loader,
      join(packageRoot, fromSource ? 'src/cli.ts' : 'dist/src/cli.js'),
      'serve',
      '--cluster',
      'off',
      '--host',
      '127.0.0.1',
      '--metrics-port',
      '0',
      '--shutdown-delay',
      '0',
    ],
    fastify: [...loader, join(here, fromSource ? 'start-bare.ts' : 'start-bare.js'), 'fastify'],
    node: [...loader, join(here, fromSource ? 'start-bare.ts' : 'start-bare.js'), 'node'],
  };
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-start-'));
  try {
    const ca = await servingPair(dir);
    const out: Record<Starter, number[]> = { meshguard: [], fastify: [], node: [] };
    for (let i = 0; i < runs; i++) {
      for (const starter of starters) {
        const port = await freePort();
        const t0 = performance.now();
        const proc = spawn(
          process.execPath,
          [
            ...commands[starter],
            '--port',
            String(port),
            '--tls-cert',
            join(dir, 'tls.crt'),
            '--tls-key',
            join(dir, 'tls.key'),
          ],
          { stdio: 'ignore' },
        );
        const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
        let ms = NaN;
        while (performance.now() - t0 < 30_000 && proc.exitCode === null) {
          if ((await readyz(port, ca)) === 200) {
            ms = performance.now() - t0;
            break;
          }
          await new Promise((r) => setTimeout(r, 5));
        }
        proc.kill('SIGTERM');
        const code = await exited;
        if (!Number.isFinite(ms)) throw new Error(`${starter} never became ready (exit ${code})`);
        out[starter].push(ms);
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Collects garbage now when node runs with --expose-gc (npm run bench does). */
function settle(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; gc && i < 3; i++) gc();
}

export interface MicroReport {
  policies: Timing[];
  engine: Timing[];
  edge: Timing[];
  externalName: { services: number; medianUs: number }[];
  externalNameRatio: number;
  /** The engine on the pod review, its namespace holding more Services. */
  namespace: { services: number; medianUs: number }[];
  memory: MemoryResult;
  startMs: Record<Starter, number[]>;
  startMedianMs: number;
}

export async function runMicro(opts: MicroOptions): Promise<MicroReport> {
  const log = opts.log ?? (() => {});
  // First, while this process is still small: the servers start beside it.
  log(`start to ready: ${opts.startRuns} runs each of meshguard, bare fastify and node:https, interleaved`);
  const startMs = await startToReady(opts.startRuns);
  const { config } = await benchConfig();
  const cluster = benchCluster();
  const ctx = { config, cluster };
  const t = (name: string, fn: () => unknown) => {
    const r = time(name, fn, opts);
    log(`${name}: ${fmt(r.medianUs, 3)} µs`);
    return r;
  };
  const pod = review(REVIEWS.pod).request;
  const jobPod = review(REVIEWS.jobPod).request;
  const dr = review(REVIEWS.destinationRule).request;
  const svc = review(REVIEWS.service).request;
  const byId = new Map(policies.map((p) => [p.id, p]));
  const p = (id: string) => byId.get(id as Policy['id']) as Policy;

  const policyTimings = [
    t(
      'hold-application-until-proxy-starts (pod review)',
      policyRun(p('hold-application-until-proxy-starts'), pod, ctx),
    ),
    t('probe-port-exclusion (pod review)', policyRun(p('probe-port-exclusion'), pod, ctx)),
    t('job-sidecar-quit (pod review: not a Job, skip)', policyRun(p('job-sidecar-quit'), pod, ctx)),
    t('job-sidecar-quit (Job pod review: wraps)', policyRun(p('job-sidecar-quit'), jobPod, ctx)),
    t('destinationrule-placement (DR review)', policyRun(p('destinationrule-placement'), dr, ctx)),
    t('externalname-tcp-collision (Service review)', policyRun(p('externalname-tcp-collision'), svc, ctx)),
  ];
  const engineTimings = [
    t('engine: pod review at /mutate (evaluate + verdictOf)', engineRun(pod, 'mutate', config, cluster)),
    t('engine: DR review at /validate (evaluate + verdictOf)', engineRun(dr, 'validate', config, cluster)),
  ];
  const podText = reviewText(REVIEWS.pod);
  const parsed: unknown = JSON.parse(podText);
  const verdict = verdictOf(
    evaluate(
      { request: pod, stage: 'mutate' },
      {
        registry: new Registry(policies),
        scope: compileScope(config),
        cluster,
        mesh: resolveProfile(config.mesh, nothingDiscovered),
      },
    ),
    config,
  );
  const edgeTimings = [
    t('JSON.parse of the pod review (context)', () => JSON.parse(podText)),
    t('decodeReview of the pod review', () => decodeReview(parsed)),
    t('answerJson of the pod answer', () =>
      answerJson({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: responseOf(pod.uid, verdict),
      }),
    ),
  ];

  // The views are built first, the heap settled (the lookups happen long after the watches filled
  // the view, not while the garbage of building 100 000 records is collected), and the sizes are
  // timed in alternation, so drift on a busy machine falls on all of them alike.
  const istio120 = { ...config, mesh: { ...config.mesh, istioVersion: '1.20' } };
  const sized = opts.externalNameSizes.map((n) => {
    const view = clusterOfServices(n);
    // Istio 1.20, where two ExternalName Services on one TCP port collide (aliases from 1.21).
    const run = policyRun(p('externalname-tcp-collision'), svc, { config: istio120, cluster: view });
    const outcome = run() as { result: string };
    if (outcome.result !== 'fail')
      throw new Error(`externalname check at ${n}: expected the collision with mysql-a, got ${outcome.result}`);
    return { name: `externalname-tcp-collision with ${n.toLocaleString('en-US')} Services`, fn: run, services: n };
  });
  settle();
  const ext = timeInterleaved(sized, opts).map((r, i) => {
    log(`${r.name}: ${fmt(r.medianUs, 3)} µs`);
    return { services: sized[i]?.services ?? 0, medianUs: r.medianUs };
  });
  const first = ext[0]?.medianUs ?? NaN;
  const last = ext[ext.length - 1]?.medianUs ?? NaN;

  // The pod's own namespace: probe-port-exclusion looks for the Services that send it traffic,
  // which the view finds by label, whatever else the namespace holds.
  const crowded = opts.namespaceSizes.map((n) => {
    const view = MemoryClusterView.fromObjects(benchObjects());
    for (let i = 0; i < n; i++) {
      const svc = serviceRecord({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `neighbour-${i}`, namespace: pod.namespace },
        spec: { selector: { app: `neighbour-${i}` }, ports: [{ name: 'http', port: 80, targetPort: 8087 }] },
      });
      if (svc) view.setService(svc);
    }
    return {
      name: `engine: pod review, ${n.toLocaleString('en-US')} more Services in its namespace`,
      fn: engineRun(pod, 'mutate', config, view),
      services: n,
    };
  });
  settle();
  const namespace = timeInterleaved(crowded, opts).map((r, i) => {
    log(`${r.name}: ${fmt(r.medianUs, 3)} µs`);
    return { services: crowded[i]?.services ?? 0, medianUs: r.medianUs };
  });

  log(`memory: ${opts.memory.services} Services, ${opts.memory.namespaces} Namespaces (fresh process, --expose-gc)`);
  const memory = await memoryChild(opts.memory.services, opts.memory.namespaces);
  return {
    policies: policyTimings,
    engine: engineTimings,
    edge: edgeTimings,
    externalName: ext,
    externalNameRatio: last / first,
    namespace,
    memory,
    startMs,
    startMedianMs: median(startMs.meshguard),
  };
}

export function formatMicro(r: MicroReport): string {
  const row = (x: Timing) => [x.name, fmt(x.medianUs, 3), fmt(x.minUs, 3)];
  const m = r.memory;
  return [
    'Micro-benchmarks (in process, median of samples, µs per call):',
    '',
    table(['what', 'median µs', 'min µs'], [...r.policies, ...r.engine, ...r.edge].map(row)),
    '',
    table(
      ['ExternalName check, Services in view', 'median µs'],
      r.externalName.map((x) => [x.services.toLocaleString('en-US'), fmt(x.medianUs, 3)]),
    ),
    `ratio largest ÷ smallest: ${fmt(r.externalNameRatio)}×`,
    '',
    table(
      ["pod review, more Services in the pod's namespace", 'median µs'],
      r.namespace.map((x) => [x.services.toLocaleString('en-US'), fmt(x.medianUs, 3)]),
    ),
    '',
    `Cluster view with ${m.services.toLocaleString('en-US')} Services and ${m.namespaces.toLocaleString('en-US')} Namespaces: ` +
      `${fmt(m.heapPerService, 0)} B heap per Service, ${fmt(m.heapPerNamespace, 0)} B per Namespace, ` +
      `RSS +${fmt(m.rssPerService, 0)} B per Service, heap in use ${fmt(m.heapTotalMiB, 1)} MiB`,
    '',
    table(
      ['start to /readyz 200 (spawn, certificate files)', 'median ms', 'runs ms'],
      (['meshguard', 'fastify', 'node'] as const).map((k) => [
        { meshguard: 'meshguard serve --cluster off', fastify: 'bare fastify HTTPS (limit)', node: 'node:https alone' }[
          k
        ],
        fmt(median(r.startMs[k]), 0),
        r.startMs[k].map((x) => fmt(x, 0)).join(' '),
      ]),
    ),
  ].join('\n');
}
