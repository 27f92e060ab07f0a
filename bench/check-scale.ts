// `meshguard check` on a large tree: documents per second and peak memory, with and without
// findings. The tree is generated: namespaces, and per app a file with a Deployment and the Service
// in front of it, as a platform repository holds them. With findings, the namespaces are injected
// on the FAQs' mesh (Istio 1.11): every Deployment gets the hold patch (a diff in the report) and a
// probe port warning or exclusion; without, injection is off: every pod policy skips.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { fmt, table } from './common.js';

export interface CheckScaleOptions {
  /** Sizes of the trees, in MB of YAML: memory that grows with the tree shows across them. */
  megabytes: readonly number[];
  /** Another build of meshguard (a checkout with dist/ built) measured beside this one, run for run. */
  baseline?: string;
  /** Report formats to run (each a separate check). */
  formats: readonly string[];
  log: (line: string) => void;
}

export interface CheckRun {
  build: string;
  tree: 'findings' | 'clean';
  format: string;
  documents: number;
  bytes: number;
  seconds: number;
  peakMiB: number;
  exit: number | null;
  outputBytes: number;
}

export interface CheckScaleReport {
  options: Omit<CheckScaleOptions, 'log'>;
  runs: CheckRun[];
  load: { start: number[]; end: number[] };
}

const NAMESPACES = 200;

function deployment(name: string, ns: string, i: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    app.kubernetes.io/name: ${name}
    app.kubernetes.io/part-of: shop
    app.kubernetes.io/managed-by: platform
  annotations:
    platform.example.com/owner: team-${i % 50}
spec:
  replicas: 3
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app: ${name}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels:
        app: ${name}
        version: v${i % 7}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9102"
    spec:
      serviceAccountName: ${name}
      terminationGracePeriodSeconds: 30
      containers:
      - name: app
        image: registry.example.com/shop/${name}:1.${i % 40}.${i % 9}
        args: ["--port=8080", "--health-port=8087", "--log-level=info"]
        ports:
        - {name: http, containerPort: 8080}
        - {name: health, containerPort: 8087}
        - {name: metrics, containerPort: 9102}
        env:
        - {name: APP_NAME, value: ${name}}
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: "1", memory: 512Mi}
        livenessProbe:
          tcpSocket: {port: 8087}
          periodSeconds: 10
        readinessProbe:
          httpGet: {path: /ready, port: health}
          periodSeconds: 5
`;
}

function service(name: string, ns: string): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    app.kubernetes.io/name: ${name}
spec:
  selector:
    app: ${name}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: metrics, port: 9102, targetPort: 9102}
`;
}

