// The e2e control plane for the benchmarks (test/e2e/cluster.ts: kube-apiserver, etcd and, when
// asked, kube-controller-manager on loopback), with the objects a benchmark needs written to it
// through the API server. The binaries come from test/e2e/provision.sh's cache.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { packageRoot } from '../src/paths.js';
import { startCluster, type Cluster, type ClusterOptions } from '../test/e2e/cluster.js';
import { installIstioBase } from '../test/e2e/istiod.js';
import type { Config } from '../src/config/types.js';
import type { LiveSetup } from './servers.js';

/**
 * The directory of the e2e binaries: MESHGUARD_E2E_BIN, else what provision.sh prints (a second
 * when they are cached; a cold build takes about 30 CPU-minutes, so it is said first).
 */
export function e2eBinaries(log: (line: string) => void): string {
  const given = process.env.MESHGUARD_E2E_BIN;
  if (given) return given;
  log('e2e binaries: test/e2e/provision.sh (cached: a second; otherwise it builds them from Go, ~30 CPU-minutes)');
  const r = spawnSync('bash', [join(packageRoot, 'test/e2e/provision.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const dir = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !dir) throw new Error('test/e2e/provision.sh failed: no e2e binaries for the live targets');
  process.env.MESHGUARD_E2E_BIN = dir;
  return dir;
}

/** The API path of the collection an object is created in (the kinds the benchmarks write). */
export function collectionPath(obj: { apiVersion: string; kind: string; metadata: { namespace?: string } }): string {
  const lower = obj.kind.toLowerCase();
  const resource = lower.endsWith('y') ? `${lower.slice(0, -1)}ies` : lower.endsWith('s') ? `${lower}es` : `${lower}s`;
  const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  return obj.metadata.namespace ? `${base}/namespaces/${obj.metadata.namespace}/${resource}` : `${base}/${resource}`;
}

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

export interface Created {
  seconds: number;
  /** Milliseconds of each create, in the order they finished. */
  latencies: number[];
  /** The first object as the API server stored it (after admission). */
  first: unknown;
}

/**
 * Creates objects through the API server, `concurrency` clients each with a keep-alive connection
 * of its own; an object that exists already is fine only when `existingOk`. Any other answer but a
 * 201 fails the whole run.
 */
export async function createAll(
  cluster: Pick<Cluster, 'server' | 'caPem' | 'token'>,
  objects: Iterable<unknown>,
  { concurrency = 16, existingOk = true }: { concurrency?: number; existingOk?: boolean } = {},
): Promise<Created> {
  const started = performance.now();
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca: cluster.caPem });
  const it = objects[Symbol.iterator]();
  const latencies: number[] = [];
  let first: string | undefined;
  const one = (obj: Obj) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify(obj);
      const t0 = performance.now();
      const req = request(
        new URL(collectionPath(obj), cluster.server),
        {
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${cluster.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status < 300 || (existingOk && status === 409)) {
              latencies.push(performance.now() - t0);
              first ??= text;
              resolve();
            } else reject(new Error(`create ${obj.kind} ${obj.metadata.name}: ${status} ${text.slice(0, 300)}`));
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const worker = async () => {
    for (let n = it.next(); !n.done; n = it.next()) await one(n.value as Obj);
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return {
    seconds: (performance.now() - started) / 1000,
    latencies,
    first: first === undefined ? undefined : (JSON.parse(first) as unknown),
  };
}

export interface Stack {
  cluster: Cluster;
  /** For the live target: the API server and the configuration `meshguard serve` is given. */
  live: LiveSetup;
  stop(): Promise<void>;
}

/**
 * A control plane with `objects` written to it, and `config` in a file for `meshguard serve`.
 * Minimal Istio CRDs unless `istioBase` installs Istio's own (its base chart, with Helm);
 * `cluster` passes options to the control plane (its controllers, API server flags).
 */
export async function startStack(opts: {
  objects: Iterable<unknown>;
  config: Config;
  istioBase?: boolean;
  cluster?: Pick<ClusterOptions, 'waitForControllers' | 'controllers' | 'apiserverArgs'>;
  log: (line: string) => void;
}): Promise<Stack> {
  e2eBinaries(opts.log);
  const cluster = await startCluster({
    istioCrds: !opts.istioBase,
    waitForControllers: false,
    ...opts.cluster,
  });
  try {
    opts.log(`e2e control plane ready in ${(cluster.startupMs / 1000).toFixed(1)} s (${cluster.server})`);
    if (opts.istioBase) await installIstioBase(cluster);
    await createAll(cluster, opts.objects);
    const configFile = join(cluster.logDir, '..', 'meshguard-bench.yaml');
    // JSON is YAML; the configuration as parsed, defaults filled: serve reads the same one.
    writeFileSync(configFile, JSON.stringify(opts.config));
    return { cluster, live: { kubeconfig: cluster.kubeconfigPath, configFile }, stop: () => cluster.stop() };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
