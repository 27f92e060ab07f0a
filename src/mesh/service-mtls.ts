import type { KubeObject } from '../admission/types.js';
import type {
  ClusterView,
  PeerAuthenticationRecord,
  ServicePort,
  ServiceRecord,
  WorkloadRecord,
} from '../cluster/view.js';
import { isRecord } from '../guards.js';
import { sidecarOf } from './injection.js';
import { portMtls, possibleWorkloadMtls, workloadMtls, type PeerAuthentications, type WorkloadMtls } from './mtls.js';
import type { MeshProfile } from './profile.js';
import { selects, type Labels } from '../cluster/labels.js';

// Whether the pods behind a Service port accept only Istio mTLS: they are in the mesh (a sidecar
// injected) and the mode Istio applies to the container port the Service targets is STRICT
// (src/mesh/mtls.ts). What the objects show decides: in `meshguard check` and `audit` the
// workloads the Service selects (their pod templates' labels and ports); at admission, where
// meshguard does not watch pods, the Service's selector — its pods carry at least those labels —
// and the namespace's injection labels, as Istio's injector webhooks select them.

/** One finding on the server side: how sure, and why. */
export interface Strictness {
  /** yes: STRICT and in the mesh; maybe: it depends on what the objects do not show. */
  strict: 'yes' | 'maybe' | 'no';
  /** The PeerAuthentication that makes it STRICT. */
  by?: PeerAuthenticationRecord;
  /** For maybe: what is not known. */
  unknown?: string;
  /** The workload found STRICT (check, audit). */
  workload?: WorkloadRecord;
}

const NO: Strictness = Object.freeze({ strict: 'no' });
const label = (pa: PeerAuthenticationRecord | undefined) => (pa ? `${pa.namespace}/${pa.name}` : '?');

/** A container port of the pod by name (a Service's named targetPort), as the endpoints controller finds it. */
function namedPort(pod: KubeObject, name: string): number | undefined {
  const containers = isRecord(pod.spec) && Array.isArray(pod.spec.containers) ? pod.spec.containers : [];
  for (const c of containers) {
    for (const p of isRecord(c) && Array.isArray(c.ports) ? c.ports : []) {
      if (isRecord(p) && p.name === name && typeof p.containerPort === 'number') return p.containerPort;
    }
  }
  return undefined;
}

/** The container port a Service port sends to: targetPort, or the port itself; undefined for a name. */
export const targetPortOf = (p: ServicePort): number | undefined =>
  typeof p.targetPort === 'number' ? p.targetPort : p.targetPort === undefined ? p.port : undefined;

/** The workloads of the view a Service (and a subset's labels) selects. */
export function selectedWorkloads(cluster: ClusterView, svc: ServiceRecord, extra: Labels = {}): WorkloadRecord[] {
  const selector = svc.selector;
  if (!selector) return [];
  const out: WorkloadRecord[] = [];
  for (const w of cluster.workloadsIn(svc.namespace)) {
    const labels = w.pod.metadata?.labels ?? {};
    if (selects(selector, labels) && selects(extra, labels)) out.push(w);
  }
  return out;
}

/** Whether Istio injects a workload's pods: yes, no, or cannot tell (with why). */
export function inMesh(
  pod: KubeObject,
  namespace: string,
  cluster: ClusterView,
  mesh: MeshProfile,
): { meshed: 'yes' | 'no' | 'maybe'; why?: string } {
  const sidecar = sidecarOf(pod, namespace, cluster, mesh, 'cannot-tell');
  switch (sidecar.proxy) {
    case 'classic':
    case 'native':
      return { meshed: 'yes' };
    case 'none':
      return { meshed: 'no', why: sidecar.why };
    case 'unknown':
      // Injected by a known revision, only native or classic undecided: in the mesh either way.
      if (sidecar.revision) return { meshed: 'yes' };
      return {
        meshed: 'maybe',
        why: cluster.namespaceLabels(namespace) ? sidecar.why : `namespace ${namespace}'s labels are unknown`,
      };
  }
}

