// How Go's standard library reads text, where Istio's injector relies on it: the same strings
// must be read the same way, or meshguard would deny what Istio accepts (or the reverse).

/**
 * Runes Go's unicode.IsSpace reports (Latin-1 spaces, then the White_Space property), which
 * strings.TrimSpace strips. Not JavaScript's trim: that strips U+FEFF and keeps U+0085.
 */
const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/**
 * Go's strings.TrimSpace. A scan from each end: an anchored pattern like /\s+$/ backtracks
 * quadratically on a long run of spaces that does not end the text, and the text is the user's.
 */
export function goTrimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && GO_SPACE.test(s.charAt(start))) start++;
  while (end > start && GO_SPACE.test(s.charAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** Go's unicode.IsControl over the string's runes: C0 controls, DEL and C1 controls. */
export function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) return true;
  }
  return false;
}

/**
 * Go's strconv.ParseUint(s, 10, bits): ASCII digits only (no sign, no spaces, no underscores in
 * base 10), leading zeros allowed, at most 2^bits - 1. undefined where Go returns an error.
 */
export function parseUint(s: string, bits: 16 | 32): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const digits = s.replace(/^0+(?=.)/, '');
  // Longer than any value in range: Number() would lose precision, and it is out of range anyway.
  if (digits.length > 10) return undefined;
  const n = Number(digits);
  return n <= 2 ** bits - 1 ? n : undefined;
}
