import { setAnnotation } from '../admission/patch.js';
import type { KubeObject } from '../admission/types.js';
import type { Policy, Result } from '../engine/types.js';
import { isRecord } from '../guards.js';
import { memoize } from '../memo.js';
import { defaultSidecarKind, nativeByDefault, type Sidecar } from '../mesh/injection.js';
import { annotation, annotationsPatchable, podSpec } from '../mesh/pod.js';
import type { Revision } from '../mesh/profile.js';
import { skipReason } from '../mesh/reasons.js';
import {
  MAX_PROXY_CONFIG,
  PROXY_CONFIG,
  parseProxyConfig,
  proxyMetadataKey,
  withProxyMetadata,
} from '../mesh/proxy-config.js';

// Istio source cited below is istio/istio at 86c9f01f (master, 2026-08; the same lines in 1.28-1.30).

/** The agent's switch (pilot/cmd/pilot-agent/options/options.go), set through ProxyConfig's proxyMetadata. */
export const EXIT = 'EXIT_ON_ZERO_ACTIVE_CONNECTIONS';
/** ProxyConfig's drain time after SIGTERM, in both spellings protojson reads. */
const DRAIN_KEYS = ['terminationDrainDuration', 'termination_drain_duration'];
/** Istio's default terminationDrainDuration (pkg/config/mesh/mesh.go DefaultProxyConfig). */
export const DEFAULT_DRAIN_SECONDS = 5;
/** Kubernetes' default terminationGracePeriodSeconds. */
const DEFAULT_GRACE_SECONDS = 30;
const summary = `set proxyMetadata ${EXIT}: "true" in ${PROXY_CONFIG}`;
const withoutValue = `${PROXY_CONFIG} is not a YAML mapping of ProxyConfig`;

/** What an existing annotation text calls for: it depends on the text alone. */
type Reading = { kind: 'invalid'; warning: string } | { kind: 'explicit' } | { kind: 'append'; value: string };

function read(current: string): Reading {
  const parsed = parseProxyConfig(current);
  const invalid = (why: string): Reading => ({
    kind: 'invalid',
    warning: `${withoutValue} (${why}); left unchanged, ${EXIT} not set`,
  });
  if (!parsed.ok) return invalid(parsed.problem);
  // Either setting, whatever its value, is the user's choice about how the proxy drains.
  if (DRAIN_KEYS.some((k) => Object.hasOwn(parsed.value, k))) return { kind: 'explicit' };
  const key = proxyMetadataKey(parsed.value);
  const metadata = key === undefined ? undefined : parsed.value[key];
  if (metadata != null && !isRecord(metadata)) return invalid(`${key} is not a mapping`);
  if (isRecord(metadata) && Object.hasOwn(metadata, EXIT)) return { kind: 'explicit' };
  return { kind: 'append', value: withProxyMetadata(current, parsed.value, EXIT, 'true') };
}

// Every pod of a Deployment carries the same text: read each distinct text once (as hold does).
const reading = memoize(read, 256, 2048);

/** The pod's terminationGracePeriodSeconds; unset is Kubernetes' 30 s. Undefined when not a number. */
function gracePeriod(pod: KubeObject): number | undefined {
  const v = podSpec(pod).terminationGracePeriodSeconds;
  if (v == null) return DEFAULT_GRACE_SECONDS;
  return typeof v === 'number' ? v : undefined;
}

/**
 * The pod's own istio-proxy container, which Istio merges over the injected one
 * (pkg/kube/inject/inject.go: containers named istio-proxy override the template): an
 * EXIT_ON_ZERO_ACTIVE_CONNECTIONS in its env, or a preStop of its own, is the user's drain.
 */
function ownProxyDrain(pod: KubeObject): string | undefined {
  const list = podSpec(pod).containers;
  const proxy = Array.isArray(list) ? list.find((c) => isRecord(c) && c.name === 'istio-proxy') : undefined;
  if (!isRecord(proxy)) return undefined;
  if (Array.isArray(proxy.env) && proxy.env.some((e) => isRecord(e) && e.name === EXIT))
    return `its istio-proxy container sets ${EXIT}`;
  if (isRecord(proxy.lifecycle) && isRecord(proxy.lifecycle.preStop))
    return 'its istio-proxy container has a preStop of its own';
  return undefined;
}

/** Why the revision's mesh-wide settings leave nothing to do, if they do. */
function meshDrain(r: Revision): string | undefined {
  if (r.terminationDrainDuration !== undefined)
    return `the mesh sets terminationDrainDuration ${r.terminationDrainDuration} (revision ${r.name})`;
  if (r.exitOnZeroActiveConnections !== undefined)
    return `the mesh sets ${EXIT}=${r.exitOnZeroActiveConnections} (revision ${r.name})`;
  if (r.proxyPreStop) return `values.global.proxy.lifecycle gives istio-proxy its own preStop (revision ${r.name})`;
  return undefined;
}