/** STRICT on a port of known number, or on every port of the workload (a named targetPort): yes / maybe / no. */
function strictOn(w: WorkloadMtls, port: number | undefined): 'yes' | 'maybe' | 'no' {
  if (port !== undefined) return portMtls(w, port).mode === 'STRICT' ? 'yes' : 'no';
  const modes = [w.mode.mode, ...[...w.ports.values()].map((m) => m.mode)];
  return modes.every((m) => m === 'STRICT') ? 'yes' : modes.includes('STRICT') ? 'maybe' : 'no';
}

/** The policy that makes a port STRICT, for messages. */
const strictBy = (w: WorkloadMtls, port: number | undefined) =>
  port !== undefined ? portMtls(w, port).by : [w.mode, ...w.ports.values()].find((m) => m.mode === 'STRICT')?.by;

/**
 * Do the pods behind this Service port (those of a subset when `subsetLabels` are given) accept
 * only mTLS? `pas` are the PeerAuthentications to judge with (the view's, or the view's with one
 * replaced by the one under review).
 */
export function strictness(
  cluster: ClusterView,
  pas: PeerAuthentications,
  mesh: MeshProfile,
  svc: ServiceRecord,
  port: ServicePort,
  subsetLabels: Labels = {},
): Strictness {
  const selector = svc.selector;
  // A Service without a selector has endpoints someone else manages: its pods are unknown.
  if (!selector || svc.type === 'ExternalName') return NO;
  const root = mesh.rootNamespace;
  const workloads = selectedWorkloads(cluster, svc, subsetLabels);
  if (workloads.length > 0) {
    let maybe: Strictness | undefined;
    for (const w of workloads) {
      const labels = w.pod.metadata?.labels ?? {};
      const target = typeof port.targetPort === 'string' ? namedPort(w.pod, port.targetPort) : targetPortOf(port);
      // A pod without the named port gets no endpoint for it.
      if (typeof port.targetPort === 'string' && target === undefined) continue;
      const mtls = workloadMtls(pas, root, svc.namespace, labels);
      if (strictOn(mtls, target) !== 'yes') continue;
      const meshed = inMesh(w.pod, svc.namespace, cluster, mesh);
      if (meshed.meshed === 'yes') return { strict: 'yes', by: strictBy(mtls, target), workload: w };
      if (meshed.meshed === 'maybe')
        maybe ??= { strict: 'maybe', by: strictBy(mtls, target), workload: w, unknown: meshed.why ?? '' };
    }
    return maybe ?? NO;
  }
  // No workloads seen: its pods carry at least the selector's (and subset's) labels.
  const labels = { ...selector, ...subsetLabels };
  const meshed = inMesh({ metadata: { labels } }, svc.namespace, cluster, mesh);
  if (meshed.meshed === 'no') return NO;
  const target = targetPortOf(port);
  const possible = possibleWorkloadMtls(pas, root, svc.namespace, labels);
  const outcomes = possible.map((w) => ({ strict: strictOn(w, target), by: strictBy(w, target) }));
  const strict = outcomes.find((o) => o.strict !== 'no');
  if (!strict) return NO;
  const unknowns: string[] = [];
  if (meshed.meshed === 'maybe' && meshed.why) unknowns.push(meshed.why);
  if (outcomes.some((o) => o.strict !== 'yes')) {
    // A workload-level policy that may or may not select the pods, or a port-level mode on an unknown port.
    const unsure = possible.find((w) => w.workload && !selects(w.workload.selector ?? {}, labels))?.workload;
    if (unsure) unknowns.push(`PeerAuthentication ${label(unsure)} may or may not select its pods`);
    if (target === undefined && outcomes.some((o) => o.strict === 'maybe'))
      unknowns.push(`targetPort ${JSON.stringify(port.targetPort)} is a name: its container port is unknown`);
  }
  return unknowns.length === 0
    ? { strict: 'yes', ...(strict.by && { by: strict.by }) }
    : { strict: 'maybe', ...(strict.by && { by: strict.by }), unknown: unknowns.join('; ') };
}
