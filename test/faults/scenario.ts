// Faults under load, against `meshguard serve` as a real process over HTTPS on loopback. For the
// whole run, workers send pod reviews, half on new connections, half on keep-alive ones. Meanwhile:
//   1. the certificate and key files are replaced twice (by a new CA each time): no request or
//      handshake may fail, and new connections must get the new certificate;
//   2. the --config file is changed ten times between two configurations that differ in two
//      policies at once: every answer must be exactly the one of either configuration, never a mix;
//   3. SIGTERM: every request in flight is answered, new connections are then refused, and the
//      process exits 0 within the grace period.
// Shared by test/faults.test.ts (short) and test/faults/run.ts (`npm run faults`, 60 s).
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { isDeepStrictEqual } from 'node:util';
import { requestFor } from '../../src/admission/request.js';
import type { AdmissionResponse, KubeObject } from '../../src/admission/types.js';
import { clusterOff } from '../../src/cluster/memory.js';
import { parseConfig } from '../../src/config/parse.js';
import { evaluate } from '../../src/engine/evaluate.js';
import { Registry } from '../../src/engine/registry.js';
import { compileScope } from '../../src/config/scope.js';
import { verdictOf } from '../../src/engine/verdict.js';
import { policies } from '../../src/policies/index.js';
import { generateCa } from '../../src/tls/generate.js';
import { startServe, writeServingPair } from '../serve-process.js';
import { nothingDiscovered, resolveProfile } from '../../src/mesh/profile.js';

// Two configurations a mix would show: destinationrule-placement's mode and the mesh's root
// namespace (named in its message) change together, so an answer from half of each is neither.
// A DestinationRule, because its answer needs no cluster lookups (serve runs --cluster off).
export const CONFIG_A = `# configuration A
mesh: {rootNamespace: istio-system}
policies:
  destinationrule-placement: {mode: enforce}
`;
export const CONFIG_B = `# configuration B
mesh: {rootNamespace: mesh-root}
policies:
  destinationrule-placement: {mode: warn}
`;

/** A DestinationRule in ns1 for a Service of default: only clients in ns1 would read it. */
const RULE: KubeObject = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'myservice', namespace: 'ns1' },
  spec: { host: 'myservice.default.svc.cluster.local', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
};

/** The answer each configuration gives, computed here by the same engine. */
function expectedAnswer(configText: string): Pick<AdmissionResponse, 'allowed' | 'warnings'> & { patch: unknown } {
  const parsed = parseConfig(configText);
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const decisions = evaluate(
    { request: requestFor(RULE, { namespace: 'ns1' }), stage: 'validate' },
    {
      registry: new Registry(policies),
      scope: compileScope(parsed.config),
      cluster: clusterOff,
      mesh: resolveProfile(parsed.config.mesh, nothingDiscovered),
    },
  );
  const v = verdictOf(decisions, parsed.config);
  return { allowed: v.allowed, warnings: v.warnings, patch: v.patch };
}

export interface FaultOptions {
  durationMs: number;
  concurrency: number;
  certSwaps: number;
  configChanges: number;
  shutdownDelaySeconds: number;
  configWrites?: 'rename' | 'in-place';
  log: (line: string) => void;
}

type Outcome =
  'A' | 'B' | 'mix' | 'bad-answer' | 'refused' | 'reset-before-handshake' | 'failed-after-handshake' | 'timeout';

interface Sample {
  started: number;
  ended: number;
  outcome: Outcome;
  issuer: string;
  detail?: string;
  keepAlive: boolean;
}

export interface FaultReport {
  requests: number;
  byOutcome: Record<string, number>;
  failures: string[];
  certSwaps: { at: number; issuer: string; seenAfter: number }[];
  configChanges: { at: number; generation: number | undefined }[];
  sigterm: {
    at: number;
    inFlight: number;
    inFlightAnswered: number;
    startedAfter: number;
    answeredAfter: number;
    refusedAfter: number;
    exitCode: number | null;
    exitMs: number;
    graceMs: number;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A deadline for a race: it does not keep the process alive once the race is won. */
const deadline = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export async function runFaults(opts: FaultOptions): Promise<FaultReport> {
  const { log } = opts;
  const want = { A: expectedAnswer(CONFIG_A), B: expectedAnswer(CONFIG_B) };
  if (isDeepStrictEqual(want.A, want.B)) throw new Error('the two configurations answer alike: a mix would go unseen');

  const dir = mkdtempSync(join(tmpdir(), 'meshguard-faults-'));
  const configFile = join(dir, 'config.yaml');
  // Replaced by rename, as a mounted ConfigMap changes (a reader sees the old file or the new),
  // or rewritten in place, as an editor does (a reader may see it empty or half written).
  const writeConfig = (text: string) => {
    if (opts.configWrites === 'in-place') return writeFileSync(configFile, text);
    writeFileSync(`${configFile}.tmp`, text);
    renameSync(`${configFile}.tmp`, configFile);
  };
  writeConfig(CONFIG_A);
  const served = await startServe(['--config', configFile, '--shutdown-delay', String(opts.shutdownDelaySeconds)]);
  const cas = [served.ca.cert];
  const port = served.port;
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  log(
    `meshguard serve on 127.0.0.1:${port}, pid ${served.proc.pid}; ${opts.concurrency} workers for ${opts.durationMs / 1000} s`,
  );

  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: requestFor(RULE, { namespace: 'ns1', uid: 'x' }),
  });
  const samples: Sample[] = [];
  let uid = 0;

