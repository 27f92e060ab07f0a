import yaml from 'js-yaml';
import { pointer } from '../admission/patch.js';
import { isRecord } from '../guards.js';

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
/**
 * A ProxyConfig is a few hundred bytes. Re-writing YAML that has aliases costs quadratic time in
 * its nodes (js-yaml's writer looks for repeated nodes in a list of all of them), so the annotation
 * is only read up to this size; the API server allows 256 KiB of annotations.
 */
export const MAX_PROXY_CONFIG = 16 * 1024;

/**
 * ProxyConfig's proxyMetadata (environment of istio-proxy) in both spellings Istio reads: protojson
 * takes the JSON name and the proto field name (pkg/config/mesh MergeProxyConfig → protomarshal.ApplyYAML).
 */
export const PROXY_METADATA_KEYS = ['proxyMetadata', 'proxy_metadata'] as const;

/** The key a parsed ProxyConfig keeps its proxyMetadata under, if any. */
export const proxyMetadataKey = (parsed: Record<string, unknown>) =>
  PROXY_METADATA_KEYS.find((k) => Object.hasOwn(parsed, k));

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

/** `proxyMetadata:` alone on its line at column 0 (a comment may follow): a block mapping starts. */
const blockStart: Record<(typeof PROXY_METADATA_KEYS)[number], RegExp> = {
  proxyMetadata: /^proxyMetadata:[ \t]*(#.*)?$/,
  proxy_metadata: /^proxy_metadata:[ \t]*(#.*)?$/,
};

/**
 * Adds `name: "value"` to the annotation's proxyMetadata, keeping the rest (Istio merges this map
 * over the mesh's entry by entry: pkg/config/mesh MergeProxyConfig mergeMap). Byte for byte where
 * the text allows: a new `proxyMetadata:` block is appended, or the entry is inserted as the first
 * line of an existing block mapping; otherwise the YAML is re-written from the parsed mapping.
 * The map must be absent, empty or a mapping (the caller checks).
 */
export function withProxyMetadata(text: string, parsed: Record<string, unknown>, name: string, value: string): string {
  const key = proxyMetadataKey(parsed) ?? 'proxyMetadata';
  const current = parsed[key];
  const want = { ...parsed, [key]: { ...(isRecord(current) ? current : {}), [name]: value } };
  const entry = `${name}: ${JSON.stringify(value)}`;
  const body = text.trimEnd();
  let candidate: string | undefined;
  if (body === '') return `${key}:\n  ${entry}\n`;
  if (!Object.hasOwn(parsed, key)) candidate = `${body}\n${key}:\n  ${entry}\n`;
  else {
    // The entry becomes the block's first, indented as the next one is.
    const lines = body.split('\n');
    const at = lines.findIndex((l) => blockStart[key].test(l));
    if (at >= 0) {
      const next = lines.slice(at + 1).find((l) => l.trim() !== '' && !l.trim().startsWith('#'));
      const indent = /^([ ]+)\S/.exec(next ?? '')?.[1] ?? '  ';
      candidate = [...lines.slice(0, at + 1), `${indent}${entry}`, ...lines.slice(at + 1)].join('\n') + '\n';
    }
  }
  const check = candidate === undefined ? undefined : parseProxyConfig(candidate);
  if (candidate !== undefined && check?.ok && sameYaml(check.value, want)) return candidate;
  return yaml.dump(want, { schema: yaml.CORE_SCHEMA, lineWidth: -1, noRefs: !hasSharedNodes(want) });
}

/**
 * Two policies' texts of the annotation, both made from the same one by adding keys (never changing
 * one): the later text with what only the earlier one added. Each policy's own check then finds its
 * key, so the combined pod needs no further change.
 */
export function mergeProxyConfigs(earlier: string, later: string): string {
  const a = parseProxyConfig(earlier);
  let b = parseProxyConfig(later);
  if (!a.ok || !b.ok) return later;
  let text = later;
  for (const [key, value] of Object.entries(a.value)) {
    if (!b.ok) break;
    const mine = b.value[key];
    if (!Object.hasOwn(b.value, key) && typeof value === 'boolean') {
      text = withProxyConfigKey(text, b.value, key, value);
    } else if (
      (PROXY_METADATA_KEYS as readonly string[]).includes(key) &&
      isRecord(value) &&
      (mine == null || isRecord(mine))
    ) {
      for (const [name, v] of Object.entries(value)) {
        if (!b.ok) break;
        const have = b.value[key];
        if (typeof v === 'string' && !(isRecord(have) && Object.hasOwn(have, name)))
          text = withProxyMetadata(text, b.value, name, v);
        b = parseProxyConfig(text);
      }
    } else if (!Object.hasOwn(b.value, key)) {
      const want = { ...b.value, [key]: value };
      text = yaml.dump(want, { schema: yaml.CORE_SCHEMA, lineWidth: -1, noRefs: !hasSharedNodes(want) });
    }
    b = parseProxyConfig(text);
  }
  return text;
}

const PROXY_CONFIG_PATH = pointer('metadata', 'annotations', PROXY_CONFIG);

/**
 * For mergePatches: two policies setting proxy.istio.io/config in one review (hold and drain) give
 * one annotation with both their keys; any other path keeps the later value.
 */
export function combineProxyConfig(path: string, earlier: unknown, later: unknown): unknown {
  // A pod's annotation, or (in `check`) a workload template's: the path ends the same.
  return path.endsWith(PROXY_CONFIG_PATH) && typeof earlier === 'string' && typeof later === 'string'
    ? mergeProxyConfigs(earlier, later)
    : later;
}
