// Small guards that narrow `unknown` (from the network, YAML or the API) before it is read.

/** A JSON object: not null, not an array. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
