// Sends fuzz cases: in process through app.inject, or to `meshguard serve` over HTTPS.
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { Worker } from 'node:worker_threads';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { MemoryClusterView } from '../../src/cluster/memory.js';
import { ConfigStore } from '../../src/config/store.js';
import { Registry } from '../../src/engine/registry.js';
import { policies } from '../../src/policies/index.js';
import { buildApp, DEFAULT_BODY_LIMIT } from '../../src/server/app.js';
import { createMetrics } from '../../src/server/metrics.js';
import { configOf } from '../support.js';
import type { Answer, FuzzCase } from './cases.js';

/** The app as `serve` builds it, with a cluster view where the fuzzed pods get injected. */
export function fuzzApp(): FastifyInstance {
  const cluster = MemoryClusterView.fromObjects([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'batch', labels: { 'istio.io/rev': '1-24' } } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'db', namespace: 'shop' },
      spec: { type: 'ExternalName', externalName: 'other.example.com', ports: [{ port: 3306 }] },
    },
  ]);
  // Globs with several stars: their regexes backtrack on long names (see config/scope.ts).
  const config = configOf({
    excludeNamespaces: ['kube-system', 'kube-public', '*-*-*-tmp'],
    overrides: [{ namespaces: ['team-*-*', 'legacy'], mode: 'warn' }],
    policies: { 'externalname-tcp-collision': { mode: 'enforce' } },
  });
  const store = new ConfigStore(config, 'fuzz', 'meshguard');
  return buildApp({
    store,
    registry: new Registry(policies),
    cluster,
    metrics: createMetrics(),
    logger: pino({ level: 'silent' }),
  });
}

const headers = (c: FuzzCase) => ({
  ...(c.contentType !== undefined && { 'content-type': c.contentType }),
  'content-length': String(c.body.length),
});

export async function injectCase(app: FastifyInstance, c: FuzzCase): Promise<Answer | Error> {
  try {
    const res = await app.inject({ method: 'POST', url: c.path, headers: headers(c), payload: c.body });
    return { status: res.statusCode, body: res.body };
  } catch (err) {
    return err as Error;
  }
}

/**
 * One request on a new connection (`connection: close`, as Node's client asks without an agent);
 * an Error when there is no answer within `timeoutMs`. A body within the limit is sent at once, as
 * the API server sends it: a refusal must reach a client still writing (the server reads the body
 * first). A body over the limit is sent only if no answer comes to its headers: the server answers
 * 413 at once without reading it and closes, and a client still writing would see EPIPE instead.
 */
export function httpsCase(port: number, cas: string[], c: FuzzCase, timeoutMs = 10_000): Promise<Answer | Error> {
  return new Promise((resolve) => {
    let answered = false;
    const req = request(
      { host: '127.0.0.1', port, path: c.path, method: 'POST', ca: cas, agent: false, headers: headers(c) },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => resolve(err));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms (hang)`)));
    req.on('error', (err) => resolve(err));
    if (c.body.length <= DEFAULT_BODY_LIMIT) {
      req.end(c.body);
    } else {
      req.flushHeaders();
      setTimeout(() => answered || req.end(c.body), 2000).unref();
    }
  });
}

/** The AdmissionReviews recorded from a real API server (test/fixtures/reviews). */
export function recordedReviews(): { name: string; review: Record<string, unknown> }[] {
  const dir = new URL('../fixtures/reviews/', import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({
      name: f.replace(/\.json$/, ''),
      review: JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Record<string, unknown>,
    }));
}

/** Runs `work` on every item with at most `concurrency` at once. */
export async function pool<T>(
  items: Iterable<T>,
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const it = items[Symbol.iterator]();
  const worker = async () => {
    for (let next = it.next(); !next.done; next = it.next()) await work(next.value);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * Runs cases through app.inject in a worker thread: a case that blocks the event loop longer than
 * `timeoutMs` comes back as an Error (a hang), and the worker is replaced.
 */
export class InjectRunner {
  private worker: Worker | undefined;

  constructor(private readonly timeoutMs = 10_000) {}

  private start(): Worker {
    if (!this.worker) {
      // Node 20 does not apply the main thread's --import tsx to a worker's entry: register it first.
      const entry = new URL('./inject-worker.ts', import.meta.url).href;
      const code = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
      this.worker = new Worker(code, { eval: true });
    }
    return this.worker;
  }

  run(c: FuzzCase): Promise<{ answer: Answer | Error; ms: number }> {
    const worker = this.start();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        worker.off('message', onMessage);
        this.worker = undefined;
        void worker.terminate();
        resolve({ answer: new Error(`no answer in ${this.timeoutMs} ms (hang)`), ms: this.timeoutMs });
      }, this.timeoutMs);
      const onMessage = (m: { answer?: Answer; error?: string; ms: number }) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        resolve({ answer: m.answer ?? new Error(m.error ?? 'no answer'), ms: m.ms });
      };
      worker.on('message', onMessage);
      worker.postMessage(c);
    });
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}
