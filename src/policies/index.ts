import type { Policy } from '../engine/types.js';
import destinationrulePlacement from './destinationrule-placement.js';
import externalnameTcpCollision from './externalname-tcp-collision.js';
import holdApplicationUntilProxyStarts from './hold-application-until-proxy-starts.js';
import initContainersNetwork from './init-containers-network.js';
import jobSidecarQuit from './job-sidecar-quit.js';
import namespaceInjection from './namespace-injection.js';
import sidecarInjectLabel from './sidecar-inject-label.js';
import terminationDrain from './termination-drain.js';
import mtlsConflict from './mtls-conflict.js';
import probePortExclusion from './probe-port-exclusion.js';
import servicePortProtocol from './service-port-protocol.js';
import sidecarAnnotations from './sidecar-annotations.js';

/** Every guardrail, in the order their findings are reported. */
export const policies: readonly Policy[] = [
  destinationrulePlacement,
  externalnameTcpCollision,
  holdApplicationUntilProxyStarts,
  probePortExclusion,
  jobSidecarQuit,
  sidecarInjectLabel,
  namespaceInjection,
  initContainersNetwork,
  terminationDrain,
  mtlsConflict,
  servicePortProtocol,
  sidecarAnnotations,
];