  const send = (agent: Agent | false): Promise<Sample> =>
    new Promise((resolve) => {
      const id = `f-${++uid}`;
      const payload = body.replace('"uid":"x"', `"uid":"${id}"`);
      const started = now();
      let handshake = false;
      let issuer = '';
      const done = (outcome: Outcome, detail?: string) =>
        resolve({ started, ended: now(), outcome, issuer, detail, keepAlive: agent !== false });
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/validate',
          method: 'POST',
          ca: cas,
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          issuer = String((res.socket as TLSSocket).getPeerCertificate().issuer?.CN ?? '');
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => done('failed-after-handshake', err.message));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            try {
              const { response } = JSON.parse(text) as { response: AdmissionResponse };
              if (res.statusCode !== 200 || response.uid !== id)
                return done('bad-answer', `${res.statusCode} ${text.slice(0, 200)}`);
              const got = {
                allowed: response.allowed,
                warnings: response.warnings ?? [],
                patch: response.patch ? JSON.parse(Buffer.from(response.patch, 'base64').toString()) : [],
              };
              if (isDeepStrictEqual(got, want.A)) return done('A');
              if (isDeepStrictEqual(got, want.B)) return done('B');
              return done('mix', text.slice(0, 300));
            } catch {
              return done('bad-answer', `${res.statusCode} ${text.slice(0, 200)}`);
            }
          });
        },
      );
      req.on('socket', (socket) => {
        // A keep-alive socket being reused has done its handshake already.
        if (socket.connecting) socket.once('secureConnect', () => (handshake = true));
        else handshake = true;
      });
      req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.message === 'timeout') return done('timeout');
        if (err.code === 'ECONNREFUSED') return done('refused', err.code);
        done(handshake ? 'failed-after-handshake' : 'reset-before-handshake', `${err.code ?? ''} ${err.message}`);
      });
      req.end(payload);
    });

  // Workers: until told to stop; after SIGTERM, until their connections are refused.
  let stopping = false;
  let sigtermAt = Infinity;
  let exited = false;
  const workers = Array.from({ length: opts.concurrency }, async (_, i) => {
    const agent = i % 2 === 1 ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
    for (let n = 0; n < 1_000_000 && !exited; n++) {
      const s = await send(agent);
      samples.push(s);
      if (stopping && s.started > sigtermAt && (s.outcome === 'refused' || s.outcome === 'reset-before-handshake'))
        break;
      if (s.outcome === 'refused') await sleep(20);
    }
    if (agent) agent.destroy();
  });

  // The faults, spread over the run; the SIGTERM at its end.
  const report: FaultReport = {
    requests: 0,
    byOutcome: {},
    failures: [],
    certSwaps: [],
    configChanges: [],
    sigterm: {
      at: 0,
      inFlight: 0,
      inFlightAnswered: 0,
      startedAfter: 0,
      answeredAfter: 0,
      refusedAfter: 0,
      exitCode: null,
      exitMs: 0,
      graceMs: 0,
    },
  };
  const readyGeneration = async (): Promise<number | undefined> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/readyz', ca: cas, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve((JSON.parse(Buffer.concat(chunks).toString()) as { configGeneration?: number }).configGeneration),
        );
      });
      req.on('error', () => resolve(undefined));
      req.end();
    });

  const events: { at: number; run: () => Promise<void> }[] = [];
  for (let i = 0; i < opts.certSwaps; i++) {
    events.push({
      at: ((i + 1) / (opts.certSwaps + 2)) * opts.durationMs,
      run: async () => {
        const ca = await generateCa(`meshguard faults CA ${i + 1}`, 1);
        cas.push(ca.cert); // clients trust the new CA as well, as a caBundle with both would
        await writeServingPair(served.dir, ca); // in place: the key may be read half written
        report.certSwaps.push({ at: now(), issuer: `meshguard faults CA ${i + 1}`, seenAfter: 0 });
        log(`${(now() / 1000).toFixed(1)} s: certificate and key replaced (CA ${i + 1})`);
      },
    });
  }
  let generation = await readyGeneration();
  for (let i = 0; i < opts.configChanges; i++) {
    events.push({
      at: ((i + 0.5) / opts.configChanges) * opts.durationMs * 0.9,
      run: async () => {
        writeConfig(i % 2 === 0 ? CONFIG_B : CONFIG_A);
        const at = now();
        // Wait (bounded) until it is in force, so that ten changes really happen.
        let seen: number | undefined;
        for (let k = 0; k < 200; k++) {
          seen = await readyGeneration();
          if (seen !== undefined && generation !== undefined && seen > generation) break;
          await sleep(25);
        }
        generation = seen;
        report.configChanges.push({ at, generation: seen });
        log(
          `${(at / 1000).toFixed(1)} s: configuration ${i % 2 === 0 ? 'B' : 'A'} written; generation ${seen} in force after ${now() - at} ms`,
        );
      },
    });
  }
  events.sort((a, b) => a.at - b.at);
  for (const e of events) {
    await sleep(Math.max(0, e.at - now()));
    await e.run();
  }
  await sleep(Math.max(0, opts.durationMs - now()));

  // SIGTERM with requests in flight.
  stopping = true;
  sigtermAt = now();
  const exitedAt = served.exited.then((code) => {
    exited = true;
    return { code, at: now() };
  });
  served.proc.kill('SIGTERM');
  log(`${(sigtermAt / 1000).toFixed(1)} s: SIGTERM`);
  const graceMs = (opts.shutdownDelaySeconds + 20) * 1000;
  const exit = await Promise.race([exitedAt, deadline(graceMs + 5000).then(() => ({ code: null, at: Infinity }))]);
  if (exit.code === null) served.proc.kill('SIGKILL');
  await Promise.race([Promise.all(workers), deadline(20_000)]);
  exited = true;
  // After the exit, a new connection is refused.
  const late = await send(false);
  samples.push(late);

  // Counts and verdicts.
  report.requests = samples.length;
  for (const s of samples) report.byOutcome[s.outcome] = (report.byOutcome[s.outcome] ?? 0) + 1;
  const fail = (s: Sample, why: string) =>
    report.failures.push(
      `${why}: ${s.outcome} at ${(s.started / 1000).toFixed(3)} s${s.detail ? ` (${s.detail})` : ''}`,
    );
  for (const s of samples) {
    const before = s.started < sigtermAt;
    if (s.outcome === 'mix' || s.outcome === 'bad-answer') fail(s, 'wrong answer');
    else if (before && s.outcome !== 'A' && s.outcome !== 'B')
      fail(s, s.ended < sigtermAt ? 'failed before SIGTERM' : 'in flight at SIGTERM, not answered');
    else if (!before && (s.outcome === 'failed-after-handshake' || s.outcome === 'timeout'))
      fail(s, 'accepted after SIGTERM, not answered');
  }
  for (const swap of report.certSwaps) swap.seenAfter = samples.filter((s) => s.issuer === swap.issuer).length;
  for (const swap of report.certSwaps)
    if (swap.seenAfter === 0) report.failures.push(`the certificate of ${swap.issuer} was never served`);
  const generations = report.configChanges.map((c) => c.generation);
  if (
    report.configChanges.length !== opts.configChanges ||
    generations.some((g, i) => g === undefined || (i > 0 && g <= (generations[i - 1] ?? 0)))
  ) {
    report.failures.push(`configuration changes did not all take effect: generations ${JSON.stringify(generations)}`);
  }
  const inFlight = samples.filter((s) => s.started < sigtermAt && s.ended >= sigtermAt);
  const after = samples.filter((s) => s.started >= sigtermAt);
  report.sigterm = {
    at: sigtermAt,
    inFlight: inFlight.length,
    inFlightAnswered: inFlight.filter((s) => s.outcome === 'A' || s.outcome === 'B').length,
    startedAfter: after.length,
    answeredAfter: after.filter((s) => s.outcome === 'A' || s.outcome === 'B').length,
    refusedAfter: after.filter((s) => s.outcome === 'refused').length,
    exitCode: exit.code,
    exitMs: exit.at - sigtermAt,
    graceMs,
  };
  if (exit.code !== 0) report.failures.push(`exit code ${exit.code} (within ${graceMs} ms)`);
  if (late.outcome !== 'refused')
    report.failures.push(`a new connection after the exit was not refused: ${late.outcome}`);
  if (report.sigterm.inFlight === 0)
    report.failures.push('no request was in flight at SIGTERM: the test proved nothing');
  return report;
}

export function summary(r: FaultReport): string {
  const s = r.sigterm;
  return [
    `requests: ${r.requests}; by outcome: ${Object.entries(r.byOutcome)
      .sort()
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `certificate swaps: ${r.certSwaps.map((c) => `${(c.at / 1000).toFixed(1)} s → ${c.seenAfter} answers with ${c.issuer}`).join('; ')}`,
    `configuration changes: ${r.configChanges.length}, generations ${r.configChanges.map((c) => c.generation).join(', ')}`,
    `SIGTERM at ${(s.at / 1000).toFixed(1)} s: ${s.inFlight} in flight, ${s.inFlightAnswered} answered; after it ${s.startedAfter} started, ${s.answeredAfter} answered (drain), ${s.refusedAfter} refused; exit code ${s.exitCode} after ${s.exitMs} ms (grace ${s.graceMs} ms)`,
    `failures: ${r.failures.length}`,
    ...r.failures.slice(0, 20).map((f) => `  ${f}`),
  ].join('\n');
}
