// meshguard's model of what Istio's injector does to a pod, set beside what the real istiod did to
// it. Both sides are read, never written down: `predict` runs meshguard's engine on the pod (the
// patch 0-meshguard answers with), then asks the model — sidecarOf (injected, revision, native or
// classic), probeRewriting, the hold and drain settings the patched pod and the revision carry —
// and `observe` reads the pod as the API server stored it after Istio's injector. Each fact is a
// short string, so a disagreement reads as "hold: meshguard …, Istio …".
import jsonpatch from 'fast-json-patch';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { requestFor } from '../../src/admission/request.js';
import type { KubeObject } from '../../src/admission/types.js';
import type { Config } from '../../src/config/types.js';
import { evaluate, type Engine } from '../../src/engine/evaluate.js';
import { verdictOf } from '../../src/engine/verdict.js';
import { isRecord } from '../../src/guards.js';
import { sidecarOf } from '../../src/mesh/injection.js';
import { annotation, containers, probes } from '../../src/mesh/pod.js';
import { probeRewriting } from '../../src/mesh/probe-rewrite.js';
import { ownHold, parseProxyConfig, PROXY_CONFIG, proxyMetadataKey } from '../../src/mesh/proxy-config.js';
import { DEFAULT_DRAIN_SECONDS, EXIT } from '../../src/policies/termination-drain.js';

export interface Facts {
  /** The revision that injects the pod, or none. */
  injected: string;
  /** istio-proxy as a regular container (classic) or a restartable init container (native). */
  sidecar: string;
  /** Each app probe that reaches the app over the network, and whether it goes through the agent. */
  probes: string;
  /** The app's probe ports kept out of inbound capture (istio-init's -d). */
  excluded: string;
  /** Whether the app containers wait for istio-proxy, and how. */
  hold: string;
  /** How istio-proxy drains when the pod terminates. */
  drain: string;
}

export const FACTS: readonly (keyof Facts)[] = ['injected', 'sidecar', 'probes', 'excluded', 'hold', 'drain'];

const PROXY = 'istio-proxy';
const NOT_INJECTED = '-';
const HELD_CLASSIC = 'held: istio-proxy first, postStart pilot-agent wait';
const HELD_NATIVE = 'held: native istio-proxy before the app init containers';
const NOT_HELD = 'not held';
const PRESTOP_DRAIN = 'preStop drain';
const notInjected: Facts = {
  injected: 'none',
  sidecar: NOT_INJECTED,
  probes: NOT_INJECTED,
  excluded: NOT_INJECTED,
  hold: NOT_INJECTED,
  drain: NOT_INJECTED,
};
/** Istio's own init containers, which run before a native istio-proxy (webhook.go reorderPod). */
const ISTIO_INIT = new Set(['istio-init', 'istio-validation', 'enable-core-dump']);

/** The app containers' probes that reach the app over the network: the ones the agent can take over. */
function appProbes(pod: KubeObject) {
  return containers(pod).flatMap(({ container }) =>
    container.name === PROXY
      ? []
      : probes(container)
          .filter((p) => p.handler !== 'exec')
          .map((p) => ({ ...p, container: container.name })),
  );
}

const list = (items: readonly string[]) => (items.length === 0 ? 'none' : items.join(', '));
const probePorts = (pod: KubeObject) =>
  new Set(appProbes(pod).flatMap((p) => (typeof p.port === 'number' ? [String(p.port)] : [])));
/** The probe ports among a comma-separated port list, sorted. */
const probePortsIn = (pod: KubeObject, ports: string | undefined) =>
  list(
    [...new Set((ports ?? '').split(',').map((p) => p.trim()))]
      .filter((p) => probePorts(pod).has(p))
      .sort((a, b) => Number(a) - Number(b)),
  );

/** The pod's own ProxyConfig, parsed as the policies parse it; {} when absent or not a mapping. */
function proxyConfigOf(pod: KubeObject): Record<string, unknown> {
  const text = annotation(pod, PROXY_CONFIG);
  const parsed = text === undefined ? undefined : parseProxyConfig(text);
  return parsed?.ok ? parsed.value : {};
}

/**
 * Istio writes into istio-proxy's PROXY_CONFIG only what differs from its defaults (template.go
 * protoToJSON → cleanProxyConfig): a drain duration equal to the default reads as "default".
 */
const drainFacts = (exit: string | undefined, duration: string | undefined, preStop: boolean) =>
  [
    exit === undefined ? `no ${EXIT}` : `${EXIT}=${exit}`,
    `terminationDrainDuration ${duration === undefined || duration === `${DEFAULT_DRAIN_SECONDS}s` ? 'default' : duration}`,
    ...(preStop ? [PRESTOP_DRAIN] : []),
  ].join(', ');

export interface Model {
  engine: Engine;
  config: Config;
}

