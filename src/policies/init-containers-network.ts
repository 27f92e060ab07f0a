import type { KubeObject } from '../admission/types.js';
import type { Policy, Result } from '../engine/types.js';
import { isRecord } from '../guards.js';
import { defaultSidecarKind, nativeByDefault } from '../mesh/injection.js';
import { annotation, podSpec } from '../mesh/pod.js';
import { portList } from '../mesh/ports.js';
import type { MeshProfile, Revision } from '../mesh/profile.js';
import { parseBool } from '../mesh/go-parse.js';
import { parseProxyConfig, proxyMetadataKey, PROXY_CONFIG } from '../mesh/proxy-config.js';
import { skipReason } from '../mesh/reasons.js';

// Istio source cited below is istio/istio at 86c9f01f (master, 2026-08; the same lines in 1.28-1.30).
//
// With Istio CNI the pod's redirect is installed when its network is created, before any of its
// containers runs (cni/pkg/plugin/plugin.go CmdAdd). A classic istio-proxy is an app container and
// starts only after every init container has finished, so an init container's connections go to a
// proxy that is not there. Without CNI, Istio's own istio-init runs last among the init containers
// (pkg/kube/inject/webhook.go reorderPod: "we want iptables setup last so we do not blackhole init
// containers"); a native istio-proxy starts before the user's init containers (same function).

/** Istio's own init containers (and a native proxy), in a pod injected before. */
const ISTIO_CONTAINERS = new Set(['istio-init', 'istio-validation', 'istio-proxy']);
/** The proxy's UID and GID the redirect lets through (cni/pkg/plugin/sidecar_redirect.go defaultNoRedirectUID/GID). */
const PROXY_ID = 1337;
const EXCLUDE_IPS = 'traffic.sidecar.istio.io/excludeOutboundIPRanges';
const EXCLUDE_PORTS = 'traffic.sidecar.istio.io/excludeOutboundPorts';
const INCLUDE_IPS = 'traffic.sidecar.istio.io/includeOutboundIPRanges';
const INTERCEPTION = 'sidecar.istio.io/interceptionMode';
/** Names shown in a warning: the API server keeps 256 characters. */
const NAMES_SHOWN = 2;

type Obj = Record<string, unknown>;
const securityContext = (o: unknown): Obj => (isRecord(o) && isRecord(o.securityContext) ? o.securityContext : {});
const id = (v: unknown) => (typeof v === 'number' ? v : undefined);

/**
 * The UID and GID whose traffic the redirect returns uncaptured: istio-proxy's runAsUser and
 * runAsGroup, which the CNI plugin reads from the pod (cni/pkg/plugin/kubernetes.go), 1337 unless
 * the pod's own istio-proxy container overrides them (a 0 means the default: sidecar_redirect.go
 * NewRedirect), in iptables' `-m owner --uid-owner` / `--gid-owner` RETURN rules
 * (tools/istio-iptables/pkg/capture/run.go).
 */
function proxyIds(pod: KubeObject): { uid: number; gid: number } {
  const list = podSpec(pod).containers;
  const own = Array.isArray(list) ? list.find((c) => isRecord(c) && c.name === 'istio-proxy') : undefined;
  const sc = securityContext(own);
  const pick = (v: unknown) => (id(v) ? (v as number) : PROXY_ID);
  return { uid: pick(sc.runAsUser), gid: pick(sc.runAsGroup) };
}

/**
 * Whether a container's process runs as the proxy's UID or GID: its own securityContext, else the
 * pod's (Kubernetes: the container's value wins). An image's USER cannot be seen: not counted.
 */
function escapes(container: unknown, pod: KubeObject, proxy: { uid: number; gid: number }): boolean {
  const own = securityContext(container);
  const podLevel = securityContext(podSpec(pod));
  const uid = id(own.runAsUser) ?? id(podLevel.runAsUser);
  const gid = id(own.runAsGroup) ?? id(podLevel.runAsGroup);
  return uid === proxy.uid || gid === proxy.gid;
}

/**
 * DNS capture for this pod: its ProxyConfig's proxyMetadata ISTIO_META_DNS_CAPTURE over the mesh's
 * (pkg/config/mesh MergeProxyConfig merges the map entry by entry). The CNI plugin then redirects
 * every port-53 packet to the agent, before any IP-range exclusion (run.go SetupDNSRedir).
 */
function dnsCapture(pod: KubeObject, mesh: MeshProfile): boolean {
  const text = annotation(pod, PROXY_CONFIG);
  const parsed = text === undefined ? undefined : parseProxyConfig(text);
  if (parsed?.ok) {
    const key = proxyMetadataKey(parsed.value);
    const metadata = key === undefined ? undefined : parsed.value[key];
    // The CNI plugin reads it from istio-proxy's env with ParseBool (sidecar_redirect.go).
    const own = parseBool(isRecord(metadata) ? metadata.ISTIO_META_DNS_CAPTURE : undefined);
    if (own !== undefined) return own;
  }
  return mesh.dnsCapture;
}

