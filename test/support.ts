// Shared test helpers: build an engine from plain data, and turn decisions into plain data.
import yaml from 'js-yaml';
import type { AdmissionRequest, KubeObject, Operation } from '../src/admission/types.js';
import { MemoryClusterView, clusterOff } from '../src/cluster/memory.js';
import type { ClusterView } from '../src/cluster/view.js';
import { parseConfig } from '../src/config/parse.js';
import type { Config } from '../src/config/types.js';
import type { Engine } from '../src/engine/evaluate.js';
import { Registry } from '../src/engine/registry.js';
import { compileScope } from '../src/engine/scope.js';
import type { Decision, Policy } from '../src/engine/types.js';

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
  selfNamespace?: string;
}): Engine {
  const cluster =
    opts.cluster === 'off' ? clusterOff : Array.isArray(opts.cluster) ? MemoryClusterView.fromObjects(opts.cluster) : ((opts.cluster as ClusterView | undefined) ?? new MemoryClusterView());
  return { registry: new Registry(opts.policies), scope: compileScope(opts.config ?? configOf(), opts.selfNamespace), cluster };
}

/** An AdmissionRequest for an object, as the API server would send it. */
export function requestFor(object: KubeObject, opts: { operation?: Operation; namespace?: string; oldObject?: KubeObject | null; uid?: string } = {}): AdmissionRequest {
  const [group, version] = (object.apiVersion ?? 'v1').includes('/') ? (object.apiVersion ?? '').split('/') : ['', object.apiVersion ?? 'v1'];
  return {
    uid: opts.uid ?? '00000000-0000-0000-0000-000000000000',
    kind: { group: group ?? '', version: version ?? 'v1', kind: object.kind ?? '' },
    operation: opts.operation ?? 'CREATE',
    namespace: opts.namespace ?? object.metadata?.namespace ?? 'default',
    object,
    oldObject: opts.oldObject ?? null,
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
