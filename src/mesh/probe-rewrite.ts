import type { KubeObject } from '../admission/types.js';
import { parseBool } from './go-parse.js';
import { annotation, type ProbeHandler } from './pod.js';
import type { Revision } from './profile.js';
import type { InjectorFeatures } from './releases.js';

// Which of a pod's probes Istio's injector sends through its agent: one answer for
// probe-port-exclusion (which acts on the others) and the Istio conformance runner (test/istio),
// which checks it against Istio's golden outputs.

/** The pod annotation that turns probe rewriting on or off for one pod. */
export const REWRITE = 'sidecar.istio.io/rewriteAppHTTPProbers';

/** The probe handlers a revision's injector rewrites (app_probe.go): httpGet, and tcpSocket and grpc from their releases. */
export function rewrittenOn(features: InjectorFeatures): (handler: ProbeHandler) => boolean {
  return (handler) =>
    handler === 'httpGet' ||
    (handler === 'tcpSocket' && features.tcpProbeRewrite) ||
    (handler === 'grpc' && features.grpcProbeRewrite);
}

/** The revision rewrites every probe type that has a port: no probe reaches the app through capture. */
export const rewritesAll = (r: Revision) =>
  r.rewriteProbes && r.features.tcpProbeRewrite && r.features.grpcProbeRewrite;

export interface ProbeRewriting {
  /** The pod's own annotation as ParseBool reads it: undefined when absent or not a Go bool. */
  own: boolean | undefined;
  /** Whether rewriting is on for this pod. */
  on: boolean;
  /** Whether a probe with this handler goes through the agent on this pod. */
  rewrites: (handler: ProbeHandler) => boolean;
}

const never = () => false;

/** Whether, and which of, this pod's probes the revision that injects it rewrites. */
export function probeRewriting(pod: KubeObject, revision: Revision): ProbeRewriting {
  // webhook.go applyRewrite: the annotation when ParseBool reads it, else the injector's values.
  const own = parseBool(annotation(pod, REWRITE));
  const on = own ?? revision.rewriteProbes;
  return { own, on, rewrites: on ? rewrittenOn(revision.features) : never };
}
