// The analyzer counterpart of sidecar-annotations: IST0125 InvalidAnnotation
// (pkg/config/analysis/analyzers/annotations/annotations.go), which runs the injector's own
// validation table (inject.AnnotationValidation) on every Pod's annotations, injected or not. Its
// meshguard counterpart is the same table (src/mesh/sidecar-annotations.ts) on the same Pods, read
// as the mesh's newest revision reads them: the values meshguard denies where Istio injects.
import type { KubeObject } from '../../src/admission/types.js';
import { isRecord } from '../../src/guards.js';
import type { Sidecar } from '../../src/mesh/injection.js';
import type { MeshProfile } from '../../src/mesh/profile.js';
import { injectorFeatures, NEWEST_ISTIO } from '../../src/mesh/releases.js';
import { judgeSidecarAnnotations } from '../../src/mesh/sidecar-annotations.js';

/** Pods (as `Pod <namespace/>name`) whose annotations the injector refuses, with why. */
export function invalidAnnotations(
  objects: readonly KubeObject[],
  mesh: MeshProfile,
  resourceOf: (o: KubeObject) => string,
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const newest = [...mesh.revisions.values()].at(0)?.features ?? injectorFeatures(NEWEST_ISTIO);
  for (const o of objects) {
    const annotations = o.metadata?.annotations;
    if (o.kind !== 'Pod' || !isRecord(annotations)) continue;
    const { refused } = judgeSidecarAnnotations(annotations, newest);
    if (refused.length > 0) out.set(resourceOf(o), refused);
  }
  return out;
}

/**
 * An injector case against sidecar-annotations: Istio's injector refused the pod (no golden, an
 * expected error) or injected it; meshguard should deny exactly the former. Templates the injector
 * does not inject, or meshguard cannot tell, are not judged by the policy and not counted.
 */
export function refusalDifferences(
  templates: readonly { label: string; pod: KubeObject; sidecar: Sidecar }[],
  istioRefuses: boolean,
): string[] {
  const judged = templates.flatMap(({ label, pod, sidecar }) => {
    const revision = sidecar.proxy === 'none' ? undefined : sidecar.revision;
    const annotations = pod.metadata?.annotations;
    if (!revision) return [];
    if (!isRecord(annotations)) return [{ label, denied: [] as string[] }];
    const { refused, invalid } = judgeSidecarAnnotations(annotations, revision.features);
    return [{ label, denied: [...refused, ...invalid] }];
  });
  if (istioRefuses)
    return judged.length > 0 && judged.every((j) => j.denied.length === 0)
      ? ["Istio's injector refuses the pod, sidecar-annotations does not deny it"]
      : [];
  return judged
    .filter((j) => j.denied.length > 0)
    .map((j) => `${j.label}: sidecar-annotations denies it (${j.denied.join('; ')}), Istio injects it`);
}
