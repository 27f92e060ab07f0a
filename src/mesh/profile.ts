import type { MeshSettings } from '../config/types.js';
import {
  injectorFeatures,
  kubeletRunsNative,
  meshFeatures,
  NEWEST_ISTIO,
  oldestOf,
  parseVersion,
  type InjectorFeatures,
  type IstioVersion,
  type MeshFeatures,
} from './releases.js';
import { compileSelector, isEmptySelector, type LabelMatcher, type LabelSelector } from './selector.js';

// The mesh profile: the one place that knows which Istio meshguard guards. It is resolved from
// what meshguard's configuration declares (`mesh:`), what was discovered from Istio's own objects,
// and the newest Istio release's defaults, in that order; then compiled once, so a review only
// reads it.

/** ENABLE_NATIVE_SIDECARS: pilot/pkg/features (auto from Istio 1.27: native when every kubelet is ≥ 1.33). */
export type NativeSidecarMode = 'enabled' | 'auto' | 'disabled';

/** One webhook of an injector's MutatingWebhookConfiguration, as the API server runs it. */
export interface InjectorWebhook {
  /** The configuration's name: the API server calls configurations in name order. */
  readonly configuration: string;
  readonly name: string;
  /** The revision whose istiod serves it (a tag's webhook serves the tagged revision). */
  readonly revision: string;
  readonly namespaceSelector: LabelSelector;
  readonly objectSelector: LabelSelector;
}

/** What one revision's injector does (istiod's env, its injector ConfigMap, its mesh config). */
export interface RevisionSettings {
  version?: IstioVersion;
  nativeSidecars?: NativeSidecarMode;
  /** sidecarInjectorWebhook.rewriteAppHTTPProbe */
  rewriteProbes?: boolean;
  /** meshConfig.defaultConfig / values.global.proxy holdApplicationUntilProxyStarts */
  holdApplicationUntilProxyStarts?: boolean;
  /** the injector ConfigMap's `policy` */
  policy?: 'enabled' | 'disabled';
  neverInjectSelector?: readonly LabelSelector[];
  alwaysInjectSelector?: readonly LabelSelector[];
  /** meshConfig.rootNamespace */
  rootNamespace?: string;
  /** meshConfig.defaultConfig.proxyMetadata ISTIO_META_DNS_CAPTURE */
  dnsCapture?: boolean;
  /** The injector ConfigMap's values.istio_cni.enabled (what the template reads before 1.24). */
  istioCniEnabled?: boolean;
  /** The injector ConfigMap's values.pilot.cni.enabled (what the template reads from 1.22). */
  pilotCniEnabled?: boolean;
  /** meshConfig.defaultConfig.terminationDrainDuration, as written (e.g. "30s"). */
  terminationDrainDuration?: string;
  /** meshConfig.defaultConfig.proxyMetadata.EXIT_ON_ZERO_ACTIVE_CONNECTIONS, as written. */
  exitOnZeroActiveConnections?: string;
  /** values.global.proxy.lifecycle, which replaces istio-proxy's lifecycle in the template, has a preStop. */
  proxyPreStop?: boolean;
}

/** What was discovered from Istio's objects (in a cluster, or among `check`'s inputs). */
export interface DiscoveredMesh {
  /** Webhooks of the injector configurations found; empty when none were. */
  readonly webhooks: readonly InjectorWebhook[];
  readonly revisions: ReadonlyMap<string, RevisionSettings>;
  /** The oldest kubelet's minor version (1.33 → 33), when Nodes were seen. */
  readonly oldestKubeletMinor?: number;
  /** What could not be read, said once by whoever shows the profile. */
  readonly problems: readonly string[];
  /** Mutating configurations that hold a meshguard webhook (`*.meshguard.io`), for the ordering check. */
  readonly meshguardConfigurations?: readonly string[];
}

export const nothingDiscovered: DiscoveredMesh = { webhooks: [], revisions: new Map(), problems: [] };

/** A revision as the policies read it: every setting decided. */
export interface Revision {
  readonly name: string;
  readonly version: IstioVersion;
  /** What this revision's injector does, from the release table. */
  readonly features: InjectorFeatures;
  readonly nativeSidecars: NativeSidecarMode;
  readonly rewriteProbes: boolean;
  readonly holdApplicationUntilProxyStarts: boolean;
  readonly policy: 'enabled' | 'disabled';
  readonly neverInject: readonly LabelMatcher[];
  readonly alwaysInject: readonly LabelMatcher[];
  /** Istio CNI sets up the pod's redirect before any container runs (the template's istio-validation, not istio-init). */
  readonly cni: boolean;
  /** The revision's mesh-wide terminationDrainDuration; undefined: Istio's default (5 s, pkg/config/mesh/mesh.go). */
  readonly terminationDrainDuration: string | undefined;
  /** The revision's mesh-wide proxyMetadata EXIT_ON_ZERO_ACTIVE_CONNECTIONS, as written; undefined: not set. */
  readonly exitOnZeroActiveConnections: string | undefined;
  /** values.global.proxy.lifecycle gives istio-proxy a preStop of the operator's own. */
  readonly proxyPreStop: boolean;
}

