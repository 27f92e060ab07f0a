import type { KubeObject } from '../admission/types.js';
import { parseBool } from './go-parse.js';
import { annotation, type ProbeHandler } from './pod.js';
import { atLeast, type IstioVersion, type Revision } from './profile.js';

// Which of a pod's probes Istio's injector sends through its agent: one answer for
// probe-port-exclusion (which acts on the others) and the Istio conformance runner (test/istio),
// which checks it against Istio's golden outputs.

/** The pod annotation that turns probe rewriting on or off for one pod. */
export const REWRITE = 'sidecar.istio.io/rewriteAppHTTPProbers';

/** The probe handlers Istio's injector rewrites (app_probe.go): tcpSocket from 1.12, grpc from 1.13. */
export function rewrittenOn(version: IstioVersion): (handler: ProbeHandler) => boolean {
  return (handler) =>
    handler === 'httpGet' ||
    (handler === 'tcpSocket' && atLeast(version, 12)) ||
    (handler === 'grpc' && atLeast(version, 13));
}

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
  return { own, on, rewrites: on ? rewrittenOn(revision.version) : never };
}
