// Shared test helpers: build an engine from plain data, and turn decisions into plain data.
import yaml from 'js-yaml';
export { requestFor } from '../src/admission/request.js';
import { MemoryClusterView, clusterOff } from '../src/cluster/memory.js';
import type { ClusterView } from '../src/cluster/view.js';
import { parseConfig } from '../src/config/parse.js';
import type { Config } from '../src/config/types.js';
import type { Engine } from '../src/engine/evaluate.js';
import { Registry } from '../src/engine/registry.js';
import { compileScope } from '../src/config/scope.js';
import type { Decision, Policy } from '../src/engine/types.js';
import { discoverMesh } from '../src/mesh/discover.js';
import { resolveProfile } from '../src/mesh/profile.js';

/** A configuration from a partial one: the schema fills the rest with defaults. */
export function configOf(partial: unknown = {}): Config {
  const parsed = parseConfig(yaml.dump(partial));
  if (!parsed.ok) throw new Error(`bad test config: ${parsed.errors.join('; ')}`);
  return parsed.config;
}

export function engineOf(opts: {
  policies: readonly Policy[];
  config?: Config;
  cluster?: ClusterView | readonly unknown[] | 'off';
  /** The cluster objects are every Service of their namespaces, as a live cluster's are. */
  servicesComplete?: boolean;
  /** The cluster objects are every Pod of the cluster, as `meshguard audit`'s listing is. */
  podsListed?: boolean;
  selfNamespace?: string;
}): Engine {
  const cluster =
    opts.cluster === 'off'
      ? clusterOff
      : Array.isArray(opts.cluster)
        ? MemoryClusterView.fromObjects(opts.cluster, opts.servicesComplete, opts.podsListed)
        : ((opts.cluster as ClusterView | undefined) ?? new MemoryClusterView());
  const config = opts.config ?? configOf();
  return {
    registry: new Registry(opts.policies),
    scope: compileScope(config, opts.selfNamespace),
    cluster,
    // Istio's objects among the case's objects (webhooks, ConfigMaps, istiod, Nodes), then `mesh:`.
    mesh: resolveProfile(config.mesh, discoverMesh(Array.isArray(opts.cluster) ? opts.cluster : [])),
  };
}

/** Decisions as plain data, as golden cases record them. */
export function plain(decisions: readonly Decision[]): unknown[] {
  return decisions.map(({ policy, mode, subject, outcome }) => ({
    policy,
    subject,
    mode,
    ...(outcome.result === 'error' ? { result: 'error', message: outcome.error.message } : outcome),
  }));
}
