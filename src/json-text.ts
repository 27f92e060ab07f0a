// JSON text written on the hot path. On Node 20, every JSON.stringify call has a fixed cost before
// it writes a character, several times what checking a uid or a name costs (cost and equivalence
// test: the ledger in bench/RESULTS.md). fast-json-stringify writes strings the same way.

/** Strings JSON.stringify writes as they are, between quotes: no `"`, `\`, control characters or surrogates. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** A string as JSON text, exactly as JSON.stringify writes it. */
export function jsonString(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

/** A value as JSON text, exactly as JSON.stringify writes it (undefined for undefined, as it does). */
export function jsonValue(v: unknown): string | undefined {
  return typeof v === 'string' ? jsonString(v) : JSON.stringify(v);
}
