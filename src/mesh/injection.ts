import type { KubeObject } from '../admission/types.js';
import type { ClusterView } from '../cluster/view.js';
import { annotation, podSpec } from './pod.js';
import type { CompiledWebhook, MeshProfile, Revision } from './profile.js';
import type { Labels } from './selector.js';

// Istio source cited below is istio/istio at 86c9f01f (master, 2026-08; the same lines in
// 1.28-1.30); its default webhooks are recorded in shared/istio/webhook/SELECTORS.yaml.

/** The pod label (and, deprecated, annotation) that opts a pod in or out of injection. */
export const INJECT = 'sidecar.istio.io/inject';
const NATIVE = 'sidecar.istio.io/nativeSidecar';
const TEMPLATES = 'inject.istio.io/templates';
/** pkg/kube/inject/initializer.go IgnoredNamespaces (constants.KubeSystemNamespace, …). */
const neverInjected = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);
const noLabels: Labels = Object.freeze({});

/** What Istio will do to a pod, as far as meshguard can tell. */
export type Sidecar = (
  | /** No proxy: `why` says which rule decided. */ { proxy: 'none'; why: string }
    /**
     * Cannot tell (unknown namespace labels, native mode unknown…): policies leave the pod alone.
     * `lacking`: what meshguard lacks to tell, and how to provide it — said once per answer.
     */
  | { proxy: 'unknown'; why: string; revision?: Revision; lacking?: string }
  /** A classic sidecar (istio-proxy in `containers`) or a native one (a restartable init container). */
  | { proxy: 'classic' | 'native'; revision: Revision }
) & {
  /** Decided under the assumption that the namespace, whose labels are unknown, is labelled for injection. */
  readonly assumed?: true;
};

/**
 * The revision that injects the pod, whether or not its sidecar's kind is known (`unknown` with a
 * revision: injected, only native or classic undecided); undefined when it is not injected or
 * that cannot be told.
 */
export function injectingRevision(s: Sidecar): Revision | undefined {
  return s.proxy === 'none' ? undefined : s.revision;
}

/**
 * What a namespace whose labels are unknown means. The webhook cannot tell, so its pod policies do
 * nothing and say why (`cannot-tell`); `meshguard check` judges the pod as Istio would inject it
 * in a namespace labelled for injection, its findings marked not verified (`assume-injected`).
 */
export type UnknownNamespaces = 'cannot-tell' | 'assume-injected';

/** The namespace labels `assume-injected` tries, in order: the pod opting itself in, then each way a namespace opts in. */
function assumedLabels(mesh: MeshProfile): Labels[] {
  const revisions = [...new Set(mesh.webhooks.map((w) => w.revision))];
  return [noLabels, { 'istio-injection': 'enabled' }, ...revisions.map((r) => ({ 'istio.io/rev': r }))];
}

/**
 * Will Istio inject this pod, and how? First the API server: it calls an injector only when one of
 * its webhooks' namespaceSelector and objectSelector match the namespace's and the pod's labels
 * (annotations never opt in). Then that injector's own rules (pkg/kube/inject/inject.go
 * injectRequired), then the native-sidecar choice (webhook.go DetectNativeSidecar and the
 * injection template's `$nativeSidecar`). The engine asks once per review and hands the answer to
 * every pod policy.
 */
export function sidecarOf(
  pod: KubeObject,
  namespace: string,
  cluster: ClusterView,
  mesh: MeshProfile,
  unknownNamespaces: UnknownNamespaces = 'cannot-tell',
): Sidecar {
  const podLabels = pod.metadata?.labels ?? noLabels;
  const never = neverInjectedWhy(pod, namespace);
  if (never) return { proxy: 'none', why: never };
  const nsLabels = cluster.namespaceLabels(namespace);
  if (nsLabels) return decide(pod, podLabels, nsLabels, namespace, mesh);
  // No webhook's objectSelector takes the pod (it opts out with the inject label): none, in any namespace.
  if (!mesh.webhooks.some((w) => w.matchesObject(podLabels))) return decide(pod, podLabels, noLabels, namespace, mesh);
  if (unknownNamespaces === 'assume-injected') {
    let first: Sidecar | undefined;
    for (const labels of assumedLabels(mesh)) {
      const sidecar = decide(pod, podLabels, labels, namespace, mesh);
      if (sidecar.proxy !== 'none') return { ...sidecar, assumed: true };
      first ??= sidecar;
    }
    return { ...(first ?? { proxy: 'none', why: 'no Istio injector webhook selects this pod' }), assumed: true };
  }
  return {
    proxy: 'unknown',
    why: cluster.enabled
      ? `namespace ${namespace || '(none)'} is not known, so neither is whether Istio injects it`
      : 'cluster lookups are off, so the namespace labels that decide injection are unknown',
    lacking: cluster.enabled
      ? `cannot tell whether Istio injects this pod: namespace ${namespace || '(none)'} is not known to meshguard yet`
      : `cannot tell whether Istio injects this pod: the labels of namespace ${namespace || '(none)'} are unknown (cluster lookups are off: give serve credentials or --cluster-state)`,
  };
}

