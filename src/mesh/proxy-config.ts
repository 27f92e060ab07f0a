import { isDeepStrictEqual } from 'node:util';
import yaml from 'js-yaml';

/** The pod annotation Istio's injector reads ProxyConfig overrides from. */
export const PROXY_CONFIG = 'proxy.istio.io/config';

export type ParsedProxyConfig = { ok: true; value: Record<string, unknown> } | { ok: false; problem: string };

/** Parses the annotation as Istio does (YAML); an empty value is an empty mapping. */
export function parseProxyConfig(text: string): ParsedProxyConfig {
  let value: unknown;
  try {
    value = yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (err) {
    return { ok: false, problem: (err as Error).message.split('\n')[0] ?? 'invalid YAML' };
  }
  if (value == null) return { ok: true, value: {} };
  if (typeof value !== 'object' || Array.isArray(value)) return { ok: false, problem: `it is ${Array.isArray(value) ? 'a list' : `a ${typeof value}`}` };
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * Adds `key: value` to the annotation text, keeping what the user wrote byte for byte (comments,
 * order, formatting): the line is appended to block-style YAML. Flow style (`{a: 1}`) cannot take a
 * line, so it is re-written as block YAML from the parsed mapping.
 */
export function withProxyConfigKey(text: string, parsed: Record<string, unknown>, key: string, value: boolean): string {
  const entry = `${key}: ${value}`;
  const body = text.trimEnd();
  if (body === '') return entry;
  const want = { ...parsed, [key]: value };
  const appended = `${body}\n${entry}\n`;
  const check = parseProxyConfig(appended);
  // Appending must mean exactly "one more key": not so after flow style, or a `|+` block at the end.
  if (check.ok && isDeepStrictEqual(check.value, want)) return appended;
  return yaml.dump(want, { schema: yaml.CORE_SCHEMA, lineWidth: -1 });
}