/**
 * A native sidecar is told to drain by Istio's own preStop when the pod starts terminating, and
 * gets SIGTERM only once the app containers have exited (pkg/envoy/agent.go Run, exit path 4), so
 * no drain timer runs while the app still serves; EXIT_ON_ZERO_ACTIVE_CONNECTIONS only changes
 * what the agent does after SIGTERM.
 */
const nativeReason = (s: Sidecar) =>
  s.proxy === 'native'
    ? `native sidecar (revision ${s.revision.name}): it gets SIGTERM only after the app containers exit`
    : skipReason(s);

/** Keeps a classic istio-proxy up while connections are open when the pod terminates, not 5 s. */
const policy: Policy<'termination-drain'> = {
  id: 'termination-drain',
  action: 'mutate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  explain(mesh) {
    const revisions = [...mesh.revisions.values()];
    const note = (r: Revision) => {
      const set = meshDrain(r);
      if (set) return `${r.name}: nothing to do: ${set.replace(/ \(revision [^)]*\)$/, '')}`;
      const kind = defaultSidecarKind(r, mesh);
      if (nativeByDefault(r, mesh) === true) return `${r.name}: ${kind}; acts only on pods that get a classic sidecar`;
      const fix = r.features.exitOnZeroActiveConnections
        ? `sets ${EXIT} on pods whose grace period is longer`
        : `warns (no ${EXIT} before Istio 1.12)`;
      return `${r.name}: ${kind}; a classic istio-proxy drains ${DEFAULT_DRAIN_SECONDS} s: ${fix}`;
    };
    return {
      exists: revisions.some((r) => meshDrain(r) === undefined && nativeByDefault(r, mesh) !== true),
      why: revisions.map(note).join('; '),
    };
  },
  evaluate({ object: pod, sidecar }): Result {
    // The agent drains for terminationDrainDuration after SIGTERM, then exits (pkg/envoy/agent.go
    // terminate); a classic istio-proxy gets SIGTERM with the app containers.
    if (sidecar.proxy !== 'classic') return { result: 'skip', reason: nativeReason(sidecar) };
    const revision = sidecar.revision;
    const set = meshDrain(revision);
    if (set) return { result: 'skip', reason: set };
    const grace = gracePeriod(pod);
    if (grace === undefined) return { result: 'skip', reason: 'terminationGracePeriodSeconds is not a number' };
    if (grace <= DEFAULT_DRAIN_SECONDS)
      return {
        result: 'skip',
        reason: `terminationGracePeriodSeconds ${grace} is no longer than the proxy's ${DEFAULT_DRAIN_SECONDS} s drain`,
      };
    const own = ownProxyDrain(pod);
    if (own) return { result: 'skip', reason: own };
    if (!annotationsPatchable(pod)) return { result: 'skip', reason: 'metadata.annotations is not a map' };
    const current = annotation(pod, PROXY_CONFIG);
    if (current !== undefined && current.length > MAX_PROXY_CONFIG) {
      return {
        result: 'warn',
        warnings: [
          `${PROXY_CONFIG} is larger than ${MAX_PROXY_CONFIG / 1024} KiB, more than a ProxyConfig needs; left unchanged, ${EXIT} not set`,
        ],
      };
    }
    const r: Reading =
      current === undefined ? { kind: 'append', value: withProxyMetadata('', {}, EXIT, 'true') } : reading(current);
    if (r.kind === 'invalid') return { result: 'warn', warnings: [r.warning] };
    if (r.kind === 'explicit') return { result: 'pass' };
    if (!revision.features.exitOnZeroActiveConnections) {
      // Istio 1.11's agent has no such switch: only a longer terminationDrainDuration keeps the
      // proxy up, and it is waited out in full at every rollout: the user's call, not meshguard's.
      return {
        result: 'warn',
        warnings: [
          `istio-proxy stops ${DEFAULT_DRAIN_SECONDS} s after termination starts (grace period ${grace} s), cutting longer requests; Istio ${revision.version.major}.${revision.version.minor} has no ${EXIT}: set terminationDrainDuration in ${PROXY_CONFIG}`,
        ],
      };
    }
    return {
      result: 'mutate',
      patch: [setAnnotation(pod.metadata?.annotations, PROXY_CONFIG, r.value)],
      summary,
    };
  },
};

export default policy;