/** injectRequired's first two rules, which hold for every revision whatever the labels: why Istio never injects this pod. */
export function neverInjectedWhy(pod: KubeObject, namespace: string): string | undefined {
  if (podSpec(pod).hostNetwork === true) return 'hostNetwork pods are never injected';
  if (neverInjected.has(namespace)) return `Istio never injects namespace ${namespace}`;
  return undefined;
}

/** Istio's injector never injects this namespace, whatever its labels (initializer.go IgnoredNamespaces). */
export const neverInjectsNamespace = (namespace: string) => neverInjected.has(namespace);

/**
 * What Istio would do to this pod were its labels, or its namespace's, these: advice (what would
 * opt a pod in), never a review's decision, which is the engine's `sidecarOf`.
 */
export function sidecarWith(
  pod: KubeObject,
  labels: { pod?: Labels; namespace: Labels },
  namespace: string,
  mesh: MeshProfile,
): Sidecar {
  const never = neverInjectedWhy(pod, namespace);
  if (never) return { proxy: 'none', why: never };
  return decide(pod, labels.pod ?? pod.metadata?.labels ?? noLabels, labels.namespace, namespace, mesh);
}

/**
 * The injector webhooks the API server calls for a pod with these labels in a namespace with these
 * labels, in the order it calls them: each whose namespaceSelector and objectSelector both match.
 * Empty: no injector ever sees the pod, whatever its annotations say.
 */
export function webhooksCalled(podLabels: Labels, nsLabels: Labels, mesh: MeshProfile): CompiledWebhook[] {
  return mesh.webhooks.filter((w) => w.matchesNamespace(nsLabels) && w.matchesObject(podLabels));
}

/**
 * The pod's own `sidecar.istio.io/inject` as a revision's injector reads it (injectRequired):
 * from 1.12 the label, when present (even empty), replaces the annotation; Istio 1.11 reads the
 * annotation only. Undefined when the pod sets neither.
 */
export function ownInject(
  pod: KubeObject,
  revision: Revision,
  podLabels: Labels = pod.metadata?.labels ?? noLabels,
): { value: string; from: 'label' | 'annotation' } | undefined {
  const label = podLabels[INJECT];
  if (revision.features.injectLabel && typeof label === 'string') return { value: label, from: 'label' };
  const value = annotation(pod, INJECT);
  return value === undefined ? undefined : { value, from: 'annotation' };
}

function decide(pod: KubeObject, podLabels: Labels, nsLabels: Labels, namespace: string, mesh: MeshProfile): Sidecar {
  // The API server calls every matching webhook in order; the first injector that injects wins.
  let revision: Revision | undefined;
  let optedOut: string | undefined;
  for (const webhook of mesh.webhooks) {
    if (!webhook.matchesNamespace(nsLabels) || !webhook.matchesObject(podLabels)) continue;
    const candidate = mesh.revisions.get(webhook.revision);
    if (!candidate) {
      const why = `revision ${webhook.revision} is not known`;
      return { proxy: 'unknown', why, lacking: `cannot tell what Istio injects into this pod: ${why}` };
    }
    const own = ownInject(pod, candidate, podLabels);
    let inject = explicitInject(own?.value ?? '', candidate);
    if (inject === false) optedOut ??= `its ${own?.from ?? 'label'} ${INJECT}="${own?.value ?? ''}" opts it out`;
    if (inject === undefined && candidate.neverInject.some((m) => m(podLabels))) {
      inject = false;
      optedOut ??= `revision ${candidate.name}'s neverInjectSelector matches it`;
    }
    if (inject === undefined && candidate.alwaysInject.some((m) => m(podLabels))) inject = true;
    if (inject ?? candidate.policy === 'enabled') {
      revision = candidate;
      break;
    }
    optedOut ??= `revision ${candidate.name}'s injection policy is disabled and the pod does not opt in`;
  }
  if (!revision) {
    return {
      proxy: 'none',
      why: optedOut
        ? `Istio's injector is called, but ${optedOut}`
        : 'no Istio injector webhook selects this pod in this namespace',
    };
  }

  // The annotation replaces the injector's default `sidecar` template (inject.go selectTemplates):
  // gateway, grpc-agent, grpc-simple and custom templates inject something else, or nothing.
  const templates = annotation(pod, TEMPLATES);
  if (templates !== undefined && !templates.split(',').some((t) => t.trim() === 'sidecar')) {
    return { proxy: 'unknown', why: `${TEMPLATES} "${templates}" replaces Istio's sidecar template` };
  }

  const native = nativeSidecar(pod, revision, mesh);
  if (native === undefined) {
    const why = 'ENABLE_NATIVE_SIDECARS is auto and the kubelet versions are unknown; declare mesh.kubeletVersion';
    return {
      proxy: 'unknown',
      revision,
      why,
      lacking: `cannot tell whether this pod gets a native or a classic sidecar: ${why}`,
    };
  }
  return { proxy: native ? 'native' : 'classic', revision };
}

