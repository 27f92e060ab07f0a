import type { Policy } from '../engine/types.js';
import type { ServiceEntryRecord, ServiceRecord } from '../cluster/view.js';
import { serviceEntryRecord, serviceRecord } from '../cluster/records.js';
import { meet, visibility, type Visibility } from '../mesh/hosts.js';
import type { MeshProfile } from '../mesh/profile.js';
import { serviceEntryProtocol, serviceProtocol, type Protocol } from '../mesh/protocol.js';
import { showVersion } from '../mesh/releases.js';

// Istio's sidecar builds one outbound TCP listener per address and port. An object with no address
// of its own binds 0.0.0.0:<port>; on that listener plain TCP has nothing but the port to go by, so
// a second such object on the port gets an identical filter chain, which Istio drops (TCPOverTCP in
// mergeTCPFilterChains): its connections go to the first one's host. Sources, all under istio/istio:
//   pilot/pkg/networking/core/listener.go  buildSidecarOutboundListener, mergeTCPFilterChains
//   pilot/pkg/networking/core/tls.go       TLS/HTTPS chains match on SNI (sniHosts) instead
//   pilot/pkg/serviceregistry/kube/conversion.go  ConvertService: ExternalName → model.Alias (≥ 1.21)
//   pilot/pkg/serviceregistry/serviceentry/conversion.go  no addresses → 0.0.0.0 per host
//   pilot/pkg/model/service.go             GetAddressForProxy, nodeUsesAutoallocatedIPs

/**
 * What an object is to the sidecar's listener on one TCP port:
 * - owner: binds 0.0.0.0:<port> and sends every connection there to its own host (a ServiceEntry
 *   without addresses resolved DNS or STATIC; an ExternalName Service before Istio 1.21);
 * - passthrough: binds 0.0.0.0:<port> but forwards to the original destination (resolution NONE):
 *   mixes nothing itself, and loses its traffic to an owner on the port;
 * - alias: no listener (an ExternalName Service from 1.21): its connections, to the external host's
 *   IP, land on an owner's 0.0.0.0:<port>.
 */
type Role = 'owner' | 'passthrough' | 'alias';

interface Party {
  label: string;
  kind: 'Service' | 'ServiceEntry';
  role: Role;
  /** Where its traffic goes. */
  hosts: ReadonlySet<string>;
  /** Namespaces whose sidecars have its listener; an alias is reached by DNS from anywhere. */
  seen: Visibility;
}

const MAX_NAMED = 3;
// DNS names compare case-insensitively, with or without the root dot.
const canonical = (host: string) => host.toLowerCase().replace(/\.$/, '');

// Istio's protocol of a port (src/mesh/protocol.ts): anything Parse does not know is Unsupported:
// auto-detected, with a TCP filter chain beside the HTTP one. HTTP-family ports are routed by Host
// and TLS/HTTPS by SNI (tls.go); UDP gets no listener. Everything else — TCP, MONGO, MYSQL, REDIS,
// unset, unknown — is plain TCP to the listener
// (pilot/pkg/networking/networking.go ModelProtocolToListenerProtocol). Istio's own validation
// calls this out: "for plain TCP there is no way to differentiate between the hosts"
// (pkg/config/validation/validation.go, ServiceEntry, `!p.IsHTTP() && !p.IsTLS()`).
const NOT_PLAIN_TCP: ReadonlySet<Protocol> = new Set<Protocol>([
  'HTTP',
  'HTTP2',
  'HTTP_PROXY',
  'GRPC',
  'GRPC-Web',
  'HTTPS',
  'TLS',
  'UDP',
]);
const plainTcp = (protocol: Protocol) => !NOT_PLAIN_TCP.has(protocol);

function serviceParty(svc: ServiceRecord, port: number, mesh: MeshProfile): Party | undefined {
  if (svc.type !== 'ExternalName' || !svc.externalName) return undefined;
  if (!svc.ports.some((p) => p.port === port && plainTcp(serviceProtocol(p, mesh.features)))) return undefined;
  return {
    label: `Service ${svc.namespace}/${svc.name}`,
    kind: 'Service',
    // ENABLE_EXTERNAL_NAME_ALIAS: added off in 1.20, on from 1.21, the only behaviour from 1.24.
    role: mesh.features.externalNameAlias ? 'alias' : 'owner',
    hosts: new Set([canonical(svc.externalName)]),
    seen: mesh.features.externalNameAlias ? 'all' : visibility(svc.exportTo, svc.namespace),
  };
}

/**
 * Sidecars give an entry without addresses the address Istio's allocator chose only when they
 * capture DNS (nodeUsesAutoallocatedIPs, 1.24+). The allocator (pilot/pkg/controllers/ipallocate,
 * PILOT_ENABLE_IP_AUTOALLOCATE) is on by default from 1.25 and takes every entry but resolution
 * NONE, those labelled enable-autoallocate-ip "false", and wildcard hosts
 * (pilot/pkg/networking/serviceentry/ip_autoallocation.go). Before 1.25 sidecars also need
 * ISTIO_META_DNS_AUTO_ALLOCATE, which the mesh profile does not know: assumed off.
 */
function usesAllocatedAddress(se: ServiceEntryRecord, mesh: MeshProfile): boolean {
  if (!mesh.dnsCapture || !mesh.features.allocatedAddressesWithDnsCapture) return false;
  if (se.allocated) return true;
  return mesh.features.ipAutoallocateByDefault && !se.autoAllocateOptOut && se.hosts.every((h) => !h.startsWith('*'));
}

