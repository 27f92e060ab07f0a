import type { MtlsSetting, PeerAuthenticationRecord } from '../cluster/view.js';
import { older, oldestFirst } from './config-order.js';
import { selects, type Labels } from '../cluster/labels.js';

// The mTLS mode Istio's sidecar (or ztunnel) applies to a workload's inbound port, from the
// PeerAuthentications that apply to it. istio/istio (master of 2026-08, the same rules since 1.5):
//   pilot/pkg/model/authentication.go  getConfigsForWorkload: the policies of the workload's own
//     namespace and of the root namespace whose selector.matchLabels are a subset of its labels
//     (an empty selector matches every workload); sortConfigByCreationTime (config.go): oldest
//     first, equal times by name, then namespace.
//   pilot/pkg/security/authn/policy_applier.go  ComposePeerAuthentication: without matchLabels, a
//     policy is mesh-wide in the root namespace and namespace-wide elsewhere; with matchLabels it is
//     workload-level, and ignored in the root namespace. In each scope the oldest wins. The mode is
//     PERMISSIVE, then the mesh's, the namespace's, the workload's, each applied unless UNSET (so
//     UNSET inherits). portLevelMtls is read on the workload-level policy only (Istio's validation
//     refuses it elsewhere: pkg/config/validation/validation.go ValidatePeerAuthentication), keyed
//     by the container port (GetMutualTLSModeForPort is given the endpoint port); an UNSET port
//     inherits the workload's mode.

export type MtlsMode = Exclude<MtlsSetting, 'UNSET'>;

/** Where PeerAuthentications come from: the cluster view, or the view with one of them replaced (a review). */
export interface PeerAuthentications {
  peerAuthenticationsIn(namespace: string): Iterable<PeerAuthenticationRecord>;
}

/** A mode and the PeerAuthentication that decided it (none: Istio's default, PERMISSIVE). */
export interface Mtls {
  readonly mode: MtlsMode;
  readonly by?: PeerAuthenticationRecord;
}

/** What Istio applies to one workload: a mode, and the workload-level policy's port-level modes. */
export interface WorkloadMtls {
  readonly mode: Mtls;
  /** By container (target) port. */
  readonly ports: ReadonlyMap<number, Mtls>;
  /** The workload-level policy that applies, if any. */
  readonly workload?: PeerAuthenticationRecord;
}

const PERMISSIVE: Mtls = Object.freeze({ mode: 'PERMISSIVE' });
const noPorts: ReadonlyMap<number, Mtls> = new Map();

interface Scopes {
  mesh?: PeerAuthenticationRecord;
  namespace?: PeerAuthenticationRecord;
  /** Workload-level policies that may select the workload, oldest first. */
  workload: PeerAuthenticationRecord[];
}

function scopes(pas: PeerAuthentications, rootNamespace: string, namespace: string): Scopes {
  const out: Scopes = { workload: [] };
  const visit = (ns: string) => {
    for (const pa of pas.peerAuthenticationsIn(ns)) {
      if (pa.selector === undefined) {
        const scope = ns === rootNamespace ? 'mesh' : 'namespace';
        const current = out[scope];
        if (!current || older(pa, current)) out[scope] = pa;
      } else if (ns !== rootNamespace) {
        out.workload.push(pa);
      }
    }
  };
  visit(namespace);
  if (namespace !== rootNamespace) visit(rootNamespace);
  out.workload.sort(oldestFirst);
  return out;
}

/** ComposePeerAuthentication, once the workload-level policy (if any) is known. */
function compose({ mesh, namespace }: Scopes, workload: PeerAuthenticationRecord | undefined): WorkloadMtls {
  let mode = PERMISSIVE;
  for (const pa of [mesh, namespace, workload]) {
    if (pa && pa.mode !== 'UNSET') mode = { mode: pa.mode, by: pa };
  }
  if (!workload) return { mode, ports: noPorts };
  if (!workload.ports) return { mode, ports: noPorts, workload };
  const ports = new Map<number, Mtls>();
  for (const p of workload.ports) ports.set(p.port, p.mode === 'UNSET' ? mode : { mode: p.mode, by: workload });
  return { mode, ports, workload };
}

/** The mTLS Istio applies to a workload (a pod) with these labels in this namespace. */
export function workloadMtls(
  pas: PeerAuthentications,
  rootNamespace: string,
  namespace: string,
  labels: Labels,
): WorkloadMtls {
  const found = scopes(pas, rootNamespace, namespace);
  return compose(
    found,
    found.workload.find((pa) => selects(pa.selector ?? {}, labels)),
  );
}

/** The mode of one container port: its port-level mode, else the workload's. */
export const portMtls = (w: WorkloadMtls, containerPort: number): Mtls => w.ports.get(containerPort) ?? w.mode;

/** The mTLS mode Istio applies to a container port of a pod with these labels. */
export function effectiveMtls(
  pas: PeerAuthentications,
  rootNamespace: string,
  namespace: string,
  labels: Labels,
  containerPort: number,
): Mtls {
  return portMtls(workloadMtls(pas, rootNamespace, namespace, labels), containerPort);
}

/**
 * Every outcome Istio may pick for workloads known only by some of their labels (a Service's
 * selector: its pods carry at least these). A workload-level policy whose selector asks for a label
 * not known may or may not select them: each such policy, oldest first, up to the first that
 * surely does, is a possible winner (and none at all, when none surely does).
 */
export function possibleWorkloadMtls(
  pas: PeerAuthentications,
  rootNamespace: string,
  namespace: string,
  known: Labels,
): WorkloadMtls[] {
  const found = scopes(pas, rootNamespace, namespace);
  const outcomes: WorkloadMtls[] = [];
  for (const pa of found.workload) {
    const selector = pa.selector ?? {};
    // A label the pods surely carry with another value: never selected.
    if (Object.entries(selector).some(([k, v]) => Object.hasOwn(known, k) && known[k] !== v)) continue;
    outcomes.push(compose(found, pa));
    if (selects(selector, known)) return outcomes;
  }
  outcomes.push(compose(found, undefined));
  return outcomes;
}

/** How a mode was decided, for messages: `STRICT (PeerAuthentication ns/name)`. */
export const showMtls = (m: Mtls): string =>
  m.by ? `${m.mode} (PeerAuthentication ${m.by.namespace}/${m.by.name})` : `${m.mode} (Istio's default)`;