/** What meshguard's model says Istio will make of this pod, created in `namespace`. */
export function predict(input: V1Pod, namespace: string, { engine, config }: Model): Facts {
  const pod = structuredClone({ apiVersion: 'v1', kind: 'Pod', ...input, metadata: { ...input.metadata, namespace } });
  // 0-meshguard's answer, applied as the API server applies it before Istio's injector.
  const verdict = verdictOf(evaluate({ request: requestFor(pod as KubeObject), stage: 'mutate' }, engine), config);
  const patched = jsonpatch.applyPatch(pod, verdict.patch as jsonpatch.Operation[], true, false)
    .newDocument as KubeObject;
  const sidecar = sidecarOf(patched, namespace, engine.cluster, engine.mesh);
  if (sidecar.proxy === 'none') return notInjected;
  if (sidecar.proxy === 'unknown') {
    const why = `cannot tell (${sidecar.why})`;
    return { injected: sidecar.revision?.name ?? why, sidecar: why, probes: why, excluded: why, hold: why, drain: why };
  }
  const { revision } = sidecar;
  const native = sidecar.proxy === 'native';
  const { rewrites } = probeRewriting(patched, revision);
  const own = proxyConfigOf(patched);
  const metadata = own[proxyMetadataKey(own) ?? 'proxyMetadata'];
  const ownExit = isRecord(metadata) && typeof metadata[EXIT] === 'string' ? metadata[EXIT] : undefined;
  const ownDuration = own.terminationDrainDuration ?? own.termination_drain_duration;
  return {
    injected: revision.name,
    sidecar: sidecar.proxy,
    probes: list(
      appProbes(patched).map(
        (p) => `${p.container}.${p.kind} ${p.handler}: ${rewrites(p.handler) ? 'rewritten' : 'as is'}`,
      ),
    ),
    excluded: probePortsIn(patched, annotation(patched, 'traffic.sidecar.istio.io/excludeInboundPorts')),
    // The injection template holds only a classic proxy; a native one starts before the app.
    hold: native
      ? HELD_NATIVE
      : revision.holdApplicationUntilProxyStarts || ownHold(own) === true
        ? HELD_CLASSIC
        : NOT_HELD,
    drain: drainFacts(
      ownExit ?? revision.exitOnZeroActiveConnections,
      typeof ownDuration === 'string' ? ownDuration : revision.terminationDrainDuration,
      // termination-drain's reading of a native sidecar: Istio's own preStop starts its drain.
      native && !revision.proxyPreStop,
    ),
  };
}

const command = (c: V1Container | undefined, hook: 'postStart' | 'preStop') =>
  (c?.lifecycle?.[hook]?.exec?.command ?? []).join(' ');

/** What Istio's injector made of `input`, read from the pod as stored (`stored`). */
export function observe(input: V1Pod, stored: V1Pod): Facts {
  const inits = stored.spec?.initContainers ?? [];
  const regular = stored.spec?.containers ?? [];
  const initProxy = inits.find((c) => c.name === PROXY);
  const proxy = initProxy ?? regular.find((c) => c.name === PROXY);
  const status = annotation(stored as KubeObject, 'sidecar.istio.io/status');
  if (proxy === undefined || status === undefined) return notInjected;
  const revision = (JSON.parse(status) as { revision?: string }).revision ?? '?';
  const native = initProxy !== undefined && initProxy.restartPolicy === 'Always';
  const sidecar = native ? 'native' : initProxy ? 'init container, not restartable' : 'classic';

  const rewritten = appProbes(input as KubeObject).map((p) => {
    const after = regular.find((c) => c.name === p.container)?.[p.kind];
    const moved = after?.httpGet?.path?.startsWith('/app-health/') === true;
    return `${p.container}.${p.kind} ${p.handler}: ${moved ? 'rewritten' : 'as is'}`;
  });
  const init = inits.find((c) => c.name === 'istio-init');
  const args = init?.args ?? [];
  const excluded = args.includes('-d') ? args[args.indexOf('-d') + 1] : undefined;

  let hold: string;
  if (native) {
    const appInits = inits.flatMap((c, i) => (ISTIO_INIT.has(c.name) || c.name === PROXY ? [] : [i]));
    const before = appInits.every((i) => i > inits.indexOf(initProxy));
    hold = before
      ? HELD_NATIVE
      : `native istio-proxy after app init containers (${inits.map((c) => c.name).join(', ')})`;
  } else {
    const first = regular[0]?.name === PROXY;
    const waits = command(proxy, 'postStart') === 'pilot-agent wait';
    hold =
      first && waits
        ? HELD_CLASSIC
        : !first && !waits
          ? NOT_HELD
          : `istio-proxy first: ${first}, postStart wait: ${waits}`;
  }

  const env = (name: string) => proxy.env?.find((e) => e.name === name)?.value;
  const proxyConfig = JSON.parse(env('PROXY_CONFIG') ?? '{}') as { terminationDrainDuration?: string };
  return {
    injected: revision,
    sidecar,
    probes: list(rewritten),
    excluded: probePortsIn(input as KubeObject, excluded),
    hold,
    drain: drainFacts(env(EXIT), proxyConfig.terminationDrainDuration, command(proxy, 'preStop').includes('drain')),
  };
}

/** Each fact on which meshguard and Istio differ, as one line. */
export const differences = (p: Facts, o: Facts): string[] =>
  FACTS.filter((k) => p[k] !== o[k]).map((k) => `${k}: meshguard ${p[k]}, Istio ${o[k]}`);