export interface CompiledWebhook extends InjectorWebhook {
  readonly matchesNamespace: LabelMatcher;
  readonly matchesObject: LabelMatcher;
}

/** Where a setting of the profile came from, for `meshguard mesh` and the logs. */
export type Origin = 'configured' | 'discovered' | 'default';

export interface MeshProfile {
  /** The oldest Istio among the revisions: a trap that exists on any of them exists in the mesh. */
  readonly version: IstioVersion;
  /** What the mesh's istiods do, from the release table: a change every revision has. */
  readonly features: MeshFeatures;
  readonly rootNamespace: string;
  readonly dnsCapture: boolean;
  /** Every kubelet is ≥ 1.33 (native sidecars under `auto`); undefined when not known. */
  readonly kubeletsSupportNative: boolean | undefined;
  /** Injector webhooks in the order the API server calls them. */
  readonly webhooks: readonly CompiledWebhook[];
  readonly revisions: ReadonlyMap<string, Revision>;
  readonly origins: Readonly<Record<string, Origin>>;
  readonly problems: readonly string[];
}

// Istio's defaults for a release that has the feature (istio-discovery chart values.yaml,
// pilot/pkg/features): probes rewritten, no hold, injection policy enabled, native sidecars auto
// from 1.27 (disabled before).
const defaults = {
  rootNamespace: 'istio-system',
  rewriteProbes: true,
  holdApplicationUntilProxyStarts: false,
  policy: 'enabled' as const,
  dnsCapture: false,
  cni: false,
  proxyPreStop: false,
};
const defaultNative = (v: IstioVersion): NativeSidecarMode =>
  injectorFeatures(v).nativeSidecarAuto ? 'auto' : 'disabled';

/**
 * The webhooks of a default install of `revision` when none were discovered: Istio's chart
 * (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml, recorded in
 * shared/istio/webhook/SELECTORS.yaml). The default revision also gets the legacy
 * `istio-injection=enabled` and pod-label webhooks.
 */
export function chartWebhooks(revision: string): InjectorWebhook[] {
  const rev = revision === '' ? 'default' : revision;
  const configuration = rev === 'default' ? 'istio-sidecar-injector' : `istio-sidecar-injector-${rev}`;
  const notFalse = { key: 'sidecar.istio.io/inject', operator: 'NotIn' as const, values: ['false'] };
  const hooks: InjectorWebhook[] = [
    {
      configuration,
      name: 'rev.namespace.sidecar-injector.istio.io',
      revision: rev,
      namespaceSelector: {
        matchExpressions: [
          { key: 'istio.io/rev', operator: 'In', values: [rev] },
          { key: 'istio-injection', operator: 'DoesNotExist' },
        ],
      },
      objectSelector: { matchExpressions: [notFalse] },
    },
    {
      configuration,
      name: 'rev.object.sidecar-injector.istio.io',
      revision: rev,
      namespaceSelector: {
        matchExpressions: [
          { key: 'istio.io/rev', operator: 'DoesNotExist' },
          { key: 'istio-injection', operator: 'DoesNotExist' },
        ],
      },
      objectSelector: { matchExpressions: [notFalse, { key: 'istio.io/rev', operator: 'In', values: [rev] }] },
    },
  ];
  if (rev === 'default') {
    hooks.push(
      {
        configuration,
        name: 'namespace.sidecar-injector.istio.io',
        revision: rev,
        namespaceSelector: { matchExpressions: [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }] },
        objectSelector: { matchExpressions: [notFalse] },
      },
      {
        configuration,
        name: 'object.sidecar-injector.istio.io',
        revision: rev,
        namespaceSelector: {
          matchExpressions: [
            { key: 'istio-injection', operator: 'DoesNotExist' },
            { key: 'istio.io/rev', operator: 'DoesNotExist' },
          ],
        },
        objectSelector: {
          matchExpressions: [
            { key: 'sidecar.istio.io/inject', operator: 'In', values: ['true'] },
            { key: 'istio.io/rev', operator: 'DoesNotExist' },
          ],
        },
      },
    );
  }
  return hooks;
}

/**
 * Whether the revision's injection template sees CNI on, from its injector values: the key it reads
 * depends on the release (values.istio_cni.enabled until 1.23, values.pilot.cni.enabled from 1.22).
 * Undefined when its values say neither.
 */
function cniOf(found: RevisionSettings, features: InjectorFeatures): boolean | undefined {
  const pilot = features.cniPilotValue ? found.pilotCniEnabled : undefined;
  const legacy = features.cniIstioCniValueDropped ? undefined : found.istioCniEnabled;
  if (pilot === undefined && legacy === undefined) return undefined;
  return pilot === true || legacy === true;
}

