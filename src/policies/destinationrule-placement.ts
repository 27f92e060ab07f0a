import type { Policy } from '../engine/types.js';
import { destinationRuleRecord } from '../cluster/records.js';
import { shadowedBy } from '../mesh/destination-rules.js';
import { resolveHost } from '../mesh/hosts.js';
import { isRecord, jsonTypeOf, nameForMessage } from '../guards.js';

// Istio's lookup, in istio/istio pilot/pkg/model/push_context.go `destinationRule` (the same order
// from 1.11 on): for a client in namespace C and a host of namespace H, the first of
//   1. C's own rules: every rule in C whose exportTo is unset or holds `*`, `.` or C
//      (`setDestinationRules`, namespaceLocal; in the root namespace, its private rules only);
//   2. H's rules exported to C: exportTo unset, `*` or C — `.` is not exported
//      (`getExportedDestinationRuleFromNamespace`);
//   3. the root namespace's rules exported to C (meshConfig.rootNamespace);
// that has a rule for the host, the most specific host within that namespace (`MostSpecificHostMatch`,
// pilot/pkg/model/config.go). H is the Service's namespace, or the ServiceEntry's for its hosts
// (pilot/pkg/serviceregistry/serviceentry/conversion.go). Short hosts expand with the rule's own
// namespace; a host with a dot is taken literally (`ResolveShortnameToFQDN`, config.go).

const MAX_NAMED = 3;

/** The rule's exportTo, unset or empty meaning the mesh default (`*`, pkg/config/mesh/mesh.go). */
const exportList = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

const policy: Policy<'destinationrule-placement'> = {
  id: 'destinationrule-placement',
  action: 'validate',
  targets: [{ group: 'networking.istio.io', kind: 'DestinationRule', operations: ['CREATE', 'UPDATE'] }],
  explain: (mesh) => ({
    exists: true,
    why: `acts: Istio reads a DestinationRule from the client's, the host's or the root namespace (${mesh.rootNamespace})`,
  }),
  evaluate({ object, namespace, config, cluster, mesh }) {
    const name = `${namespace}/${nameForMessage(object)}`;
    const spec = isRecord(object.spec) ? object.spec : {};
    const host = spec.host;
    if (host !== undefined && typeof host !== 'string') {
      return {
        result: 'fail',
        message: `DestinationRule ${name}: spec.host is ${jsonTypeOf(host)}, not a string; set it to the service's host name`,
      };
    }
    if (host === undefined || host === '') {
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
    const root = mesh.rootNamespace;
    const warnings: string[] = [];

    // An ExternalName Service is an alias from 1.21 (ENABLE_EXTERNAL_NAME_ALIAS): no cluster of its
    // own (pilot/pkg/networking/core/cluster.go skips model.Alias), so "DestinationRule cannot be
    // applied to the ExternalName service" (the flag's help, pilot/pkg/features/pilot.go 1.21).
    const service =
      resolved.kind === 'short'
        ? cluster.service(namespace, host)
        : resolved.kind === 'cluster' && resolved.name !== '*'
          ? cluster.service(resolved.namespace, resolved.name)
          : undefined;
    if (service?.type === 'ExternalName' && service.externalName && mesh.features.externalNameAlias) {
      warnings.push(
        `host ${host} is an ExternalName Service, a DNS alias on Istio ≥ 1.21: this rule applies to nothing; write it for ${service.externalName}`,
      );
    }

    // `*.<own namespace>.svc.<domain>` matches only this namespace's Services, which step 1 reads anyway.
    const shadows = host.startsWith('*') && host !== `*.${namespace}.svc.${config.clusterDomain}`;

    // A rule with a workloadSelector is forced private (exportTo ".", setDestinationRules) and used
    // only by matching sidecars of its own namespace (SidecarScope.DestinationRule,
    // pilot/pkg/model/sidecar.go), from Istio 1.14; before that the selector is not read at all.
    if (isRecord(spec.workloadSelector)) {
      if (mesh.features.workloadSelectorDestinationRules) {
        // Still found by step 1 for every sidecar of the namespace; one it does not select then
        // gets the last rule without a selector for that host, or none (SidecarScope.DestinationRule).
        if (shadows && namespace !== root) {
          warnings.push(
            `clients in ${namespace} use this rule for every host matching ${host} when it selects them, and no rule at all when it doesn't (unless one without a selector for ${host} is in ${namespace})`,
          );
        }
        return warnings.length > 0 ? { result: 'warn', warnings } : { result: 'pass' };
      }
      warnings.push('workloadSelector is ignored before Istio 1.14: this rule applies to every client that reads it');
    }

    const exportTo = exportList(spec.exportTo);
    // Step 1 reads it for its own namespace's clients only if its exportTo lets them.
    const ownClientsRead =
      exportTo.length === 0 || exportTo.includes('*') || exportTo.includes('.') || exportTo.includes(namespace);
    const explicitlyLocal = exportTo.length === 1 && (exportTo[0] === '.' || exportTo[0] === namespace);

    // Shadowing: a wildcard in a client namespace answers step 1 for every host it matches, so those
    // clients never reach the hosts' own rules or the root namespace's, however specific.
    if (shadows && namespace !== root && ownClientsRead) {
      // The rules it hides from them, where the view holds them (the root namespace's, the host namespace's).
      const record = destinationRuleRecord(object, namespace);
      const hidden = record ? shadowedBy(record, cluster, config.clusterDomain, root) : [];
      const names = hidden.slice(0, MAX_NAMED).map((r) => `${r.namespace}/${r.name}`);
      const rest = hidden.length > MAX_NAMED ? ` (+${hidden.length - MAX_NAMED} more)` : '';
      warnings.push(
        names.length > 0
          ? `clients in ${namespace} use this rule for every host matching ${host} (Istio reads the client's namespace first), so never ${names.join(', ')}${rest}`
          : `clients in ${namespace} use this rule for every host matching ${host}, never those hosts' own rules or ${root}'s (Istio reads the client's namespace first)`,
      );
    }

    // The namespaces whose rules step 2 reads for this host.
    let homes: string[] | undefined;
    if (resolved.kind === 'short') homes = [namespace];
    else if (resolved.kind === 'cluster' || resolved.kind === 'other') {
      const entries = resolved.kind === 'cluster' && resolved.name === '*' ? [] : cluster.serviceEntriesWithHost(host);
      const found = new Set(resolved.kind === 'cluster' ? [resolved.namespace] : []);
      for (const se of entries) found.add(se.namespace);
      if (found.size > 0) homes = [...found].sort();
    }
    if (homes === undefined || namespace === root || homes.includes(namespace) || explicitlyLocal) {
      return warnings.length > 0 ? { result: 'warn', warnings } : { result: 'pass' };
    }
    const places = [...new Set([...homes, root])];
    const message = ownClientsRead
      ? `DestinationRule ${name} for ${host} is only seen by clients in ${namespace}; move it to ${places.join(' or ')}, or set exportTo: ["."]`
      : `DestinationRule ${name} for ${host} is read by no client (exportTo leaves out ${namespace}, the only namespace that reads it here); move it to ${places.join(' or ')}`;
    return warnings.length > 0 ? { result: 'fail', message, warnings } : { result: 'fail', message };
  },
};

export default policy;
