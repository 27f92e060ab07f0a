// Small guards that narrow `unknown` (from the network, YAML or the API) before it is read.

/** A JSON object: not null, not an array. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value's JSON type as a message names it ("a number", "an array", "null"), never its content. */
export function jsonTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

/**
 * An object's name for messages. A malformed one (from a manifest file: the API server refuses it
 * before validating webhooks) is named by what is wrong rather than left blank, and its content is
 * never turned into text — a deeply nested value would overflow the stack.
 */
export function nameForMessage(object: { metadata?: unknown }): string {
  const meta = object.metadata;
  if (meta === undefined) return '<no metadata>';
  if (!isRecord(meta)) return `<metadata is ${jsonTypeOf(meta)}>`;
  for (const key of ['name', 'generateName'] as const) {
    const v = meta[key];
    if (typeof v === 'string' && v !== '') return v;
  }
  if (meta.name !== undefined && typeof meta.name !== 'string') return `<metadata.name is ${jsonTypeOf(meta.name)}>`;
  return '<no metadata.name>';
}