/**
 * The pod's own `sidecar.istio.io/inject` value (injectRequired): exactly "true" and "false" where
 * the release reads only those (anything else falls back to the default); before, y/yes/true/on
 * in any case meant inject and every other non-empty value meant do not.
 */
export function explicitInject(own: string, revision: Revision): boolean | undefined {
  if (own === '') return undefined;
  if (revision.features.exactInjectValues) return own === 'true' ? true : own === 'false' ? false : undefined;
  return ['y', 'yes', 'true', 'on'].includes(own.toLowerCase());
}

/**
 * The injection template's `$nativeSidecar := ne (annotation | default (printf "%t" .NativeSidecars)) "false"`
 * (istio-discovery files/injection-template.yaml): a non-empty annotation decides, and anything but
 * "false" means native; where the annotation is older, only an exact "true" when it is set.
 * Otherwise ENABLE_NATIVE_SIDECARS: true, false, or auto — native when every kubelet is 1.33 or
 * later (webhook.go DetectNativeSidecar).
 */
function nativeSidecar(pod: KubeObject, revision: Revision, mesh: MeshProfile): boolean | undefined {
  const own = annotation(pod, NATIVE);
  const { nativeSidecarAnnotation, nativeSidecarAuto } = revision.features;
  if (own !== undefined && nativeSidecarAnnotation && !nativeSidecarAuto) return own === 'true';
  if (own !== undefined && own !== '' && nativeSidecarAuto) return own !== 'false';
  return nativeByDefault(revision, mesh);
}

/** A revision's choice for a pod without the annotation: ENABLE_NATIVE_SIDECARS, and the kubelets under auto. */
export function nativeByDefault(revision: Revision, mesh: MeshProfile): boolean | undefined {
  if (!revision.features.nativeSidecarFlag) return false;
  switch (revision.nativeSidecars) {
    case 'enabled':
      return true;
    case 'disabled':
      return false;
    case 'auto':
      // Before the flag took `auto`, it was a boolean: "auto" read as false.
      return revision.features.nativeSidecarAuto ? mesh.kubeletsSupportNative : false;
  }
}

/** The sidecar a revision gives a pod that says nothing about it, as `meshguard mesh` shows it. */
export function defaultSidecarKind(revision: Revision, mesh: MeshProfile): string {
  const native = nativeByDefault(revision, mesh);
  return native === undefined
    ? 'native sidecars unless a kubelet is older than 1.33 (kubelet versions unknown: set mesh.kubeletVersion)'
    : native
      ? 'native sidecars'
      : 'classic sidecars';
}

/**
 * The agent's status port: the pod's `status.sidecar.istio.io/port`, else Istio's 15020
 * (pkg/config/mesh/mesh.go DefaultProxyConfig). The injector reads the annotation with
 * strconv.ParseUint(strings.TrimSpace(v), 10, 16) and rejects the pod when that fails
 * (pkg/kube/inject/validate.go parsePort): undefined. 0 means no status server
 * (pilot-agent/app/cmd.go starts it only for a port > 0).
 */
export function statusPort(pod: KubeObject): number | undefined {
  const own = annotation(pod, 'status.sidecar.istio.io/port');
  if (own === undefined) return 15020;
  const digits = own.trim();
  const port = /^[0-9]{1,5}$/.test(digits) ? Number(digits) : NaN;
  return port <= 65535 ? port : undefined;
}
