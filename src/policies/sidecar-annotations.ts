import type { Policy, Result } from '../engine/types.js';
import { isRecord } from '../guards.js';
import type { Revision } from '../mesh/profile.js';
import { skipReason } from '../mesh/reasons.js';
import { showVersion } from '../mesh/releases.js';
import { judgeSidecarAnnotations } from '../mesh/sidecar-annotations.js';

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
 * Istio's injector refuses a pod whose sidecar annotations it cannot parse
 * (pkg/kube/inject/validate.go, before any template runs), and the API server refuses an injected
 * istio-proxy whose requests exceed its limits. Pods a controller makes are then refused where
 * nobody looks (a ReplicaSet's events): meshguard refuses them at `kubectl apply` instead, with
 * the reason. Names under Istio's sidecar prefixes that Istio does not read are typos: a warning
 * names the real one.
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
  evaluate({ object: pod, sidecar }): Result {
    // Only the injector judges these values, and only for pods it injects (inject.go RunTemplate).
    // A pod whose sidecar kind is unknown (the kubelets under `auto`) is still injected.
    const revision = sidecar.proxy === 'none' ? undefined : sidecar.revision;
    if (!revision) return { result: 'skip', reason: skipReason(sidecar) };
    const annotations = pod.metadata?.annotations;
    if (!isRecord(annotations)) return { result: 'pass' };
    const { refused, invalid, uncertain, unknown } = judgeSidecarAnnotations(annotations, revision.features);
    const warnings = [...uncertain, ...unknown];
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
