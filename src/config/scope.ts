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
  override: Override | null;
}
const notANamespace: NamespaceScope = { excluded: false, override: null };

export function compileScope(config: Config, selfNamespace?: string): Scope {
  const excludedMatch = matcher(
    selfNamespace ? [...config.excludeNamespaces, selfNamespace] : config.excludeNamespaces,
  );
  const overrides = config.overrides.map((o) => ({ override: o, match: matcher(o.namespaces) }));
  // Whether a namespace is excluded, and its override, worked out once per namespace: matching
  // globs on every request cost more than the lookup. Namespaces are few and long-lived; the memo
  // dies with this config, and its bound only matters if someone other than the API server sends
  // made-up namespaces. Longer names than a namespace can have are neither matched nor kept.
  const namespaceScope = memoize(
    (ns): NamespaceScope =>
      ns.length <= MAX_NAMESPACE_NAME
        ? { excluded: excludedMatch(ns), override: overrides.find((o) => o.match(ns))?.override ?? null }
        : notANamespace,
    10_000,
    MAX_NAMESPACE_NAME,
  );

  return {
    config,
    // Cluster-scoped objects have no namespace to exclude them by.
    excluded: (ns) => ns !== '' && namespaceScope(ns).excluded,
    modeOf(policy, ns) {
      const override = ns === '' ? null : namespaceScope(ns).override;
      const mode = override?.policies?.[policy]?.mode ?? config.policies[policy].mode;
      if (mode === 'off') return 'off';
      const cap = override?.mode ?? config.mode;
      return cap === 'warn' ? 'warn' : mode;
    },
  };
}
