import type { AdmissionRequest, KubeObject, Operation } from '../admission/types.js';
import type { PatchOp } from '../admission/patch.js';
import type { ClusterView } from '../cluster/view.js';
import type { Config, Mode, PolicyId, PolicySettings } from '../config/types.js';
import type { MeshProfile } from '../mesh/profile.js';

/** What a policy found. Expected outcomes are data; a thrown error is a bug. */
export type Result =
  | { result: 'pass' }
  | { result: 'skip'; reason: string }
  /** Something the user should act on; never blocks. */
  | { result: 'warn'; warnings: string[] }
  | { result: 'fail'; message: string; warnings?: string[] }
  /** `summary` completes "would …" in warn mode, e.g. "set holdApplicationUntilProxyStarts: true". */
  | { result: 'mutate'; patch: PatchOp[]; summary: string; warnings?: string[] };

export interface PolicyContext<Id extends PolicyId = PolicyId> {
  /** The object under admission; for pod policies on a workload, a Pod built from its template. */
  object: KubeObject;
  oldObject: KubeObject | null;
  /** The request's namespace: controller-made pods carry none in their metadata. */
  namespace: string;
  operation: Operation;
  options: PolicySettings[Id];
  config: Config;
  cluster: ClusterView;
  /** The Istio guarded: a policy acts only where its trap exists on this mesh. */
  mesh: MeshProfile;
}

export interface Target {
  group: string;
  kind: string;
  operations: readonly Operation[];
}

export interface Policy<Id extends PolicyId = PolicyId> {
  id: Id;
  /** mutate: runs at /mutate on its targets, and on workload pod templates at /validate. */
  action: 'validate' | 'mutate';
  targets: readonly Target[];
  evaluate(ctx: PolicyContext<Id>): Result;
}

/** Where a decision applies: the object itself, or the pod template of a workload. */
export type Subject = 'object' | 'template';

export type Outcome = Result | { result: 'error'; error: Error };

export interface Decision {
  policy: PolicyId;
  mode: Exclude<Mode, 'off'>;
  subject: Subject;
  outcome: Outcome;
}

export type Stage = 'mutate' | 'validate';

export interface EvaluateInput {
  request: AdmissionRequest;
  stage: Stage;
}

export type { Mode, PolicyId };
