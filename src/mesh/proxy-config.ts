import yaml from 'js-yaml';

/** The pod annotation Istio's injector reads ProxyConfig overrides from. */
export const PROXY_CONFIG = 'proxy.istio.io/config';

/** The ProxyConfig key that holds the app until the proxy is ready, as meshguard writes it. */
export const HOLD = 'holdApplicationUntilProxyStarts';
/**
 * Istio reads the annotation as YAML into the ProxyConfig proto (pkg/config/mesh ApplyProxyConfig →
 * protomarshal.ApplyYAML), and protojson takes the proto field name too: either spelling is the
 * pod's own value.
 */
const HOLD_SNAKE = 'hold_application_until_proxy_starts';

/**
 * What a pod's own ProxyConfig (parsed) says about holdApplicationUntilProxyStarts: undefined when
 * it names the key in neither spelling; otherwise whether it holds, which only a YAML true does
 * (the field is a BoolValue). The hold policy leaves any value alone; the conformance runner
 * predicts Istio's injection with it.
 */
export function ownHold(config: Readonly<Record<string, unknown>>): boolean | undefined {
  if (Object.hasOwn(config, HOLD)) return config[HOLD] === true;
  if (Object.hasOwn(config, HOLD_SNAKE)) return config[HOLD_SNAKE] === true;
  return undefined;
}

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
  if (typeof value !== 'object' || Array.isArray(value))
    return { ok: false, problem: `it is ${Array.isArray(value) ? 'a list' : `a ${typeof value}`}` };
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * Deep equality of parsed YAML (mappings, sequences, scalars) in time linear in its distinct nodes.
 * Aliases make a graph whose paths can be exponentially many (`&a [x, x]`, `&b [*a, *a]`, …: a
 * "billion laughs" of a few hundred bytes), which a plain deep comparison walks one by one. A pair
 * of nodes is compared once; a pair being compared counts as equal, which also ends cycles.
 */
function sameYaml(a: unknown, b: unknown, seen = new Map<object, Set<object>>()): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  let pairs = seen.get(a);
  if (pairs?.has(b)) return true;
  if (!pairs) seen.set(a, (pairs = new Set()));
  pairs.add(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameYaml(v, b[i], seen));
  }
  const ka = Object.keys(a);
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(rb, k) && sameYaml(ra[k], rb[k], seen));
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
  if (check.ok && sameYaml(check.value, want)) return appended;
  // Anchors only when the text had aliases: finding repeated nodes costs quadratic time.
  return yaml.dump(want, { schema: yaml.CORE_SCHEMA, lineWidth: -1, noRefs: !hasSharedNodes(want) });
}

/** Whether a node is reachable twice (YAML aliases), in linear time. */
function hasSharedNodes(value: unknown, seen = new Set<object>()): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (seen.has(value)) return true;
  seen.add(value);
  return Object.values(value).some((v) => hasSharedNodes(v, seen));
}