/**
 * What of its outbound traffic the pod keeps out of the redirect. meshguard cannot see where an
 * init container connects, so the pod's own exclusions are taken as its owner's answer: ports
 * (excludeOutboundPorts), or address ranges (excludeOutboundIPRanges, or an includeOutboundIPRanges
 * without `*`, which captures only the ranges listed). Port exclusions come first in the redirect
 * (run.go: "Apply port based exclusions"), so they also keep port-53 lookups from DNS capture;
 * address ranges do not.
 */
function exclusions(pod: KubeObject): { ports: boolean; ranges: boolean } {
  const ports = portList(annotation(pod, EXCLUDE_PORTS));
  const include = annotation(pod, INCLUDE_IPS);
  const narrowed =
    include !== undefined &&
    !include
      .split(',')
      .map((s) => s.trim())
      .includes('*');
  return {
    ports: ports.length > 0,
    ranges: (annotation(pod, EXCLUDE_IPS)?.trim() ?? '') !== '' || narrowed,
  };
}

/** The first fix the revision offers: native sidecars, where it has them. */
function nativeFix(r: Revision): string | undefined {
  if (r.features.nativeSidecarAnnotation) return 'sidecar.istio.io/nativeSidecar: "true"';
  if (r.features.nativeSidecarFlag) return 'istiod ENABLE_NATIVE_SIDECARS=true';
  return undefined;
}

const shown = (names: readonly string[]) =>
  names.length <= NAMES_SHOWN
    ? names.join(', ')
    : `${names.slice(0, NAMES_SHOWN).join(', ')} (+${names.length - NAMES_SHOWN})`;

const policy: Policy<'init-containers-network'> = {
  id: 'init-containers-network',
  action: 'validate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  explain(mesh) {
    const revisions = [...mesh.revisions.values()];
    return {
      exists: revisions.some((r) => r.cni && nativeByDefault(r, mesh) !== true),
      why: revisions
        .map((r) =>
          !r.cni
            ? `${r.name}: nothing to do: no Istio CNI (istio-init sets up the redirect after the pod's init containers)`
            : `${r.name}: Istio CNI, ${defaultSidecarKind(r, mesh)}; warns on init containers of pods with a classic sidecar`,
        )
        .join('; '),
    };
  },
  evaluate({ object: pod, sidecar, mesh }): Result {
    if (sidecar.proxy !== 'classic') {
      const reason =
        sidecar.proxy === 'native'
          ? `native sidecar (revision ${sidecar.revision.name}): istio-proxy starts before the init containers`
          : skipReason(sidecar);
      return { result: 'skip', reason };
    }
    const revision = sidecar.revision;
    if (!revision.cni)
      return {
        result: 'skip',
        reason: `no Istio CNI (revision ${revision.name}): istio-init sets up the redirect after the init containers`,
      };
    // With interception NONE the injector sets up no redirect of its own; what the CNI plugin then
    // does (its NewRedirect accepts REDIRECT and TPROXY only) is not modelled: say nothing.
    if (annotation(pod, INTERCEPTION) === 'NONE') return { result: 'skip', reason: `${INTERCEPTION} is NONE` };
    const inits = podSpec(pod).initContainers;
    if (!Array.isArray(inits) || inits.length === 0) return { result: 'pass' };
    const proxy = proxyIds(pod);
    // A restartable init container (a sidecar of the pod's own) keeps running: its calls work once
    // istio-proxy is up, and the pod is not held by it failing.
    const captured = inits.filter(
      (c): c is Obj & { name: string } =>
        isRecord(c) &&
        typeof c.name === 'string' &&
        !ISTIO_CONTAINERS.has(c.name) &&
        c.restartPolicy !== 'Always' &&
        !escapes(c, pod, proxy),
    );
    if (captured.length === 0) return { result: 'pass' };
    const names = shown(captured.map((c) => c.name));
    const one = captured.length === 1;
    const subject = `init container${one ? '' : 's'} ${names}`;
    const { ports, ranges } = exclusions(pod);
    if (ports || (ranges && !dnsCapture(pod, mesh))) return { result: 'pass' };
    const them = one ? 'it' : 'them';
    const its = one ? 'its' : 'their';
    if (ranges) {
      return {
        result: 'warn',
        warnings: [
          `${subject}: DNS capture sends ${its} name lookups to istio-proxy, not running yet: exclude port 53 too (excludeOutboundPorts), or runAsUser: ${proxy.uid} on ${them}`,
        ],
      };
    }
    const fixes = [nativeFix(revision), `runAsUser: ${proxy.uid} on ${them}`, 'excludeOutboundIPRanges'];
    return {
      result: 'warn',
      warnings: [
        `${subject}: Istio CNI captures ${its} traffic before istio-proxy runs: connections fail. Fix: ${fixes.filter(Boolean).join(', or ')}`,
      ],
    };
  },
};

export default policy;
