// What every part of the benchmark shares: the recorded reviews, the cluster they assume, stats.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { AdmissionReview } from '../src/admission/types.js';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { packageRoot } from '../src/paths.js';
import { devCertificate } from '../src/tls/serving.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';

export const REVIEWS = {
  pod: 'pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json',
  destinationRule: 'destinationrule-create-myservice.validate.json',
  service: 'service-create-mysql-b.validate.json',
  jobPod: 'pod-create-report-job.mutate.json',
} as const;

/** The recorded review's text, byte for byte as the API server sent it. */
export function reviewText(file: string): string {
  return readFileSync(join(packageRoot, 'test', 'fixtures', 'reviews', file), 'utf8');
}

export function review(file: string): AdmissionReview {
  return JSON.parse(reviewText(file)) as AdmissionReview;
}

/**
 * The cluster the recorded reviews come from, as the watches would see it: `shop` labelled for
 * injection, a Service sending traffic to the nginx pods' `http` port (so the probe port 8087 is
 * a dedicated health port), the ExternalName Service mysql-b collides with, and a few neighbours.
 */
/**
 * The embedded defaults on the FAQs' mesh (Istio 1.11: classic sidecars, tcpSocket probes not
 * rewritten, ExternalName listeners): every guardrail's trap exists there, so the reviews do the
 * work the benchmarks have always measured — two patches per pod review, a collision per
 * ExternalName Service. On today's Istio most of that work is a skip.
 */
export async function benchConfig(): Promise<{ config: Config; source: string }> {
  const base = await loadConfig();
  return { config: { ...base.config, mesh: { ...base.config.mesh, istioVersion: '1.11' } }, source: base.source };
}

export function benchObjects(): unknown[] {
  const ns = (name: string, labels: Record<string, string> = {}) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
  });
  return [
    ns('default'),
    ns('istio-system'),
    ns('shop', { 'istio-injection': 'enabled' }),
    ns('payments', { 'istio-injection': 'enabled' }),
    ns('ns1', { 'istio-injection': 'enabled' }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'nginx', namespace: 'shop' },
      spec: {
        type: 'ClusterIP',
        selector: { app: 'nginx' },
        ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'cart', namespace: 'shop' },
      spec: {
        type: 'ClusterIP',
        selector: { app: 'cart' },
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'myservice', namespace: 'default' },
      spec: { type: 'ClusterIP', selector: { app: 'myservice' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'mysql-a', namespace: 'shop' },
      spec: {
        type: 'ExternalName',
        externalName: 'mysql-a.rds.example.com',
        ports: [{ name: 'tcp-mysql', port: 3306, protocol: 'TCP' }],
      },
    },
  ];
}

export function benchCluster(): MemoryClusterView {
  // As the watches fill it: every Service of the cluster is known.
  return MemoryClusterView.fromObjects(benchObjects(), true);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function fmt(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A markdown table, columns padded so it also reads well on a terminal. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * tls.crt and tls.key in `dir` with the CA that signed them, made as `serve` makes its dev
 * certificate (the same kind production serves: ECDSA P-256); the CA's PEM, to trust it.
 */
export async function servingPair(dir: string): Promise<string> {
  const { caFile } = await devCertificate(dir);
  return readFileSync(caFile, 'utf8');
}

export interface ToolOptions {
  /** Install what is missing (as root, with apt-get), or only say what it is. */
  install: boolean;
  log: (line: string) => void;
}

function which(cmd: string): boolean {
  // The name is an argument of the shell script, never part of its text.
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

/**
 * The commands a benchmark runs, from a Debian package, and taskset, which pins the processes:
 * the package is installed when we are root with apt-get; otherwise, or if that fails, the
 * answer says what is missing and how to get it. null when all are there.
 */
export function ensureTools(pkg: string, commands: readonly string[], rerun: string, opts: ToolOptions): string | null {
  if (!which('taskset')) return 'taskset (util-linux) is missing: apt-get install util-linux';
  const present = () => commands.every(which);
  if (present()) return null;
  if (opts.install && process.getuid?.() === 0 && which('apt-get')) {
    opts.log(`${pkg} is missing: installing the Debian package (apt-get install -y ${pkg})`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '-q', pkg], { stdio: 'inherit', env }).status === 0;
    if (!install()) {
      spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
      install();
    }
    if (present()) return null;
  }
  return `${pkg} is not installed. Install it (Debian/Ubuntu: sudo apt-get install ${pkg}) and run ${rerun} again.`;
}
