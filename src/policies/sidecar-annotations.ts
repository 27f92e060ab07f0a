import type { KubeObject } from '../admission/types.js';
import type { ClusterView } from '../cluster/view.js';
import type { Policy, Result } from '../engine/types.js';
import { isRecord } from '../guards.js';
import { statusPort } from '../mesh/injection.js';
import { portMtls, showMtls, workloadMtls } from '../mesh/mtls.js';
import { annotation } from '../mesh/pod.js';
import type { MeshProfile, Revision } from '../mesh/profile.js';
import { skipReason } from '../mesh/reasons.js';
import { showVersion } from '../mesh/releases.js';
import { EXCLUDE_INBOUND_PORTS, judgeSidecarAnnotations, parsePorts } from '../mesh/sidecar-annotations.js';

const where = (r: Revision) => `revision ${r.name}, Istio ${showVersion(r.version)}`;

/** What a revision's injector checks beyond the values every release checks. */
function checked(r: Revision): string {
  const extra = [
    r.features.proxyResourceValidation && 'proxy resources',
    r.features.interfaceNameValidation && 'interface names',
  ].filter(Boolean);
  return extra.length > 0 ? ` (and ${extra.join(' and ')})` : '';
}

/**
 * The proxy's own ports (Istio's "Ports used by Istio", istio.io docs/ops/deployment/application-
 * requirements): no app listens there, so excluding one bypasses nothing. Istio's template itself
 * excludes 15090, 15021 and the status port (files/injection-template.yaml, istio-init `-d`).
 */
const PROXY_PORTS: ReadonlySet<number> = new Set([
  15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090,
]);

/**
 * Ports taken out of inbound capture (iptables sends them straight to the app, istio-init `-d`)
 * that a STRICT PeerAuthentication guards: the app accepts plain text there from anyone, which is
 * what STRICT was meant to refuse. The mode per container port is Istio's
 * (src/mesh/mtls.ts, ComposePeerAuthentication with port-level modes).
 */
function strictBypass(pod: KubeObject, namespace: string, cluster: ClusterView, mesh: MeshProfile): string[] {
  const value = annotation(pod, EXCLUDE_INBOUND_PORTS);
  const ports = value === undefined ? undefined : parsePorts(value);
  if (!ports || ports.length === 0) return [];
  const status = statusPort(pod);
  const mtls = workloadMtls(cluster, mesh.rootNamespace, namespace, pod.metadata?.labels ?? {});
  const strict = new Map<string, number[]>();
  for (const port of new Set(ports)) {
    if (port === 0 || port === status || PROXY_PORTS.has(port)) continue;
    const m = portMtls(mtls, port);
    if (m.mode !== 'STRICT') continue;
    const by = showMtls(m);
    strict.set(by, [...(strict.get(by) ?? []), port]);
  }
  return [...strict].map(
    ([by, list]) =>
      `${EXCLUDE_INBOUND_PORTS} takes port${list.length > 1 ? 's' : ''} ${list.join(',')} out of the sidecar, where mTLS is ${by}: the app accepts plain text there, bypassing it`,
  );
}

/**
 * Istio's injector refuses a pod whose sidecar annotations it cannot parse
 * (pkg/kube/inject/validate.go, before any template runs), and the API server refuses an injected
 * istio-proxy whose requests exceed its limits. Pods a controller makes are then refused where
 * nobody looks (a ReplicaSet's events): meshguard refuses them at `kubectl apply` instead, with
 * the reason. Names under Istio's sidecar prefixes that Istio does not read are typos: a warning
 * names the real one. Ports excluded from inbound capture under STRICT mTLS are a plain-text way
 * in: a warning names the PeerAuthentication.
 */
const policy: Policy<'sidecar-annotations'> = {
  id: 'sidecar-annotations',
  action: 'validate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  explain(mesh) {
    return {
      // Every release validates: the trap exists wherever Istio injects.
      exists: mesh.revisions.size > 0,
      why: [...mesh.revisions.values()]
        .map(
          (r) =>
            `${r.name}: Istio ${showVersion(r.version)} refuses pods with annotation values it cannot parse${checked(r)}`,
        )
        .join('; '),
    };
  },
  evaluate({ object: pod, namespace, cluster, mesh, sidecar }): Result {
    // Only the injector judges these values, and only for pods it injects (inject.go RunTemplate).
    // A pod whose sidecar kind is unknown (the kubelets under `auto`) is still injected.
    const revision = sidecar.proxy === 'none' ? undefined : sidecar.revision;
    if (!revision) return { result: 'skip', reason: skipReason(sidecar) };
    const annotations = pod.metadata?.annotations;
    if (!isRecord(annotations)) return { result: 'pass' };
    const { refused, invalid, uncertain, unknown } = judgeSidecarAnnotations(annotations, revision.features);
    const warnings = [...uncertain, ...unknown, ...strictBypass(pod, namespace, cluster, mesh)];
    const denials = [
      ...(refused.length > 0 ? [`Istio's injector (${where(revision)}) refuses the pod: ${refused.join('; ')}`] : []),
      ...(invalid.length > 0
        ? [`the API server refuses the istio-proxy Istio injects (${where(revision)}): ${invalid.join('; ')}`]
        : []),
    ];
    if (denials.length > 0)
      return { result: 'fail', message: denials.join('; '), ...(warnings.length > 0 && { warnings }) };
    return warnings.length > 0 ? { result: 'warn', warnings } : { result: 'pass' };
  },
};

export default policy;
