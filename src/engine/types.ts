import type { AdmissionRequest, KubeObject, Operation } from '../admission/types.js';
import type { PatchOp } from '../admission/patch.js';
import type { ClusterView } from '../cluster/view.js';
import type { Config, Mode, PolicyId, PolicySettings } from '../config/types.js';
import type { Sidecar } from '../mesh/injection.js';
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
  /**
   * What Istio's injector will do to the pod (decided once per review by the engine, for every pod
   * policy); `{ proxy: 'none' }` for objects that are not pods.
   */
  sidecar: Sidecar;
}

/** Whether a policy's trap exists on a mesh, and why: what `meshguard mesh` and debug logs show. */
export interface Explanation {
  /** The trap exists on this mesh (for some revision or some pods), so the policy may act. */
  exists: boolean;
  /** One line, for people: what the policy does here, and why. */
  why: string;
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
  /** Whether its trap exists on this mesh, by default (before a pod's own annotations), and why. */
  explain(mesh: MeshProfile): Explanation;
}

/** Where a decision applies: the object itself, or the pod template of a workload. */
export type Subject = 'object' | 'template';

export type Outcome = Result | { result: 'error'; error: Error };

export interface Decision {
  policy: PolicyId;
  action: Policy['action'];
  mode: Exclude<Mode, 'off'>;
  subject: Subject;
  outcome: Outcome;
  /** Judged as if the namespace, whose labels are unknown, were labelled for injection (`meshguard check`). */
  assumed?: true;
}

export type Stage = 'mutate' | 'validate';

export interface EvaluateInput {
  request: AdmissionRequest;
  stage: Stage;
}

export type { Mode, PolicyId };
