// Conformance of the mesh profile's per-revision CNI fact with Istio's injector goldens: where
// Istio's output has its istio-validation init container, its template saw CNI on
// (istio-discovery files/injection-template.yaml: `istio-validation` with CNI, `istio-init`
// without), and init-containers-network follows that fact. No Istio code: recorded data only.
import type { KubeObject } from '../../src/admission/types.js';
import { isRecord } from '../../src/guards.js';
import type { Sidecar } from '../../src/mesh/injection.js';

const names = (pod: KubeObject): string[] => {
  const spec = isRecord(pod.spec) ? pod.spec : {};
  const list = Array.isArray(spec.initContainers) ? spec.initContainers : [];
  return list.flatMap((c) => (isRecord(c) && typeof c.name === 'string' ? [c.name] : []));
};

/** Whether Istio's output used CNI; undefined when it set up no redirect of its own (interception NONE, no proxy). */
function observedCni(golden: KubeObject): boolean | undefined {
  const init = names(golden);
  if (init.includes('istio-validation')) return true;
  if (init.includes('istio-init')) return false;
  return undefined;
}

/**
 * `--set components.cni.enabled=…` as Istio's operator renders it for the injector: it sets
 * values.pilot.cni.enabled (operator/pkg/render/manifest.go translateIstioOperatorToHelm).
 */
export function componentValue(flag: unknown): { path: string; value: boolean } | undefined {
  const m = typeof flag === 'string' ? /^components\.cni\.enabled=(true|false)$/.exec(flag) : null;
  return m ? { path: 'pilot.cni.enabled', value: m[1] === 'true' } : undefined;
}

/** One line when meshguard's revision says otherwise about CNI than Istio's output shows. */
export function cniDifference(label: string, sidecar: Sidecar, golden: KubeObject): string | undefined {
  if (sidecar.proxy !== 'classic' && sidecar.proxy !== 'native') return undefined;
  const istio = observedCni(golden);
  if (istio === undefined || istio === sidecar.revision.cni) return undefined;
  return `${label}: cni: meshguard ${sidecar.revision.cni ? 'on' : 'off'}, Istio ${istio ? 'on' : 'off'}`;
}
