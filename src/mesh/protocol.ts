import type { ServicePort } from '../cluster/view.js';
import type { MeshFeatures } from './releases.js';

// The protocol Istio gives a port, as istio/istio decides it (master of 2026-08; differences by
// release in the release table):
//   pkg/config/protocol/instance.go  Parse: a case-insensitive name from a fixed list, anything else
//     Unsupported — which Istio then detects from the first bytes on the connection ("sniffing").
//   pkg/config/kube/conversion.go  ConvertProtocol, for a Kubernetes Service port: UDP is UDP; else
//     the appProtocol when set (kubernetes.io/h2c, ws, wss are Kubernetes' standard names), else the
//     port name, is cut at its first '-' (grpc-web first) and parsed; an Unsupported result on a
//     well-known port (25 SMTP, 53 DNS, 3306 MySQL, 27017 MongoDB) is TCP.
//   pilot/pkg/serviceregistry/serviceentry/conversion.go  convertPort: a ServiceEntry port's
//     protocol field is parsed, nothing else (no name, no well-known ports).

/** Istio's protocol.Instance values. */
export type Protocol =
  | 'TCP'
  | 'UDP'
  | 'GRPC'
  | 'GRPC-Web'
  | 'HTTP'
  | 'HTTP_PROXY'
  | 'HTTP2'
  | 'HTTPS'
  | 'TLS'
  | 'Mongo'
  | 'Redis'
  | 'MySQL'
  | 'Thrift'
  | 'UnsupportedProtocol';

export const UNSUPPORTED = 'UnsupportedProtocol';

const known: ReadonlyMap<string, Protocol> = new Map<string, Protocol>([
  ['tcp', 'TCP'],
  ['udp', 'UDP'],
  ['grpc', 'GRPC'],
  ['grpc-web', 'GRPC-Web'],
  ['http', 'HTTP'],
  ['http_proxy', 'HTTP_PROXY'],
  ['http2', 'HTTP2'],
  ['https', 'HTTPS'],
  ['tls', 'TLS'],
  ['mongo', 'Mongo'],
  ['redis', 'Redis'],
  ['mysql', 'MySQL'],
  ['thrift', 'Thrift'],
]);

/** protocol.Parse. (Istio's own "DoubleHBONE" case never matches its lower-cased input.) */
export function parseProtocol(name: string, features: MeshFeatures): Protocol {
  const p = known.get(name.toLowerCase()) ?? UNSUPPORTED;
  return p === 'Thrift' && features.thriftUnknown ? UNSUPPORTED : p;
}

/** Ports Istio never sniffs on a Service: an unnamed one is TCP there (wellKnownPorts). */
export const WELL_KNOWN_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/** What a Service port's protocol is decided by: appProtocol when set, else the port name. */
export const protocolSource = (p: ServicePort): 'appProtocol' | 'name' =>
  p.appProtocol !== undefined ? 'appProtocol' : 'name';

/** ConvertProtocol: a Kubernetes Service port's protocol as Istio reads it. */
export function serviceProtocol(p: ServicePort, features: MeshFeatures): Protocol {
  if (p.protocol === 'UDP') return 'UDP';
  let name = p.name ?? '';
  if (p.appProtocol !== undefined) {
    name = p.appProtocol;
    // Kubernetes' standard appProtocol names, each from its release.
    if (name === 'kubernetes.io/h2c' && features.h2cAppProtocol) return 'HTTP2';
    if (name === 'kubernetes.io/ws' && features.wsAppProtocol) return 'HTTP';
    if (name === 'kubernetes.io/wss' && features.wsAppProtocol) return 'HTTPS';
  }
  if (name.slice(0, 8).toLowerCase() === 'grpc-web') return 'GRPC-Web';
  const dash = name.indexOf('-');
  const parsed = parseProtocol(dash >= 0 ? name.slice(0, dash) : name, features);
  return parsed === UNSUPPORTED && WELL_KNOWN_PORTS.has(p.port) ? 'TCP' : parsed;
}

/** A ServiceEntry port's protocol: its protocol field only (unset is Unsupported). */
export const serviceEntryProtocol = (protocol: string | undefined, features: MeshFeatures): Protocol =>
  parseProtocol(protocol ?? '', features);
