import type { Policy } from '../engine/types.js';
import { serviceRecord } from '../cluster/records.js';

const MAX_NAMED = 3;
const isTcp = (protocol: string | undefined) => protocol === undefined || protocol.toUpperCase() === 'TCP';
// DNS names compare case-insensitively, with or without the root dot.
const canonical = (host: string) => host.toLowerCase().replace(/\.$/, '');

/**
 * Istio routes plain TCP by port alone when a host has no address of its own, as ExternalName
 * Services don't: two of them on one port share a listener, and database A's traffic reaches B.
 */
const policy: Policy<'externalname-tcp-collision'> = {
  id: 'externalname-tcp-collision',
  action: 'validate',
  targets: [{ group: '', kind: 'Service', operations: ['CREATE', 'UPDATE'] }],
  evaluate({ object, namespace, cluster }) {
    // The Service as it will be stored: in the request's namespace, whatever its metadata says.
    const self = serviceRecord(object, namespace);
    if (!self || self.type !== 'ExternalName' || self.externalName === undefined) {
      return { result: 'skip', reason: 'not an ExternalName Service' };
    }
    const host = canonical(self.externalName);
    const colliding = new Map<string, number>(); // "Service ns/name" → port
    for (const { port, protocol } of self.ports) {
      if (!isTcp(protocol)) continue;
      for (const other of cluster.externalNamesOnPort(port)) {
        if (other.namespace === self.namespace && other.name === self.name) continue;
        if (other.externalName === undefined || canonical(other.externalName) === host) continue;
        if (other.ports.some((p) => p.port === port && isTcp(p.protocol)))
          colliding.set(`Service ${other.namespace}/${other.name}`, port);
      }
      for (const se of cluster.serviceEntriesOnPort(port)) {
        if (se.addresses.length > 0 || se.hosts.some((h) => canonical(h) === host)) continue;
        if (se.ports.some((p) => p.number === port && isTcp(p.protocol)))
          colliding.set(`ServiceEntry ${se.namespace}/${se.name}`, port);
      }
    }
    if (colliding.size === 0) return { result: 'pass' };
    const names = [...colliding.keys()].sort();
    const ports = [...new Set(colliding.values())].sort((a, b) => a - b).join(',');
    const listed =
      names.slice(0, MAX_NAMED).join(', ') + (names.length > MAX_NAMED ? ` +${names.length - MAX_NAMED} more` : '');
    return {
      result: 'fail',
      message: `TCP port ${ports} also carries ${listed} to ${names.length > 1 ? 'other hosts' : 'another host'} (Istio routes TCP by port alone); use a ServiceEntry with explicit addresses`,
    };
  },
};

export default policy;
