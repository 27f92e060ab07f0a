// A real Kubernetes control plane on loopback for meshguard's end-to-end tests: etcd,
// kube-apiserver and kube-controller-manager at the versions test/e2e/components/*/go.mod pin
// (built by test/e2e/provision.sh, see DESIGN.md section 6). No scheduler and no kubelet: Pods are created (by the real controllers,
// through the real admission chain, webhooks included) but stay Pending.
//
//   const cluster = await startCluster();
//   t.teardown(() => cluster.stop());
//   const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
//
// Every process is started with an argument array (no shell), logs to a file in `logDir`, and is
// stopped by PID. A watchdog process SIGKILLs the control plane if this process dies without
// calling stop() (even by SIGKILL), and an 'exit' handler does the same on a normal exit.

import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ApiException, ApiextensionsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition, V1CustomResourceValidation } from '@kubernetes/client-node';

const execFileAsync = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

const PROVISION_HINT = 'run the e2e tests with `npm run test:e2e` (test/e2e/provision.sh builds the binaries)';

export type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager';

/** One request to the API server as the admin: the status and the parsed body (undefined when empty). */
export function apiRequest(
  cluster: Pick<Cluster, 'server' | 'caPem' | 'token'>,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, cluster.server),
      {
        method,
        ca: cluster.caPem,
        headers: { authorization: `Bearer ${cluster.token}`, accept: 'application/json', 'content-type': contentType },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : (JSON.parse(text) as unknown) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export interface ClusterOptions {
  /** Register minimal Istio networking CRDs and wait until they are Established (default true). */
  istioCrds?: boolean;
  /** Wait until kube-controller-manager is demonstrably running controllers (default true). */
  waitForControllers?: boolean;
  /**
   * kube-controller-manager's --controllers (default all but nodeipam and nodelifecycle). The
   * scale benchmark runs without the EndpointSlice controller, which would write a slice for each
   * of its 100 000 Services.
   */
  controllers?: readonly string[];
  /** Bound for each startup phase, in milliseconds (default 60 000). */
  timeoutMs?: number;
  /** Extra kube-apiserver flags, e.g. `--feature-gates=...` (appended last, so they win). */
  apiserverArgs?: readonly string[];
  /** Keep logDir after stop() (also enabled by MESHGUARD_E2E_KEEP_LOGS=1). */
  keepLogs?: boolean;
}

export interface Cluster {
  /** https://127.0.0.1:PORT */
  server: string;
  /** Admin kubeconfig (token in group system:masters, verifies the serving certificate). */
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  /** Bearer token of the admin user. */
  token: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  caPem: string;
  /** etcd.log, kube-apiserver.log, kube-controller-manager.log. */
  logDir: string;
  pids: Readonly<Record<Component, number>>;
  /** Milliseconds from startCluster() to ready (CRDs and controllers included when requested). */
  startupMs: number;
  /** Milliseconds from startCluster() until each phase was done. */
  timings: Readonly<Record<string, number>>;
  /** Last lines of a component's log, for assertion messages. */
  logTail(component: string, lines?: number): string;
  /**
   * Start another process beside the control plane (e.g. istiod), logging to `<name>.log`, stopped
   * with the cluster (before it) or by its own stop().
   */
  startProcess(name: string, file: string, args: readonly string[], opts?: ProcessOptions): Promise<Extra>;
  /** Stop all processes (SIGTERM, then SIGKILL), wait for them, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface Extra {
  pid: number;
  /** Set once the process has exited. */
  exit(): string | undefined;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Binaries

/** The directory with every provisioned binary (run.sh exports it). */
export function e2eBinDir(): string {
  const dir = process.env.MESHGUARD_E2E_BIN;
  if (dir === undefined || dir === '') throw new Error(`e2e: MESHGUARD_E2E_BIN is not set; ${PROVISION_HINT}`);
  return dir;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

interface Binaries {
  etcd: string;
  apiserver: string;
  controllerManager: string;
  openssl: string;
}

function locateBinaries(): Binaries {
  const bin = e2eBinDir();
  const apiserver = join(bin, 'kube-apiserver');
  const controllerManager = join(bin, 'kube-controller-manager');
  const etcd = join(bin, 'etcd');
  const openssl = findOnPath('openssl');
  const missing = [apiserver, controllerManager, etcd].filter((p) => !isExecutable(p));
  if (openssl === undefined) missing.push('openssl');
  if (missing.length > 0 || openssl === undefined) {
    throw new Error(`e2e cluster: missing ${missing.join(', ')}; ${PROVISION_HINT}`);
  }
  return { etcd, apiserver, controllerManager, openssl };
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping and safety nets

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  logPath: string;
  /** Set once the process has exited (or failed to spawn). */
  exit?: string;
  exited: Promise<void>;
}

const live = new Set<Proc>();
/** Temp dirs to remove if the process exits without stop(). */
const liveDirs = new Set<string>();
let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const p of live) {
      if (p.exit === undefined) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

// Runs as a separate node process, fed JSON lines on stdin: {"add":PID}, {"remove":PID},
// {"dir":PATH|null}. When stdin closes without a prior {"done":true} (our process died, however:
// crash, SIGTERM from a test runner, SIGKILL), it SIGKILLs every PID still listed and removes the
// directory.
const WATCHDOG_SOURCE = `
const pids = new Set();
let dir = null, finished = false, buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    let m; try { m = JSON.parse(line); } catch { continue; }
    if (Number.isInteger(m.add) && m.add > 0) pids.add(m.add);
    if (Number.isInteger(m.remove)) pids.delete(m.remove);
    if ('dir' in m) dir = typeof m.dir === 'string' ? m.dir : null;
    if (m.done === true) finished = true;
  }
});
const done = () => {
  if (finished) process.exit(0);
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  setTimeout(() => {
    if (dir !== null) { try { require('node:fs').rmSync(dir, { recursive: true, force: true }); } catch {} }
    process.exit(0);
  }, pids.size > 0 ? 500 : 0);
};
process.stdin.on('end', done);
process.stdin.on('error', done);
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
`;

class Watchdog {
  private readonly child: ChildProcess;

  constructor() {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // no tsx loader etc. for this tiny plain-JS process
    this.child = spawn(process.execPath, ['-e', WATCHDOG_SOURCE], { stdio: ['pipe', 'ignore', 'ignore'], env });
    this.child.on('error', () => undefined);
    this.child.stdin?.on('error', () => undefined);
    this.child.unref();
    (this.child.stdin as Socket | null)?.unref();
  }

  private send(msg: Record<string, unknown>): void {
    this.child.stdin?.write(JSON.stringify(msg) + '\n');
  }

  add(pid: number): void {
    this.send({ add: pid });
  }

  remove(pid: number): void {
    this.send({ remove: pid });
  }

  /** Directory to delete if we die (null: none). */
  dir(path: string | null): void {
    this.send({ dir: path });
  }

  /** Everything is cleaned up: let the watchdog exit without doing anything. */
  close(): void {
    this.send({ done: true });
    this.child.stdin?.end();
  }
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // etcd reads ETCD_* variables and refuses to start when they conflict with flags.
    if (k.startsWith('ETCD_') || k === 'KUBECONFIG' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return env;
}

function startProc(
  name: string,
  file: string,
  args: readonly string[],
  logDir: string,
  watchdog: Watchdog,
  opts: ProcessOptions = {},
): Proc {
  const logPath = join(logDir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(file, args, { stdio: ['ignore', fd, fd], env: { ...childEnv(), ...opts.env }, cwd: opts.cwd });
  } finally {
    closeSync(fd); // the child has its own copy
  }
  let resolveExited: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => {
    resolveExited = resolve;
  });
  const proc: Proc = { name, child, pid: child.pid ?? -1, logPath, exited };
  child.on('exit', (code, signal) => {
    proc.exit = signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`;
    live.delete(proc);
    resolveExited();
  });
  child.on('error', (err) => {
    proc.exit ??= `failed to start: ${err.message}`;
    if (child.pid === undefined) {
      live.delete(proc);
      resolveExited();
    }
  });
  if (child.pid !== undefined) {
    live.add(proc);
    watchdog.add(child.pid);
    // Do not keep the event loop alive: a test that forgets stop() still exits, and the exit
    // handler / watchdog then kill the process.
    child.unref();
  }
  return proc;
}

async function stopProc(proc: Proc, graceMs: number): Promise<void> {
  if (proc.exit !== undefined || proc.pid <= 0) return;
  proc.child.ref(); // keep the loop alive until it has really exited
  try {
    process.kill(proc.pid, 'SIGTERM');
  } catch {
    // raced with its exit
  }
  const timer = sleep(graceMs, 'timeout' as const);
  const outcome = await Promise.race([proc.exited.then(() => 'exited' as const), timer]);
  if (outcome === 'timeout' && proc.exit === undefined) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // raced with its exit
    }
    await proc.exited;
  }
}

function tailFile(path: string, lines: number): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } catch (err) {
    return `(no log: ${(err as Error).message})`;
  }
}

class StartupError extends Error {
  readonly component: string | undefined;

  constructor(message: string, proc: Proc | undefined) {
    super(
      proc === undefined
        ? message
        : `${message}\n--- last lines of ${proc.logPath} ---\n${tailFile(proc.logPath, 40)}\n--- end of ${proc.name} log ---`,
    );
    this.name = 'StartupError';
    this.component = proc?.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers: ports, certificates, HTTP probes

/** Distinct free loopback ports (all held open at once so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

async function generateServingCert(
  openssl: string,
  pki: string,
): Promise<{ caPem: string; certPath: string; keyPath: string; caPath: string }> {
  const caKey = join(pki, 'ca.key');
  const caPath = join(pki, 'ca.crt');
  const keyPath = join(pki, 'apiserver.key');
  const csrPath = join(pki, 'apiserver.csr');
  const certPath = join(pki, 'apiserver.crt');
  const extPath = join(pki, 'apiserver.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await execFileAsync(openssl, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    caKey,
    '-out',
    caPath,
    '-days',
    '3',
    '-subj',
    '/CN=meshguard-e2e-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await execFileAsync(openssl, [
    'req',
    '-new',
    ...ec,
    '-keyout',
    keyPath,
    '-out',
    csrPath,
    '-subj',
    '/CN=kube-apiserver',
  ]);
  await writeFile(
    extPath,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
      '',
    ].join('\n'),
  );
  await execFileAsync(openssl, [
    'x509',
    '-req',
    '-in',
    csrPath,
    '-CA',
    caPath,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-days',
    '3',
    '-extfile',
    extPath,
    '-out',
    certPath,
  ]);
  return { caPem: readFileSync(caPath, 'utf8'), certPath, keyPath, caPath };
}

interface Probe {
  status: number;
  body: string;
}

function probe(url: string, opts: { ca?: string; token?: string } = {}): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = {};
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      { method: 'GET', headers, timeout: 2000, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Poll `check` every `intervalMs` until it returns true; fail early if `proc` exits. */
async function waitFor(
  what: string,
  proc: Proc | undefined,
  timeoutMs: number,
  check: () => Promise<boolean>,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (proc?.exit !== undefined)
      throw new StartupError(`e2e cluster: ${proc.name} ${proc.exit} while waiting for ${what}`, proc);
    try {
      if (await check()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new StartupError(
        `e2e cluster: timed out after ${timeoutMs} ms waiting for ${what}${last !== '' ? ` (last error: ${last})` : ''}`,
        proc,
      );
    }
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Istio CRDs

interface CrdNames {
  plural: string;
  singular: string;
  kind: string;
  shortNames: string[];
}

export const ISTIO_NETWORKING_GROUP = 'networking.istio.io';

const ISTIO_CRDS: readonly CrdNames[] = [
  { plural: 'destinationrules', singular: 'destinationrule', kind: 'DestinationRule', shortNames: ['dr'] },
  { plural: 'serviceentries', singular: 'serviceentry', kind: 'ServiceEntry', shortNames: ['se'] },
  { plural: 'virtualservices', singular: 'virtualservice', kind: 'VirtualService', shortNames: ['vs'] },
];

function istioCrd(n: CrdNames): V1CustomResourceDefinition {
  // The client serialises through its model: the property is x_kubernetes_preserve_unknown_fields
  // (sent as x-kubernetes-preserve-unknown-fields); the wire name would be silently dropped and
  // the API server would then prune every field of every custom object.
  const schema: V1CustomResourceValidation = {
    openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${n.plural}.${ISTIO_NETWORKING_GROUP}`, labels: { 'meshguard.dev/e2e': 'true' } },
    spec: {
      group: ISTIO_NETWORKING_GROUP,
      scope: 'Namespaced',
      names: {
        plural: n.plural,
        singular: n.singular,
        kind: n.kind,
        listKind: `${n.kind}List`,
        shortNames: n.shortNames,
      },
      versions: [
        { name: 'v1alpha3', served: true, storage: true, schema, subresources: { status: {} } },
        { name: 'v1beta1', served: true, storage: false, schema, subresources: { status: {} } },
      ],
    },
  };
}

/**
 * Register minimal CRDs for destinationrules, serviceentries and virtualservices
 * (networking.istio.io v1alpha3 + v1beta1, schema-less) and wait until they are Established.
 * Already existing CRDs are fine.
 */
export async function installIstioCrds(kc: KubeConfig, timeoutMs = 30_000): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  await Promise.all(
    ISTIO_CRDS.map(async (n) => {
      const body = istioCrd(n);
      const name = body.metadata?.name ?? '';
      try {
        await api.createCustomResourceDefinition({ body });
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 409)) throw err;
      }
      await waitFor(`CRD ${name} to be Established`, undefined, timeoutMs, async () => {
        const crd = await api.readCustomResourceDefinition({ name });
        return (crd.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True');
      });
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The cluster

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const bins = locateBinaries();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(bins, opts);
    } catch (err) {
      // Free ports are picked before the processes bind them; retry if another process won a race.
      const portRace = err instanceof StartupError && /address already in use/.test(err.message);
      if (!portRace || attempt >= 3) throw err;
    }
  }
}

async function startOnce(bins: Binaries, opts: ClusterOptions): Promise<Cluster> {
  const started = Date.now();
  const timings: Record<string, number> = {};
  const mark = (phase: string): void => {
    timings[phase] = Date.now() - started;
  };
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const keepLogs = opts.keepLogs ?? process.env.MESHGUARD_E2E_KEEP_LOGS === '1';
  installExitHandler();

  const dir = await mkdtemp(join(tmpdir(), 'meshguard-kube-'));
  const logDir = join(dir, 'logs');
  const pki = join(dir, 'pki');
  const etcdData = join(dir, 'etcd');
  await Promise.all([mkdir(logDir), mkdir(pki, { mode: 0o700 }), mkdir(etcdData, { mode: 0o700 })]);

  const watchdog = new Watchdog();
  if (!keepLogs) {
    watchdog.dir(dir);
    liveDirs.add(dir);
  }
  const procs: Proc[] = [];
  const extras: Proc[] = [];
  let stopping: Promise<void> | undefined;

  const stop = (keepDir: boolean): Promise<void> => {
    stopping ??= (async () => {
      // Controllers and API server first (concurrently), etcd last so the API server does not
      // spend its grace period retrying a vanished backend.
      const [etcd, ...rest] = procs;
      await Promise.all(extras.map((p) => stopProc(p, 5000)));
      await Promise.all(rest.map((p) => stopProc(p, 5000)));
      if (etcd !== undefined) await stopProc(etcd, 5000);
      for (const p of [...procs, ...extras]) if (p.pid > 0) watchdog.remove(p.pid);
      liveDirs.delete(dir);
      if (keepDir) {
        // Keep the logs for diagnosis, drop everything else.
        for (const entry of await readdir(dir)) {
          if (entry !== 'logs') await rm(join(dir, entry), { recursive: true, force: true });
        }
      } else {
        await rm(dir, { recursive: true, force: true });
      }
      watchdog.close();
    })();
    return stopping;
  };

  try {
    const [etcdClientPort, etcdPeerPort, apiserverPort] = (await freePorts(3)) as [number, number, number];
    const token = randomBytes(24).toString('hex');
    const tokenFile = join(pki, 'tokens.csv');
    const saKeyPath = join(pki, 'sa.key');
    const saPubPath = join(pki, 'sa.pub');
    const [certs, saKeys] = await Promise.all([
      generateServingCert(bins.openssl, pki),
      // ECDSA P-256 (ES256 tokens): generated in ~1 ms, where RSA-2048 takes ~0.5 s.
      generateKeyPairAsync('ec', {
        namedCurve: 'P-256',
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      }),
    ]);
    await Promise.all([
      writeFile(saKeyPath, saKeys.privateKey, { mode: 0o600 }),
      writeFile(saPubPath, saKeys.publicKey),
      // token,user,uid,"group1,group2"
      writeFile(tokenFile, `${token},meshguard-e2e-admin,meshguard-e2e-admin,"system:masters"\n`, { mode: 0o600 }),
    ]);
    mark('certs');

    // --- etcd -------------------------------------------------------------------------------
    const etcdClientUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = startProc(
      'etcd',
      bins.etcd,
      [
        '--name=meshguard-e2e',
        `--data-dir=${etcdData}`,
        `--listen-client-urls=${etcdClientUrl}`,
        `--advertise-client-urls=${etcdClientUrl}`,
        `--listen-peer-urls=${etcdPeerUrl}`,
        `--initial-advertise-peer-urls=${etcdPeerUrl}`,
        `--initial-cluster=meshguard-e2e=${etcdPeerUrl}`,
        '--initial-cluster-state=new',
        '--unsafe-no-fsync',
        // A single member has no peers to miss heartbeats: short ticks make the initial
        // self-election take ~60 ms instead of ~300 ms.
        '--heartbeat-interval=20',
        '--election-timeout=200',
        '--logger=zap',
        '--log-outputs=stderr',
      ],
      logDir,
      watchdog,
    );
    procs.push(etcd);
    await waitFor(
      'etcd /health',
      etcd,
      timeoutMs,
      async () => {
        const r = await probe(`${etcdClientUrl}/health`);
        return r.status === 200 && /"health":\s*"true"/.test(r.body);
      },
      50,
    );
    mark('etcd');

    // --- kube-apiserver -----------------------------------------------------------------------
    const server = `https://127.0.0.1:${apiserverPort}`;
    const apiserver = startProc(
      'kube-apiserver',
      bins.apiserver,
      [
        `--etcd-servers=${etcdClientUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiserverPort}`,
        `--cert-dir=${pki}`,
        `--tls-cert-file=${certs.certPath}`,
        `--tls-private-key-file=${certs.keyPath}`,
        `--token-auth-file=${tokenFile}`,
        '--authorization-mode=RBAC',
        `--service-account-key-file=${saPubPath}`,
        `--service-account-signing-key-file=${saKeyPath}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        '--service-cluster-ip-range=10.96.0.0/16',
        '--disable-admission-plugins=ServiceAccount',
        // Webhooks that name a Service (Helm's meshguard release) are called at an endpoint of its
        // EndpointSlices, not its cluster IP: there is no kube-proxy here.
        '--enable-aggregator-routing=true',
        '--allow-privileged=true',
        // The default "lease" reconciler would try to publish 127.0.0.1 as the endpoint of the
        // `kubernetes` Service, which Endpoints validation rejects (loopback) - log noise only.
        '--endpoint-reconciler-type=none',
        '--profiling=false',
        ...(opts.apiserverArgs ?? []),
      ],
      logDir,
      watchdog,
    );
    procs.push(apiserver);
    await waitFor('kube-apiserver /readyz', apiserver, timeoutMs, async () => {
      const r = await probe(`${server}/readyz`, { ca: certs.caPem, token });
      return r.status === 200;
    });
    mark('apiserver');

    // --- kubeconfig -------------------------------------------------------------------------------
    const kubeconfigPath = join(dir, 'kubeconfig');
    const kubeconfig = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'meshguard-e2e',
          cluster: { server, 'certificate-authority-data': Buffer.from(certs.caPem).toString('base64') },
        },
      ],
      users: [{ name: 'meshguard-e2e-admin', user: { token } }],
      contexts: [
        {
          name: 'meshguard-e2e',
          context: { cluster: 'meshguard-e2e', user: 'meshguard-e2e-admin', namespace: 'default' },
        },
      ],
      'current-context': 'meshguard-e2e',
    };
    // JSON is YAML: every kubeconfig reader accepts it.
    await writeFile(kubeconfigPath, JSON.stringify(kubeconfig, null, 2) + '\n', { mode: 0o600 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);

    // --- kube-controller-manager ------------------------------------------------------------------
    const controllerManager = startProc(
      'kube-controller-manager',
      bins.controllerManager,
      [
        `--kubeconfig=${kubeconfigPath}`,
        `--controllers=${(opts.controllers ?? ['*', '-nodeipam', '-nodelifecycle']).join(',')}`,
        '--leader-elect=false',
        '--secure-port=0',
        `--service-account-private-key-file=${saKeyPath}`,
        `--root-ca-file=${certs.caPath}`,
        '--use-service-account-credentials=false',
        '--kube-api-qps=100',
        '--kube-api-burst=200',
        '--profiling=false',
      ],
      logDir,
      watchdog,
    );
    procs.push(controllerManager);

    const waits: Promise<void>[] = [];
    if (opts.istioCrds ?? true) waits.push(installIstioCrds(kubeConfig, timeoutMs).then(() => mark('istioCrds')));
    if (opts.waitForControllers ?? true) {
      // The serviceaccount controller creates default/default once the controllers run.
      const core = kubeConfig.makeApiClient(CoreV1Api);
      waits.push(
        waitFor(
          'kube-controller-manager to create ServiceAccount default/default',
          controllerManager,
          timeoutMs,
          async () => {
            await core.readNamespacedServiceAccount({ namespace: 'default', name: 'default' });
            return true;
          },
        ).then(() => mark('controllers')),
      );
    }
    await Promise.all(waits);

    const pids = { etcd: etcd.pid, 'kube-apiserver': apiserver.pid, 'kube-controller-manager': controllerManager.pid };
    const byName = new Map(procs.map((p) => [p.name, p]));
    return {
      server,
      kubeconfigPath,
      kubeConfig,
      token,
      caPem: certs.caPem,
      logDir,
      pids,
      startupMs: Date.now() - started,
      timings,
      logTail: (component, lines = 40) =>
        tailFile(byName.get(component)?.logPath ?? join(logDir, `${component}.log`), lines),
      stop: () => stop(keepLogs),
      startProcess: async (name, file, args, popts) => {
        const proc = startProc(name, file, args, logDir, watchdog, popts);
        extras.push(proc);
        byName.set(name, proc);
        if (proc.pid <= 0) {
          await proc.exited;
          throw new StartupError(`e2e: ${name} ${proc.exit ?? 'did not start'}`, proc);
        }
        return { pid: proc.pid, exit: () => proc.exit, stop: () => stopProc(proc, 5000) };
      },
    };
  } catch (err) {
    await stop(true).catch(() => undefined);
    if (err instanceof StartupError) {
      err.message += `\n(logs kept in ${logDir})`;
      throw err;
    }
    throw new Error(`e2e cluster: startup failed: ${(err as Error).message} (logs kept in ${logDir})`, { cause: err });
  }
}