/** Writes the tree; how many documents and bytes it holds. */
export function writeTree(dir: string, megabytes: number, findings: boolean): { documents: number; bytes: number } {
  const nsName = (n: number) => `team-${String(n).padStart(3, '0')}`;
  const label = findings ? 'enabled' : 'disabled';
  let bytes = 0;
  let documents = 0;
  const nsText = Array.from(
    { length: NAMESPACES },
    (_, n) =>
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${nsName(n)}\n  labels:\n    istio-injection: ${label}\n`,
  ).join('---\n');
  writeFileSync(join(dir, 'namespaces.yaml'), nsText);
  bytes += nsText.length;
  documents += NAMESPACES;
  for (let i = 0; bytes < megabytes * 1e6; i++) {
    const ns = nsName(i % NAMESPACES);
    const folder = join(dir, 'apps', ns);
    if (i < NAMESPACES) mkdirSync(folder, { recursive: true });
    const name = `svc-${i}`;
    const text = `${deployment(name, ns, i)}---\n${service(name, ns)}`;
    writeFileSync(join(folder, `${name}.yaml`), text);
    bytes += text.length;
    documents += 2;
  }
  return { documents, bytes };
}

/** `meshguard check` under /usr/bin/time: wall seconds and peak resident memory; output only counted. */
function check(
  root: string,
  dir: string,
  format: string,
  configFile: string,
): Promise<{ seconds: number; peakMiB: number; exit: number | null; outputBytes: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      '/usr/bin/time',
      [
        '-f',
        'MGTIME %e %M',
        process.execPath,
        join(root, 'dist/src/cli.js'),
        'check',
        '--config',
        configFile,
        '--services-complete',
        '--output',
        format,
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let outputBytes = 0;
    let err = '';
    p.stdout.on('data', (d: Buffer) => (outputBytes += d.length));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', () => {
      const m = /MGTIME ([\d.]+) (\d+)/.exec(err);
      if (!m) return reject(new Error(`no timing from /usr/bin/time: ${err.slice(-500)}`));
      const exit = Number(/Command exited with non-zero status (\d+)/.exec(err)?.[1] ?? 0);
      resolve({ seconds: Number(m[1]), peakMiB: Number(m[2]) / 1024, exit, outputBytes });
    });
  });
}

export async function runCheckScale(opts: CheckScaleOptions): Promise<CheckScaleReport> {
  const start = loadavg();
  const root = mkdtempSync(join(tmpdir(), 'meshguard-check-scale-'));
  const runs: CheckRun[] = [];
  try {
    // The FAQs' mesh: every trap the pod guardrails know exists, so the tree with findings has them.
    const configFile = join(root, 'config.yaml');
    writeFileSync(configFile, 'mesh: {istioVersion: "1.11"}\n');
    const builds = [
      { name: 'this tree', root: packageRoot },
      ...(opts.baseline ? [{ name: opts.baseline, root: opts.baseline }] : []),
    ];
    for (const megabytes of opts.megabytes) {
      const trees = (['findings', 'clean'] as const).map((tree) => {
        const dir = join(root, `${tree}-${megabytes}`);
        mkdirSync(dir);
        const size = writeTree(dir, megabytes, tree === 'findings');
        opts.log(`${tree}: ${size.documents} documents, ${fmt(size.bytes / 1e6, 1)} MB`);
        return { tree, dir, ...size };
      });
      for (const format of opts.formats)
        for (const t of trees)
          // The builds back to back on the same tree, so the machine's load is alike for both.
          for (const b of builds) {
            const r = await check(b.root, t.dir, format, configFile);
            opts.log(
              `${b.name}: ${t.tree} ${fmt(t.bytes / 1e6, 0)} MB --output ${format}: ${fmt(r.seconds, 1)} s, ${fmt(t.documents / r.seconds, 0)} documents/s, peak ${fmt(r.peakMiB, 0)} MiB, exit ${r.exit}`,
            );
            runs.push({ build: b.name, tree: t.tree, format, documents: t.documents, bytes: t.bytes, ...r });
          }
      for (const t of trees) rmSync(t.dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return {
    options: { megabytes: opts.megabytes, formats: opts.formats, ...(opts.baseline && { baseline: opts.baseline }) },
    runs,
    load: { start, end: loadavg() },
  };
}

export function formatCheckScale(r: CheckScaleReport): string {
  return [
    `meshguard check on generated trees of ${r.options.megabytes.join(', ')} MB (a Deployment and its Service per file, ${NAMESPACES} namespaces); load average ${r.load.start.map((x) => fmt(x)).join(' ')} at start, ${r.load.end.map((x) => fmt(x)).join(' ')} at the end. Wall time and peak RSS from /usr/bin/time:`,
    '',
    table(
      ['build', 'tree', 'output', 'documents', 'MB', 'seconds', 'documents/s', 'peak RSS MiB', 'report MB', 'exit'],
      r.runs.map((x) => [
        x.build,
        x.tree === 'findings' ? 'every Deployment with findings' : 'no findings',
        x.format,
        String(x.documents),
        fmt(x.bytes / 1e6, 1),
        fmt(x.seconds, 1),
        fmt(x.documents / x.seconds, 0),
        fmt(x.peakMiB, 0),
        fmt(x.outputBytes / 1e6, 1),
        String(x.exit),
      ]),
    ),
  ].join('\n');
}
