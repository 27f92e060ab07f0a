import type { KubeObject } from '../admission/types.js';
import type { ClusterView } from '../cluster/view.js';
import type { Config } from '../config/types.js';
import { annotation, label, podSpec } from './pod.js';

const INJECT = 'sidecar.istio.io/inject';
const NATIVE = 'sidecar.istio.io/nativeSidecar';
const neverInjected = new Set(['kube-system', 'kube-public']);

/**
 * Will Istio's injector add a sidecar to this pod? Istio's rules, in its order: system
 * namespaces and host-network pods never; the pod's label or annotation decides when set (the
 * label wins); otherwise the namespace: `istio-injection=enabled` or an `istio.io/rev` label,
 * `istio-injection=disabled` winning. An unknown namespace means not injected.
 */
export function willBeInjected(pod: KubeObject, namespace: string, cluster: ClusterView): boolean {
  if (neverInjected.has(namespace) || podSpec(pod).hostNetwork === true) return false;
  const own = label(pod, INJECT) ?? annotation(pod, INJECT);
  if (own === 'false') return false;
  if (own === 'true') return true;
  const labels = cluster.namespaceLabels(namespace);
  if (!labels) return false;
  const ns = labels['istio-injection'];
  if (ns === 'disabled') return false;
  return ns === 'enabled' || labels['istio.io/rev'] !== undefined;
}

/** Istio will run the proxy as a Kubernetes native sidecar (an init container that keeps running). */
export function usesNativeSidecar(pod: KubeObject, config: Config): boolean {
  const own = annotation(pod, NATIVE);
  return own === undefined ? config.nativeSidecars : own === 'true';
}
