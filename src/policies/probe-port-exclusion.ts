import { setAnnotation } from '../admission/patch.js';
import type { KubeObject } from '../admission/types.js';
import { isEmpty } from '../cluster/labels.js';
import type { ClusterView } from '../cluster/view.js';
import type { Policy } from '../engine/types.js';
import { probeRewriting, REWRITE, rewritesAll, rewrittenOn } from '../mesh/probe-rewrite.js';
import type { Revision } from '../mesh/profile.js';
import { showVersion } from '../mesh/releases.js';
import { skipReason } from '../mesh/reasons.js';
import {
  annotation,
  annotationsPatchable,
  containerPorts,
  containers,
  probes as probesOf,
  type Container,
  type Probe,
} from '../mesh/pod.js';
import { appendPorts, portList } from '../mesh/ports.js';

const EXCLUDE = 'traffic.sidecar.istio.io/excludeInboundPorts';
const INCLUDE = 'traffic.sidecar.istio.io/includeInboundPorts';

interface Target {
  /** Position of the (Service, port) pair in the order servicesFor gives: the first match is named. */
  order: number;
  service: string;
}

/**
 * Where the Services that may send the pod traffic do so, by target port number and by port name,
 * each with the first such Service: those that select the pod, and those without a selector, whose
 * endpoints are written by hand and may name this pod (on their port or target port number). The
 * view finds them by label, so a namespace of thousands of Services costs what selects the pod.
 * Built once per pod: matching each probe port against every Service port would cost probe ports
 * × Service ports, and a pod can have thousands.
 */
function servedPorts(
  pod: KubeObject,
  namespace: string,
  cluster: ClusterView,
): { byNumber: Map<number, Target>; byName: Map<string, Target> } {
  const byNumber = new Map<number, Target>();
  const byName = new Map<string, Target>();
  let order = 0;
  const add = (target: number | string, found: Target) => {
    if (typeof target === 'number') {
      if (!byNumber.has(target)) byNumber.set(target, found);
    } else if (!byName.has(target)) {
      byName.set(target, found);
    }
  };
  for (const svc of cluster.servicesFor(namespace, pod.metadata?.labels)) {
    const manual = isEmpty(svc.selector);
    for (const p of svc.ports) {
      const found = { order: order++, service: svc.name };
      add(p.targetPort ?? p.port, found);
      if (manual) add(p.port, found);
    }
  }
  return { byNumber, byName };
}

/** The first Service selecting this pod that sends traffic to `port` (by number or by one of its names). */
function serviceOnPort(
  served: ReturnType<typeof servedPorts>,
  port: number,
  names: readonly string[],
): string | undefined {
  let first = served.byNumber.get(port);
  for (const name of names) {
    const found = served.byName.get(name);
    if (found && (!first || found.order < first.order)) first = found;
  }
  return first?.service;
}

const noNames: readonly string[] = [];

/**
 * Names under which the pod's containers expose each port number, built once: looking them up per
 * probe port would cost probes × ports, and a pod can have thousands of both. (A name listed twice
 * is looked up twice: cheaper than a Set for every port.)
 */
function portNames(all: readonly { container: Container }[]): Map<number, string[]> {
  const names = new Map<number, string[]>();
  for (const { container } of all) {
    for (const p of containerPorts(container)) {
      if (!p.name) continue;
      const list = names.get(p.containerPort);
      if (list) list.push(p.name);
      else names.set(p.containerPort, [p.name]);
    }
  }
  return names;
}

/**
 * Istio's injector rewrites httpGet, tcpSocket and grpc probes through its agent (app_probe.go;
 * tcpSocket from 1.12, grpc from 1.13), which dials the app from 127.0.0.6, outside capture: then
 * there is no trap, and excluding a port would only open a plain-text path past mTLS. Where
 * rewriting is off (per pod, mesh-wide, or Istio < 1.12), a TCP probe to a captured port always
 * succeeds (Envoy accepts it) and an HTTP or gRPC probe fails under STRICT mTLS: then dedicated
 * health ports are excluded from inbound capture, never a port a Service may send traffic to.
 */
