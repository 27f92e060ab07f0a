import picomatch from 'picomatch';
import { memoize } from '../memo.js';
import type { Config, Mode, Override, PolicyId } from './types.js';

/**
 * A configuration made ready for the hot path: namespace globs compiled once, and the override
 * that applies to a namespace remembered, so a request costs map lookups only.
 */
export interface Scope {
  readonly config: Config;
  excluded(namespace: string): boolean;
  /** Every policy's mode in a namespace, overrides and the global mode applied ('' for cluster-scoped objects). */
  modesIn(namespace: string): ReadonlyMap<PolicyId, Mode>;
  modeOf(policy: PolicyId, namespace: string): Mode;
}

function matcher(patterns: readonly string[]): (ns: string) => boolean {
  return picomatch([...patterns], { dot: true });
}

/**
 * Namespace names are DNS labels of at most 63 characters, and the API server only sends those.
 * Anything else (from a caller other than the API server) matches no pattern: a glob with several
 * stars backtracks polynomially on a long name (`*-*-*-tmp` took 11 s on 4 000 dashes), and the
 * memo of namespaces would keep each such name.
 */
const MAX_NAMESPACE_NAME = 63;

interface NamespaceScope {
  excluded: boolean;
  modes: ReadonlyMap<PolicyId, Mode>;
}

export function compileScope(config: Config, selfNamespace?: string): Scope {
  const excludedMatch = matcher(
    selfNamespace ? [...config.excludeNamespaces, selfNamespace] : config.excludeNamespaces,
  );
  const overrides = config.overrides.map((o) => ({ override: o, match: matcher(o.namespaces) }));
  const ids = Object.keys(config.policies) as PolicyId[];
  const modesUnder = (override: Override | null): ReadonlyMap<PolicyId, Mode> =>
    new Map(
      ids.map((policy) => {
        const mode = override?.policies?.[policy]?.mode ?? config.policies[policy].mode;
        const cap = override?.mode ?? config.mode;
        return [policy, mode === 'off' ? 'off' : cap === 'warn' ? 'warn' : mode];
      }),
    );
  const unscoped: NamespaceScope = { excluded: false, modes: modesUnder(null) };
  // Whether a namespace is excluded, and the modes its override gives, worked out once per
  // namespace: matching globs, and looking each policy's mode up, on every request cost more than
  // one lookup. Namespaces are few and long-lived; the memo dies with this config, and its bound
  // only matters if someone other than the API server sends made-up namespaces. Longer names than
  // a namespace can have are neither matched nor kept.
  const namespaceScope = memoize(
    (ns): NamespaceScope => {
      if (ns.length > MAX_NAMESPACE_NAME) return unscoped;
      const override = overrides.find((o) => o.match(ns))?.override ?? null;
      return { excluded: excludedMatch(ns), modes: override ? modesUnder(override) : unscoped.modes };
    },
    10_000,
    MAX_NAMESPACE_NAME,
  );
  // Cluster-scoped objects have no namespace to exclude them by, nor an override.
  const scopeOf = (ns: string) => (ns === '' ? unscoped : namespaceScope(ns));

  return {
    config,
    excluded: (ns) => scopeOf(ns).excluded,
    modesIn: (ns) => scopeOf(ns).modes,
    modeOf: (policy, ns) => scopeOf(ns).modes.get(policy) ?? 'off',
  };
}
