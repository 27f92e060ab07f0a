import type { Policy } from '../engine/types.js';
import type { ServicePort } from '../cluster/view.js';
import { serviceEntryRecord, serviceRecord } from '../cluster/records.js';
import { isRecord } from '../guards.js';
import { serviceEntryProtocol, serviceProtocol, UNSUPPORTED } from '../mesh/protocol.js';

// A port whose protocol Istio cannot tell is sniffed: the sidecar waits for the client's first
// bytes to decide between HTTP and TCP (pilot/pkg/networking/core listener.go,
// listener_inbound.go: http_inspector and tls_inspector). A server-first protocol (MySQL, SMTP,
// SSH, …) sends nothing until the server speaks, and Istio's default protocolDetectionTimeout is
// 0s — no timeout (pkg/config/mesh/mesh.go DefaultMeshConfig, set as the listeners'
// listener_filters_timeout): the connection hangs. Which ports are sniffed is exactly where
// Istio's protocol conversion gives Unsupported (src/mesh/protocol.ts).

/**
 * Istio's own Services, which istioctl analyze's port-name check skips too
 * (pkg/config/analysis/analyzers/service/portname.go: util.IsIstioControlPlane — a label `istio`,
 * or release=istio — and the gateway.istio.io/managed values of Istio's gateway controllers).
 */
const MANAGED = new Set(['istio.io-gateway-controller', 'istio.io-mesh-controller', 'istio.io-eastwest-controller']);
function istiosOwn(labels: unknown): boolean {
  if (!isRecord(labels)) return false;
  return (
    Object.hasOwn(labels, 'istio') ||
    labels.release === 'istio' ||
    MANAGED.has(String(labels['gateway.istio.io/managed']))
  );
}

const SNIFFED = 'Istio sniffs it, and server-first protocols (MySQL, SMTP…) hang';

/** Quoted user text, cut short: a warning is one line of at most 256 characters. */
const quote = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 39)}…` : s);

function servicePortFinding(p: ServicePort): string {
  const port = `port ${p.port}${p.name ? ` ${quote(p.name)}` : ''}`;
  if (p.appProtocol !== undefined) {
    const over = p.name ? ' wins over the name and' : '';
    return `${port}: appProtocol ${quote(p.appProtocol)}${over} is no protocol Istio knows: ${SNIFFED}; set a known one (tcp, http…) or remove it`;
  }
  if (p.name) return `${port}: no protocol prefix Istio knows: ${SNIFFED}; name it tcp-…, http-… or set appProtocol`;
  return `${port} has no name or appProtocol: ${SNIFFED}; name it tcp-…, http-… or set appProtocol`;
}

const policy: Policy<'service-port-protocol'> = {
  id: 'service-port-protocol',
  action: 'validate',
  targets: [
    { group: '', kind: 'Service', operations: ['CREATE', 'UPDATE'] },
    { group: 'networking.istio.io', kind: 'ServiceEntry', operations: ['CREATE', 'UPDATE'] },
  ],
  explain: (mesh) => ({
    exists: true,
    why: `acts: Istio sniffs ports whose protocol it cannot tell${mesh.features.externalNameAlias ? ' (ExternalName Services are DNS aliases: none)' : ''}, with no detection timeout by default`,
  }),
  evaluate({ object, namespace, mesh }) {
    if (istiosOwn(object.metadata?.labels)) return { result: 'skip', reason: "Istio's own object" };
    const warnings: string[] = [];
    if (object.kind === 'ServiceEntry') {
      const se = serviceEntryRecord(object, namespace);
      if (!se) return { result: 'skip', reason: 'not a ServiceEntry' };
      // Only the protocol field counts: names are never parsed, and no port is exempt.
      for (const p of se.ports) {
        if (serviceEntryProtocol(p.protocol, mesh.features) !== UNSUPPORTED) continue;
        const port = `port ${p.number}${p.name ? ` ${quote(p.name)}` : ''}`;
        const what = p.protocol ? `: protocol ${quote(p.protocol)} is none Istio knows` : ' has no protocol';
        warnings.push(`${port}${what}: ${SNIFFED}; set protocol: TCP, HTTP, TLS…`);
      }
    } else {
      const svc = serviceRecord(object, namespace);
      if (!svc) return { result: 'skip', reason: 'not a Service' };
      // From 1.21 an ExternalName Service is a DNS alias with no listener of its own
      // (ENABLE_EXTERNAL_NAME_ALIAS): its ports are never sniffed.
      if (svc.type === 'ExternalName' && mesh.features.externalNameAlias) {
        return { result: 'skip', reason: 'an ExternalName Service is a DNS alias on Istio ≥ 1.21: no listener' };
      }
      // UDP has no listener; SCTP is not captured.
      for (const p of svc.ports) {
        if (p.protocol !== 'TCP') continue;
        if (serviceProtocol(p, mesh.features) === UNSUPPORTED) warnings.push(servicePortFinding(p));
      }
    }
    return warnings.length > 0 ? { result: 'warn', warnings } : { result: 'pass' };
  },
};

export default policy;
