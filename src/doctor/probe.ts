import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect, type DetailedPeerCertificate } from 'node:tls';
import type { Address } from './endpoints.js';
import { probeKey, type Probe } from './serving.js';

// The one network edge of the certificate checks: a TLS handshake with an address, sending the
// name the API server sends (SNI), keeping whatever chain is served. Nothing is verified here
// (tls.ts judges it) and no request is sent: the handshake is all that is needed.

const TIMEOUT_MS = 5000;

function chainOf(peer: DetailedPeerCertificate): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  // A self-signed certificate is its own issuer: the walk ends where it repeats.
  for (
    let c: DetailedPeerCertificate | undefined = peer;
    c?.raw && !seen.has(c.fingerprint256);
    c = c.issuerCertificate
  ) {
    seen.add(c.fingerprint256);
    chain.push(new X509Certificate(c.raw));
  }
  return chain;
}

export function probeTls(address: Address, serverName: string, timeoutMs = TIMEOUT_MS): Promise<Probe> {
  return new Promise((resolve) => {
    const socket = connect({
      host: address.host,
      port: address.port,
      ...(serverName !== '' && isIP(serverName) === 0 && { servername: serverName }),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const done = (probe: Probe) => {
      socket.destroy();
      resolve(probe);
    };
    socket.setTimeout(timeoutMs, () => done({ error: `no TLS answer within ${timeoutMs / 1000} s` }));
    socket.once('secureConnect', () => done({ chain: chainOf(socket.getPeerCertificate(true)) }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done({ error: err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message }),
    );
  });
}

/** Every target at once, each by probeKey. */
export async function probeAll(
  targets: readonly { serverName: string; address: Address }[],
): Promise<Map<string, Probe>> {
  const probes = new Map<string, Probe>();
  await Promise.all(
    targets.map(async (t) => probes.set(probeKey(t.serverName, t.address), await probeTls(t.address, t.serverName))),
  );
  return probes;
}