/** Istio's neverInject/alwaysInject selectors: an empty one never matches (pkg/kube/inject/inject.go). */
function selectorMatchers(list: readonly LabelSelector[] | undefined): LabelMatcher[] {
  return (list ?? []).filter((s) => !isEmptySelector(s)).map(compileSelector);
}

/**
 * The profile in force: what the configuration declares overrides what was discovered, which
 * overrides the newest Istio release's defaults. Pure, and run once per configuration or
 * discovery change.
 */
export function resolveProfile(declared: MeshSettings, discovered: DiscoveredMesh): MeshProfile {
  const origins: Record<string, Origin> = {};
  const pick = <T>(key: string, configured: T | undefined, found: T | undefined, fallback: T): T => {
    if (configured !== undefined) {
      origins[key] = 'configured';
      return configured;
    }
    if (found !== undefined) {
      origins[key] = 'discovered';
      return found;
    }
    origins[key] ??= 'default';
    return fallback;
  };
  const declaredVersion = parseVersion(declared.istioVersion);

  // Webhooks: discovered, else a default install of each declared revision (or of `default`).
  let hooks: InjectorWebhook[];
  if (declared.revisions !== undefined) {
    origins.webhooks = 'configured';
    hooks = declared.revisions.flatMap(chartWebhooks);
  } else if (discovered.webhooks.length > 0) {
    origins.webhooks = 'discovered';
    hooks = [...discovered.webhooks];
  } else {
    origins.webhooks = 'default';
    hooks = chartWebhooks('default');
  }
  // The API server calls configurations in name order, and a configuration's webhooks in order.
  hooks.sort((a, b) => (a.configuration < b.configuration ? -1 : a.configuration > b.configuration ? 1 : 0));
  const webhooks = hooks.map((h) => ({
    ...h,
    matchesNamespace: compileSelector(h.namespaceSelector),
    matchesObject: compileSelector(h.objectSelector),
  }));

  const names = new Set([...webhooks.map((w) => w.revision), ...discovered.revisions.keys()]);
  if (names.size === 0) names.add('default');
  const revisions = new Map<string, Revision>();
  for (const name of names) {
    const found = discovered.revisions.get(name) ?? {};
    const version = pick('istioVersion', declaredVersion, found.version, NEWEST_ISTIO);
    revisions.set(name, {
      name,
      version,
      features: injectorFeatures(version),
      nativeSidecars: pick('nativeSidecars', declared.nativeSidecars, found.nativeSidecars, defaultNative(version)),
      rewriteProbes: pick('rewriteProbes', declared.rewriteProbes, found.rewriteProbes, defaults.rewriteProbes),
      holdApplicationUntilProxyStarts: pick(
        'holdApplicationUntilProxyStarts',
        declared.holdApplicationUntilProxyStarts,
        found.holdApplicationUntilProxyStarts,
        defaults.holdApplicationUntilProxyStarts,
      ),
      policy: pick('policy', undefined, found.policy, defaults.policy),
      neverInject: selectorMatchers(found.neverInjectSelector),
      alwaysInject: selectorMatchers(found.alwaysInjectSelector),
      cni: pick('cni', declared.cni, cniOf(found, injectorFeatures(version)), defaults.cni),
      terminationDrainDuration: pick<string | undefined>(
        'terminationDrainDuration',
        declared.terminationDrainDuration,
        found.terminationDrainDuration,
        undefined,
      ),
      exitOnZeroActiveConnections: pick<string | undefined>(
        'exitOnZeroActiveConnections',
        declared.exitOnZeroActiveConnections === undefined ? undefined : String(declared.exitOnZeroActiveConnections),
        found.exitOnZeroActiveConnections,
        undefined,
      ),
      proxyPreStop: pick('proxyPreStop', declared.proxyPreStop, found.proxyPreStop, defaults.proxyPreStop),
    });
  }
  const all = [...revisions.values()];
  const oldest = oldestOf(all.map((r) => r.version));
  const anyFound = (f: (s: RevisionSettings) => string | boolean | undefined) =>
    [...discovered.revisions.values()].map(f).find((v) => v !== undefined);
  const kubelet = pick<number | undefined>(
    'kubeletVersion',
    parseVersion(declared.kubeletVersion)?.minor,
    discovered.oldestKubeletMinor,
    undefined,
  );
  return {
    version: oldest,
    features: meshFeatures(oldest),
    rootNamespace: pick(
      'rootNamespace',
      declared.rootNamespace,
      anyFound((s) => s.rootNamespace) as string | undefined,
      defaults.rootNamespace,
    ),
    dnsCapture: pick(
      'dnsCapture',
      declared.dnsCapture,
      anyFound((s) => s.dnsCapture) as boolean | undefined,
      defaults.dnsCapture,
    ),
    kubeletsSupportNative: kubelet === undefined ? undefined : kubeletRunsNative(kubelet),
    webhooks,
    revisions,
    origins,
    problems: discovered.problems,
  };
}
