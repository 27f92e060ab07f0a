import type { KubeObject } from '../admission/types.js';
import type { ClusterView } from '../cluster/view.js';
import { sidecarOf, type Sidecar, type UnknownNamespaces } from '../mesh/injection.js';
import { CANNOT_TELL } from '../mesh/reasons.js';
import type { MeshProfile } from '../mesh/profile.js';
import type { Registry } from './registry.js';
import type { Scope } from '../config/scope.js';
import type { Decision, EvaluateInput, Outcome, Policy, Stage, Subject } from './types.js';
import { podFromTemplate, templatePath } from './workloads.js';

export const SKIP_ANNOTATION = 'meshguard.io/skip';

export interface Engine {
  registry: Registry;
  scope: Scope;
  cluster: ClusterView;
  mesh: MeshProfile;
  /** What a pod's namespace with unknown labels means: the webhook cannot tell; `check` assumes injection. */
  unknownNamespaces?: UnknownNamespaces;
}

const notAPod: Sidecar = Object.freeze({ proxy: 'none', why: 'not a pod' });

/** Policy ids an object opts out of. Honoured for mutations only: nobody exempts their own object from a validation. */
function skipped(object: KubeObject): readonly string[] | undefined {
  const value = object.metadata?.annotations?.[SKIP_ANNOTATION];
  return typeof value === 'string' ? value.split(',').map((s) => s.trim()) : undefined;
}

/**
 * Pod policies that cannot tell what Istio does to the pod skip it; the person applying it is told
 * once per answer, not once per policy: the first such skip becomes that one warning.
 */
function sayWhyOnce(decisions: Decision[], lacking: string): void {
  const i = decisions.findIndex((d) => d.outcome.result === 'skip' && d.outcome.reason.startsWith(CANNOT_TELL));
  const d = decisions[i];
  if (d) decisions[i] = { ...d, outcome: { result: 'warn', warnings: [lacking] } };
}

/**
 * Runs the policies that apply to a request at one stage and returns what each decided.
 * Pure: no I/O, no clock, the request is never modified.
 */
export function evaluate(
  { request, stage }: EvaluateInput,
  { registry, scope, cluster, mesh, unknownNamespaces }: Engine,
): Decision[] {
  const namespace = request.namespace ?? '';
  const object = request.object;
  if (object == null || scope.excluded(namespace)) return [];
  const decisions: Decision[] = [];
  const { group, kind } = request.kind;
  const isPod = group === '' && kind === 'Pod';
  // A workload's pods, as its controller will create them from its template (at /validate).
  const path =
    stage === 'validate' &&
    (request.operation === 'CREATE' || request.operation === 'UPDATE') &&
    templatePath(group, kind);
  const templatePod = path ? podFromTemplate(object, path, kind) : undefined;

  // One review has at most one pod (the object, or a workload's template): Istio's injection of it
  // is decided once, when the first pod policy asks. A pod policy that also judges a workload
  // itself (its own metadata) is told what its pods get.
  let sidecar: Sidecar | undefined;
  const settings = scope.settingsIn(namespace);
  const run = (
    policy: Policy,
    podPolicy: boolean,
    target: KubeObject,
    subject: Subject,
    skips: readonly string[] | undefined,
  ) => {
    const set = settings.get(policy.id);
    if (!set || set.mode === 'off') return;
    const { mode, options } = set;
    let pod: Sidecar = notAPod;
    const judged = subject === 'template' || isPod ? target : templatePod;
    if (podPolicy && judged) pod = sidecar ??= sidecarOf(judged, namespace, cluster, mesh, unknownNamespaces);
    let outcome: Outcome;
    if (policy.action === 'mutate' && skips?.includes(policy.id)) {
      outcome = { result: 'skip', reason: `${SKIP_ANNOTATION} annotation` };
    } else {
      try {
        outcome = policy.evaluate({
          object: target,
          oldObject: request.oldObject ?? null,
          namespace,
          // A template is judged as the pods its controller will create.
          operation: subject === 'template' ? 'CREATE' : request.operation,
          options,
          config: scope.config,
          cluster,
          mesh,
          sidecar: pod,
        });
      } catch (err) {
        outcome = { result: 'error', error: err instanceof Error ? err : new Error(String(err)) };
      }
    }
    const decision: Decision = { policy: policy.id, action: policy.action, mode, subject, outcome };
    if (pod.assumed) decision.assumed = true;
    decisions.push(decision);
  };

  const objectSkips = skipped(object);
  for (const policy of registry.for(group, kind, request.operation)) {
    const podPolicy = registry.isPodPolicy(policy);
    // Pods at /mutate, before Istio's injector; what else a pod policy targets, at /validate.
    const at: Stage = policy.action === 'mutate' || (isPod && podPolicy) ? 'mutate' : 'validate';
    if (at === stage) run(policy, podPolicy, object, 'object', objectSkips);
  }
  if (templatePod) {
    const templateSkips = skipped(templatePod);
    for (const policy of registry.podPolicies) run(policy, true, templatePod, 'template', templateSkips);
  }
  if (sidecar?.proxy === 'unknown' && sidecar.lacking) sayWhyOnce(decisions, sidecar.lacking);
  return decisions;
}
