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
  /**
   * Every policy's mode in a namespace, overrides and the global mode applied ('' for cluster-scoped
   * objects), with its options: what the engine reads per policy, in one lookup.
   */
  settingsIn(namespace: string): ReadonlyMap<PolicyId, PolicyScope>;
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

/** A policy's mode in a namespace, and its options. */
export interface PolicyScope {
  mode: Mode;
  options: Config['policies'][PolicyId];
}

interface NamespaceScope {
  excluded: boolean;
  policies: ReadonlyMap<PolicyId, PolicyScope>;
}

export function compileScope(config: Config, selfNamespace?: string): Scope {
  const excludedMatch = matcher(
    selfNamespace ? [...config.excludeNamespaces, selfNamespace] : config.excludeNamespaces,
  );
  const overrides = config.overrides.map((o) => ({ override: o, match: matcher(o.namespaces) }));
  const ids = Object.keys(config.policies) as PolicyId[];
  const policiesUnder = (override: Override | null): ReadonlyMap<PolicyId, PolicyScope> =>
    new Map(
      ids.map((policy) => {
        const mode = override?.policies?.[policy]?.mode ?? config.policies[policy].mode;
        const cap = override?.mode ?? config.mode;
        return [
          policy,
          { mode: mode === 'off' ? 'off' : cap === 'warn' ? 'warn' : mode, options: config.policies[policy] },
        ];
      }),
    );
  const unscoped: NamespaceScope = { excluded: false, policies: policiesUnder(null) };
  // Whether a namespace is excluded, and the modes its override gives, worked out once per
  // namespace: matching globs, and looking each policy's mode up, on every request cost more than
  // one lookup. Namespaces are few and long-lived; the memo dies with this config, and its bound
  // only matters if someone other than the API server sends made-up namespaces. Longer names than
  // a namespace can have are neither matched nor kept.
  const namespaceScope = memoize(
    (ns): NamespaceScope => {
      if (ns.length > MAX_NAMESPACE_NAME) return unscoped;
      const override = overrides.find((o) => o.match(ns))?.override ?? null;
      return { excluded: excludedMatch(ns), policies: override ? policiesUnder(override) : unscoped.policies };
    },
    10_000,
    MAX_NAMESPACE_NAME,
  );
  // Cluster-scoped objects have no namespace to exclude them by, nor an override.
  const scopeOf = (ns: string) => (ns === '' ? unscoped : namespaceScope(ns));

  return {
    config,
    excluded: (ns) => scopeOf(ns).excluded,
    settingsIn: (ns) => scopeOf(ns).policies,
    modeOf: (policy, ns) => scopeOf(ns).policies.get(policy)?.mode ?? 'off',
  };
}
