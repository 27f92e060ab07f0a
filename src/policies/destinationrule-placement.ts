import type { Policy } from '../engine/types.js';
import { resolveHost } from '../mesh/hosts.js';
import { isRecord } from '../guards.js';

/**
 * Istio looks a DestinationRule up in the client's namespace, then the host's, then the root
 * namespace. One anywhere else is silently ignored by every client outside its own namespace.
 */
const policy: Policy<'destinationrule-placement'> = {
  id: 'destinationrule-placement',
  action: 'validate',
  targets: [{ group: 'networking.istio.io', kind: 'DestinationRule', operations: ['CREATE', 'UPDATE'] }],
  evaluate({ object, namespace, config, cluster, mesh }) {
    // Only strings: an object here would be turned into text, and a deeply nested one overflows the stack.
    const own = [object.metadata?.name, object.metadata?.generateName].find((n) => typeof n === 'string') ?? '';
    const name = `${namespace}/${own}`;
    const spec = isRecord(object.spec) ? object.spec : {};
    const host = spec.host;
    if (typeof host !== 'string' || host === '') {
      return { result: 'fail', message: `DestinationRule ${name} has no spec.host; set the service it applies to` };
    }
    const resolved = resolveHost(host, config.clusterDomain, (ns) => cluster.namespaceLabels(ns) !== undefined);
    if (resolved.kind === 'unexpanded') {
      return {
        result: 'warn',
        warnings: [
          `host ${host} matches no Kubernetes Service (Istio takes names with a dot literally); write ${resolved.fqdn}`,
        ],
      };
    }
    if (resolved.kind !== 'cluster') return { result: 'pass' };
    const home = resolved.namespace;
    if (namespace === home || namespace === mesh.rootNamespace) return { result: 'pass' };
    // Explicitly local: the author means it for this namespace's clients only.
    const exportTo = spec.exportTo;
    if (Array.isArray(exportTo) && exportTo.length === 1 && (exportTo[0] === '.' || exportTo[0] === namespace)) {
      return { result: 'pass' };
    }
    return {
      result: 'fail',
      message: `DestinationRule ${name} for ${host} is only seen by clients in ${namespace}; move it to ${home} or ${mesh.rootNamespace}, or set exportTo: ["."]`,
    };
  },
};

export default policy;
