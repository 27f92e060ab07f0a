// Starts `meshguard serve` as a real process over HTTPS, for tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Agent } from 'node:https';
import { request, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TLSSocket } from 'node:tls';
import { packageRoot } from '../src/paths.js';
import { generateCa, generateServing, type PemPair } from '../src/tls/generate.js';

export interface Served {
  proc: ChildProcess;
  port: number;
  dir: string;
  ca: PemPair;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

export async function writeServingPair(dir: string, ca?: PemPair): Promise<PemPair> {
  const authority = ca ?? (await generateCa('meshguard test CA', 1));
  const pair = await generateServing(authority, ['localhost', '127.0.0.1'], 1);
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key);
  return authority;
}

/**
 * `opts.compiled` runs dist/ (as production does; needs `npm run build`) instead of src/ through
 * tsx; `opts.reuse` restarts with the certificate directory of an earlier process.
 */
export async function startServe(
  args: string[] = [],
  opts: { compiled?: boolean; reuse?: Pick<Served, 'dir' | 'ca'> } = {},
): Promise<Served> {
  const dir = opts.reuse?.dir ?? mkdtempSync(join(tmpdir(), 'meshguard-serve-'));
  const ca = opts.reuse?.ca ?? (await writeServingPair(dir));
  const entry = opts.compiled
    ? [join(packageRoot, 'dist/src/cli.js')]
    : ['--import', 'tsx', join(packageRoot, 'src/cli.ts')];
  const proc = spawn(
    process.execPath,
    [
      ...entry,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--metrics-port',
      '0',
      '--cluster',
      'off',
      '--tls-cert',
      join(dir, 'tls.crt'),
      '--tls-key',
      join(dir, 'tls.key'),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (l) => {
      try {
        const entry = JSON.parse(l) as Record<string, unknown>;
        logs.push(entry);
        const address = entry.address as { port?: number } | undefined;
        if (typeof entry.msg === 'string' && entry.msg.startsWith('meshguard serving') && address?.port)
          resolve(address.port);
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code} before serving`)));
    setTimeout(() => reject(new Error('serve did not start in 15 s')), 15_000).unref();
  });
  return { proc, port, dir, ca, logs, exited };
}

export interface Answer {
  status: number;
  body: string;
  issuer: string;
}

/** POSTs JSON over HTTPS, trusting `cas`. */
export function postJson(port: number, path: string, body: unknown, cas: string[], agent?: Agent): Promise<Answer> {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const options: RequestOptions = {
    host: '127.0.0.1',
    port,
    path,
    method: 'POST',
    ca: cas,
    agent: agent ?? false, // default: a new connection each time
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
  };
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      const issuer = String((res.socket as TLSSocket).getPeerCertificate().issuer?.CN ?? '');
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), issuer }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}