function entryParty(se: ServiceEntryRecord, port: number, mesh: MeshProfile): Party | undefined {
  // Addresses (IPs or CIDRs) give it a listener or filter chain of its own.
  if (se.addresses.length > 0) return undefined;
  if (!se.ports.some((p) => p.number === port && plainTcp(serviceEntryProtocol(p.protocol, mesh.features))))
    return undefined;
  let role: Role;
  if (se.resolution === 'NONE') role = 'passthrough';
  else if (usesAllocatedAddress(se, mesh)) return undefined;
  else role = 'owner'; // DNS, DNS_ROUND_ROBIN, STATIC (DYNAMIC_DNS takes no plain TCP port: validation.go)
  return {
    label: `ServiceEntry ${se.namespace}/${se.name}`,
    kind: 'ServiceEntry',
    role,
    hosts: new Set(se.hosts.map(canonical)),
    seen: visibility(se.exportTo, se.namespace),
  };
}

/** Two parties on one port mix traffic: one owns the port, they go to different hosts, and some sidecar has both. */
function collide(a: Party, b: Party): boolean {
  if (a.role !== 'owner' && b.role !== 'owner') return false;
  for (const h of a.hosts) if (b.hosts.has(h)) return false;
  return meet(a.seen, b.seen);
}

function fix(owners: readonly Party[], mesh: MeshProfile): string {
  if (owners.some((o) => o.kind === 'Service')) return 'use ServiceEntries with addresses';
  if (!mesh.features.ipAutoallocateByDefault) {
    return mesh.dnsCapture
      ? 'set addresses, or turn on ISTIO_META_DNS_AUTO_ALLOCATE'
      : 'set addresses, or turn on DNS capture and ISTIO_META_DNS_AUTO_ALLOCATE';
  }
  // With DNS capture on 1.25+, only an entry the allocator skips (opt-out label, wildcard host) owns the port.
  if (mesh.dnsCapture) return "set addresses (Istio's auto-allocation skips it)";
  return 'set addresses, or turn on DNS capture to use auto-allocated ones';
}

const policy: Policy<'externalname-tcp-collision'> = {
  id: 'externalname-tcp-collision',
  action: 'validate',
  targets: [
    { group: '', kind: 'Service', operations: ['CREATE', 'UPDATE'] },
    { group: 'networking.istio.io', kind: 'ServiceEntry', operations: ['CREATE', 'UPDATE'] },
  ],
  explain: (mesh) => ({
    exists: true,
    why: mesh.features.externalNameAlias
      ? `acts on ServiceEntries without addresses on TCP ports${mesh.dnsCapture ? ' (DNS capture is on: only where no address is allocated)' : ''}; ExternalName Services are DNS aliases from Istio 1.21`
      : 'acts on ExternalName Services and ServiceEntries sharing a TCP port (Istio < 1.21)',
  }),
  evaluate({ object, namespace, cluster, mesh }) {
    // The object as it will be stored: in the request's namespace, whatever its metadata says.
    let ports: number[];
    let partyOn: (port: number) => Party | undefined;
    if (object.kind === 'ServiceEntry') {
      const se = serviceEntryRecord(object, namespace);
      if (!se) return { result: 'skip', reason: 'not a ServiceEntry' };
      ports = se.ports.map((p) => p.number);
      partyOn = (port) => entryParty(se, port, mesh);
    } else {
      const svc = serviceRecord(object, namespace);
      if (!svc || svc.type !== 'ExternalName' || !svc.externalName) {
        return { result: 'skip', reason: 'not an ExternalName Service' };
      }
      ports = svc.ports.map((p) => p.port);
      partyOn = (port) => serviceParty(svc, port, mesh);
    }
    const findings: string[] = [];
    for (const port of new Set(ports)) {
      const self = partyOn(port);
      if (!self) continue;
      const others: Party[] = [];
      for (const svc of cluster.externalNamesOnPort(port)) {
        const other = serviceParty(svc, port, mesh);
        if (other && other.label !== self.label && collide(self, other)) others.push(other);
      }
      for (const se of cluster.serviceEntriesOnPort(port)) {
        const other = entryParty(se, port, mesh);
        if (other && other.label !== self.label && collide(self, other)) others.push(other);
      }
      if (others.length === 0) continue;
      const names = others.map((o) => o.label).sort();
      const listed =
        names.slice(0, MAX_NAMED).join(', ') + (names.length > MAX_NAMED ? ` +${names.length - MAX_NAMED} more` : '');
      const owners = [self, ...others].filter((p) => p.role === 'owner');
      const why = owners.some((o) => o.kind === 'Service')
        ? `Istio ${showVersion(mesh.version)} routes TCP by port alone`
        : `no addresses: one 0.0.0.0:${port} listener in sidecars`;
      const what =
        self.role === 'owner'
          ? `TCP port ${port} also carries ${listed} to ${names.length > 1 ? 'other hosts' : 'another host'}`
          : `TCP to port ${port} is taken by ${listed}`;
      findings.push(`${what} (${why}); ${fix(owners, mesh)}`);
    }
    if (findings.length === 0) return { result: 'pass' };
    return { result: 'fail', message: findings.join('; ') };
  },
};

export default policy;