const policy: Policy<'probe-port-exclusion'> = {
  id: 'probe-port-exclusion',
  action: 'mutate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  explain(mesh) {
    const revisions = [...mesh.revisions.values()];
    const note = (r: Revision) =>
      rewritesAll(r)
        ? 'nothing to do: Istio rewrites every probe (except pods that turn rewriting off)'
        : `probes reach the app through capture${r.rewriteProbes ? ' (tcpSocket/grpc not rewritten before 1.12/1.13)' : ' (rewriting is off)'}: acts`;
    return {
      exists: revisions.some((r) => !rewritesAll(r)),
      why: revisions.map((r) => `${r.name}: ${note(r)}`).join('; '),
    };
  },
  evaluate({ object: pod, namespace, cluster, sidecar }) {
    // A proxy of either kind captures inbound traffic; only its revision's settings matter here.
    const revision = sidecar.proxy === 'none' ? undefined : sidecar.revision;
    if (!revision) return { result: 'skip', reason: skipReason(sidecar) };
    const version = () => showVersion(revision.version);
    const { own, on: rewritten, rewrites } = probeRewriting(pod, revision);
    if (rewritten && revision.features.tcpProbeRewrite && revision.features.grpcProbeRewrite)
      return { result: 'skip', reason: `Istio ${version()} rewrites every probe` };
    const all = containers(pod);
    // The probes that reach the app through the proxy's inbound capture.
    const trapped: { container: Container; probe: Probe }[] = [];
    for (const { container } of all)
      for (const probe of probesOf(container))
        if (probe.handler !== 'exec' && probe.port !== undefined && !rewrites(probe.handler))
          trapped.push({ container, probe });
    if (trapped.length === 0) {
      const handlers = revision.features.tcpProbeRewrite ? 'httpGet and tcpSocket' : 'httpGet';
      const why = !rewritten
        ? `no httpGet, tcpSocket or grpc probe (probe rewriting is off ${own === false ? `by ${REWRITE}` : 'mesh-wide'})`
        : `no probe goes through the proxy: Istio ${version()} rewrites ${handlers} probes, exec probes have no port`;
      return { result: 'skip', reason: why };
    }
    if (!annotationsPatchable(pod)) return { result: 'skip', reason: 'metadata.annotations is not a map' };
    const included = annotation(pod, INCLUDE);
    const intercepted = included === undefined || included.trim() === '*' ? undefined : new Set(portList(included));
    const excluded = portList(annotation(pod, EXCLUDE));
    const served = cluster.enabled ? servedPorts(pod, namespace, cluster) : undefined;
    // The container ports' names matter only where a Service may send traffic to a port by name.
    const names = served && served.byName.size > 0 ? portNames(all) : undefined;

    const add: number[] = [];
    const unverified: number[] = [];
    const warnings: string[] = [];
    const seen = new Set<number>();
    for (const { container, probe } of trapped) {
      let port = probe.port as number | string;
      if (typeof port === 'string') {
        const named = containerPorts(container).find((p) => p.name === probe.port);
        if (!named) {
          warnings.push(
            `${probe.kind} of container ${container.name} names port ${probe.port}, which the container does not declare; skipped`,
          );
          continue;
        }
        port = named.containerPort;
      }
      if (seen.has(port)) continue;
      seen.add(port);
      if (excluded.includes(String(port)) || (intercepted && !intercepted.has(String(port)))) continue;
      const service = served && serviceOnPort(served, port, names?.get(port) ?? noNames);
      if (service) {
        // Rewriting helps only where this Istio rewrites the probe's handler.
        const instead = rewrittenOn(revision.features)(probe.handler)
          ? `turn probe rewriting on (${REWRITE}: "true")`
          : `Istio ${version()} does not rewrite ${probe.handler} probes: probe a dedicated port or use exec`;
        warnings.push(`probe port ${port} also serves Service ${service}: excluding it would bypass mTLS; ${instead}`);
      } else if (!cluster.servicesComplete) {
        unverified.push(port);
      } else {
        add.push(port);
      }
    }
    if (unverified.length > 0) {
      const ports = `probe port${unverified.length > 1 ? 's' : ''} ${unverified.join(',')} not excluded`;
      warnings.push(
        cluster.enabled
          ? `${ports}: the inputs may not hold every Service of namespace ${namespace} (say so with meshguard check --services-complete)`
          : `${ports}: cluster lookups are off, so the Services that may use them are unknown`,
      );
    }
    if (add.length === 0) return warnings.length > 0 ? { result: 'warn', warnings } : { result: 'pass' };
    const ports = add.join(',');
    return {
      result: 'mutate',
      patch: [setAnnotation(pod.metadata?.annotations, EXCLUDE, appendPorts(annotation(pod, EXCLUDE), ports))],
      summary: `exclude probe port${add.length > 1 ? 's' : ''} ${ports} from inbound capture (${EXCLUDE})`,
      ...(warnings.length > 0 && { warnings }),
    };
  },
};

export default policy;
