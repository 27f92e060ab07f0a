// CIDR prefixes as Istio's injector reads them: Go's netip.ParsePrefix (pkg/kube/inject/validate.go
// validateCIDRList; net.ParseCIDR before Istio 1.16). Ported from Go's net/netip (go1.26), so the
// same text is refused for the same reason.

/**
 * What Istio makes of a prefix: `ok`; `invalid` (every Go release refuses it); or `varies`: Go
 * releases disagree (Istio builds each release with the Go of its day), so meshguard cannot tell
 * from the Istio version alone.
 */
export type PrefixReading = { kind: 'ok' } | { kind: 'invalid' | 'varies'; why: string };

const OK: PrefixReading = Object.freeze({ kind: 'ok' });
const LEADING_ZERO = 'an IPv4 octet has a leading zero';
const LONG_GROUP = 'an IPv6 group has more than 4 digits';

/** parseIPv4Fields: four decimal octets, no leading zeros, each at most 255. */
function ipv4Fields(s: string): string | undefined {
  let val = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && val === 0) return LEADING_ZERO;
      val = val * 10 + (c - 0x30);
      digits++;
      if (val > 255) return 'an IPv4 octet is above 255';
    } else if (c === 0x2e) {
      if (i === 0 || i === s.length - 1 || s.charCodeAt(i - 1) === 0x2e) return 'an IPv4 octet is empty';
      if (dots === 3) return 'the IPv4 address is too long';
      dots++;
      val = 0;
      digits = 0;
    } else {
      return `unexpected character ${JSON.stringify(s.charAt(i))}`;
    }
  }
  return dots < 3 ? 'the IPv4 address is too short' : undefined;
}

/** parseIPv6 without a zone (a prefix may not have one): undefined when valid, else why not. */
function ipv6(input: string): string | undefined {
  let s = input;
  let ellipsis = -1;
  if (s.startsWith('::')) {
    ellipsis = 0;
    s = s.slice(2);
    if (s === '') return undefined;
  }
  let i = 0;
  while (i < 16) {
    let off = 0;
    let acc = 0;
    for (; off < s.length; off++) {
      const c = s.charCodeAt(off);
      const hex =
        c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (hex < 0) break;
      acc = acc * 16 + hex;
      if (off > 3) return LONG_GROUP;
    }
    if (off === 0) return 'an IPv6 group is empty';
    if (s.charAt(off) === '.') {
      if (ellipsis < 0 && i !== 12) return 'an embedded IPv4 address must replace the last two groups';
      if (i + 4 > 16) return 'no room for an embedded IPv4 address';
      const v4 = ipv4Fields(s);
      if (v4) return v4;
      s = '';
      i += 4;
      break;
    }
    i += 2;
    s = s.slice(off);
    if (s === '') break;
    if (s.charAt(0) !== ':') return `unexpected character ${JSON.stringify(s.charAt(0))}`;
    if (s.length === 1) return 'the address ends with a colon';
    s = s.slice(1);
    if (s.charAt(0) === ':') {
      if (ellipsis >= 0) return 'more than one ::';
      ellipsis = i;
      s = s.slice(1);
      if (s === '') break;
    }
  }
  if (s !== '') return 'trailing characters after the address';
  if (i < 16 && ellipsis < 0) return 'the IPv6 address is too short';
  if (i === 16 && ellipsis >= 0) return ':: stands for no group';
  return undefined;
}

/** ParseAddr: the first '.' or ':' says which family; '%' first is a zone without an address. */
function addr(s: string): { why?: string; bits: number } {
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (c === '.') return { why: ipv4Fields(s), bits: 32 };
    if (c === ':') {
      const zone = s.indexOf('%');
      // Zones are not allowed in a prefix (go.dev/issue/51899); net.ParseCIDR never took one either.
      if (zone >= 0) return { why: 'a prefix cannot have an IPv6 zone', bits: 128 };
      return { why: ipv6(s), bits: 128 };
    }
    if (c === '%') return { why: 'missing IPv6 address', bits: 0 };
  }
  return { why: 'not an IP address', bits: 0 };
}

/**
 * Go's netip.ParsePrefix (the last '/' splits address and length), as Istio from 1.16 reads CIDRs;
 * `netip: false` for the releases before, which used net.ParseCIDR. Where the Go release decides
 * (Istio builds each release with the Go of its day), the reading is `varies`.
 */
export function parsePrefix(s: string, netip: boolean): PrefixReading {
  const slash = s.lastIndexOf('/');
  if (slash < 0) return { kind: 'invalid', why: "no '/'" };
  const { why, bits } = addr(s.slice(0, slash));
  if (why !== undefined) {
    // netip refuses both; net.ParseIP read IPv4 octets with leading zeros (as decimal) until Go
    // 1.17, and IPv6 groups of more than four digits with a value below 2^16.
    const legacyDiffers = why === LEADING_ZERO || why === LONG_GROUP;
    return { kind: legacyDiffers && !netip ? 'varies' : 'invalid', why };
  }
  const length = s.slice(slash + 1);
  if (/^(?:[1-9][0-9]{0,2}|0)$/.test(length))
    return Number(length) <= bits ? OK : { kind: 'invalid', why: 'prefix length out of range' };
  const signed = /^([+-]?)(0*)([0-9]{0,3})$/.exec(length);
  const n = signed ? Number(signed[3] || '0') : NaN;
  if (signed && `${signed[2]}${signed[3]}` !== '' && n <= bits && (signed[1] !== '-' || n === 0)) {
    const detail = `the prefix length ${JSON.stringify(length)} has a ${signed[1] ? 'sign' : 'leading zero'}`;
    // net.ParseCIDR read leading zeros but no sign; netip.ParsePrefix read both (strconv.Atoi)
    // until a Go release refused them.
    if (!netip) return signed[1] ? { kind: 'invalid', why: detail } : OK;
    return { kind: 'varies', why: detail };
  }
  return { kind: 'invalid', why: `bad prefix length ${JSON.stringify(length)}` };
}
