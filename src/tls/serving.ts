import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { join } from 'node:path';
import type { PemPair } from './generate.js';

/** Reads a certificate and key, and checks that they form a usable pair. */
export async function loadPair(certFile: string, keyFile: string): Promise<PemPair> {
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  checkPair({ cert, key });
  return { cert, key };
}

/** Throws when the key does not match the certificate (e.g. a rotation half written). */
export function checkPair(pair: PemPair): void {
  createSecureContext({ cert: pair.cert, key: pair.key });
}

/**
 * The dev certificate of `meshguard serve` without --tls-cert: a CA kept in `dir` (created once,
 * reused so a cluster that trusts it keeps trusting it) and a fresh serving certificate for
 * localhost and 127.0.0.1. The generator is loaded only here: production passes its own files.
 */
export async function devCertificate(dir: string): Promise<{ pair: PemPair; caFile: string }> {
  const { generateCa, generateServing } = await import('./generate.js');
  const caFile = join(dir, 'ca.crt');
  const caKeyFile = join(dir, 'ca.key');
  let ca: PemPair;
  try {
    ca = await loadPair(caFile, caKeyFile);
  } catch {
    ca = await generateCa('meshguard dev CA', 365);
    await mkdir(dir, { recursive: true });
    await writeFile(caKeyFile, ca.key, { mode: 0o600 });
    await writeFile(caFile, ca.cert);
  }
  const pair = await generateServing(ca, ['localhost', '127.0.0.1', '::1'], 30);
  await writeFile(join(dir, 'tls.key'), pair.key, { mode: 0o600 });
  await writeFile(join(dir, 'tls.crt'), pair.cert);
  return { pair, caFile };
}
