import { setAnnotation } from '../admission/patch.js';
import type { KubeObject } from '../admission/types.js';
import type { ClusterView } from '../cluster/view.js';
import type { Policy } from '../engine/types.js';
import { willBeInjected } from '../mesh/injection.js';
import { annotation, containerPorts, containers, probes as probesOf, type Container } from '../mesh/pod.js';
import { appendPorts, portList } from '../mesh/ports.js';

const EXCLUDE = 'traffic.sidecar.istio.io/excludeInboundPorts';
const INCLUDE = 'traffic.sidecar.istio.io/includeInboundPorts';
const REWRITE = 'sidecar.istio.io/rewriteAppHTTPProbers';

function selects(selector: Readonly<Record<string, string>> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return false; // a Service without a selector has its endpoints managed by hand
  for (const k in selector) if (labels?.[k] !== selector[k]) return false;
  return true;
}

/** The first Service selecting this pod that sends traffic to `port` (by number or by port name). */
function serviceOnPort(pod: KubeObject, namespace: string, cluster: ClusterView, port: number, names: ReadonlySet<string>): string | undefined {
  for (const svc of cluster.servicesIn(namespace)) {
    if (!selects(svc.selector, pod.metadata?.labels)) continue;
    for (const p of svc.ports) {
      const target = p.targetPort ?? p.port;
      if (target === port || (typeof target === 'string' && names.has(target))) return svc.name;
    }
  }
  return undefined;
}

/** Names under which the pod's containers expose a port number. */
function namesOf(all: readonly Container[], port: number): Set<string> {
  const names = new Set<string>();
  for (const c of all) for (const p of containerPorts(c)) if (p.containerPort === port && p.name) names.add(p.name);
  return names;
}

/**
 * Under mTLS the sidecar intercepts kubelet's health checks, which carry no client certificate.
 * Excludes dedicated health ports from inbound capture; never a port a Service sends traffic to.
 */
const policy: Policy<'probe-port-exclusion'> = {
  id: 'probe-port-exclusion',
  action: 'mutate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  evaluate({ object: pod, namespace, cluster, options }) {
    if (!willBeInjected(pod, namespace, cluster)) return { result: 'skip', reason: 'pod will not be injected' };
    const types = new Set<string>(options.probeTypes);
    // Istio rewrites httpGet and grpc probes to its agent unless told not to.
    if (annotation(pod, REWRITE) === 'false') types.add('httpGet').add('grpc');
    const included = annotation(pod, INCLUDE);
    const intercepted = included === undefined || included.trim() === '*' ? undefined : new Set(portList(included));
    const excluded = new Set(portList(annotation(pod, EXCLUDE)));
    const all = containers(pod).map((c) => c.container);

    const add: number[] = [];
    const warnings: string[] = [];
    const seen = new Set<number>();
    for (const container of all) {
      for (const probe of probesOf(container)) {
        if (!types.has(probe.handler) || probe.port === undefined) continue;
        let port = probe.port;
        if (typeof port === 'string') {
          const named = containerPorts(container).find((p) => p.name === probe.port);
          if (!named) {
            warnings.push(`${probe.kind} of container ${container.name} names port ${probe.port}, which the container does not declare; skipped`);
            continue;
          }
          port = named.containerPort;
        }
        if (seen.has(port)) continue;
        seen.add(port);
        if (excluded.has(String(port)) || (intercepted && !intercepted.has(String(port)))) continue;
        if (!cluster.enabled) {
          warnings.push(`could not verify that probe port ${port} serves no Service (cluster lookups are off); not excluded`);
          continue;
        }
        const service = serviceOnPort(pod, namespace, cluster, port, namesOf(all, port));
        if (service) {
          warnings.push(`probe port ${port} also serves Service ${service}; excluding it would bypass mTLS — rely on Istio's probe rewrite`);
          continue;
        }
        add.push(port);
      }
    }
    if (add.length === 0) return warnings.length > 0 ? { result: 'warn', warnings } : { result: 'pass' };
    const value = appendPorts(annotation(pod, EXCLUDE), add);
    return {
      result: 'mutate',
      patch: [setAnnotation(pod.metadata?.annotations, EXCLUDE, value)],
      summary: `exclude probe port${add.length > 1 ? 's' : ''} ${add.join(',')} from inbound capture (${EXCLUDE})`,
      ...(warnings.length > 0 && { warnings }),
    };
  },
};

export default policy;
