import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

// Whether a caBundle verifies a served certificate chain for a name, as the API server's Go TLS
// client decides it (crypto/x509 Verify): the name must be among the leaf's subjectAltNames (Go
// ignores the Common Name), every certificate on the path must be within its validity, and the
// path must end at a certificate of the bundle. Pure: the chain comes from a probe (probe.ts).

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a webhook's caBundle (base64 of PEM, as stored), or why there are none. */
export function bundleCertificates(caBundle: string): { certs: X509Certificate[] } | { problem: string } {
  const text = Buffer.from(caBundle, 'base64').toString('latin1');
  const certs: X509Certificate[] = [];
  for (const pem of text.match(PEM) ?? []) {
    try {
      certs.push(new X509Certificate(pem));
    } catch {
      return { problem: 'the caBundle holds a certificate that cannot be parsed' };
    }
  }
  return certs.length > 0 ? { certs } : { problem: 'the caBundle holds no PEM certificate' };
}

/** "CN=meshguard CA" from Node's multi-line distinguished name. */
export const nameOf = (dn: string) => dn.split('\n').join(', ');
const notAfter = (c: X509Certificate) => new Date(c.validTo);

export type Verification =
  | {
      ok: true;
      leaf: X509Certificate;
      /** When the first certificate on the path expires. */ expires: Date;
      expiring: X509Certificate;
    }
  | { ok: false; reason: string };

function outOfValidity(c: X509Certificate, now: Date, role: string): string | undefined {
  if (now < new Date(c.validFrom)) return `${role} ${nameOf(c.subject)} is not valid before ${c.validFrom}`;
  if (now > notAfter(c)) return `${role} ${nameOf(c.subject)} expired on ${c.validTo}`;
  return undefined;
}

const signedBy = (c: X509Certificate, issuer: X509Certificate) => c.checkIssued(issuer) && c.verify(issuer.publicKey);

/** Verifies `chain` (leaf first, as served) for `serverName` against `roots` at `now`. */
export function verifyChain(
  chain: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  serverName: string,
  now: Date,
): Verification {
  const [leaf, ...rest] = chain;
  if (!leaf) return { ok: false, reason: 'no certificate was served' };
  const covered = isIP(serverName) ? leaf.checkIP(serverName) : leaf.checkHost(serverName, { subject: 'never' });
  if (covered === undefined)
    return {
      ok: false,
      reason: `it is for ${leaf.subjectAltName ?? 'no subjectAltName'}, not ${serverName}`,
    };
  const path = [leaf];
  let current = leaf;
  let anchored = false;
  for (let depth = 0; depth < 8 && !anchored; depth++) {
    const root = roots.find((r) => r.raw.equals(current.raw) || signedBy(current, r));
    if (root) {
      if (!root.raw.equals(current.raw)) path.push(root);
      anchored = true;
      continue;
    }
    const next = rest.find((c) => c.ca && !path.includes(c) && signedBy(current, c));
    if (!next)
      return {
        ok: false,
        reason: `it is signed by ${nameOf(current.issuer)}, and the caBundle holds ${roots.map((r) => nameOf(r.subject)).join('; ')}`,
      };
    path.push(next);
    current = next;
  }
  if (!anchored) return { ok: false, reason: 'no path to the caBundle within 8 certificates' };
  for (const [i, c] of path.entries()) {
    const invalid = outOfValidity(c, now, i === 0 ? 'the certificate' : 'its issuer');
    if (invalid) return { ok: false, reason: invalid };
  }
  const expiring = path.reduce((a, b) => (notAfter(b) < notAfter(a) ? b : a));
  return { ok: true, leaf, expires: notAfter(expiring), expiring };
}
