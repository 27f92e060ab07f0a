// Istio's behaviour by release, as data: the one place that knows which Istio release changed
// what. Istio keeps its own release differences the same way (manifests/helm-profiles/
// compatibility-version-*.yaml, named feature flags in pilot/pkg/features). A row is a named change
// and the first release that has it, with the source it comes from (istio/istio; "1.NN:" names the
// release branch where the line first appears). The profile resolves the rows once per revision
// and once for the mesh; policies read named facts, never version numbers.
//
// Adding a release or a behaviour change: one row here, then golden cases on both sides of it
// (policies/<id>/cases), citing the row's source.

/** An Istio minor version: 1.30 is `{ major: 1, minor: 30 }`. */
export interface IstioVersion {
  readonly major: number;
  readonly minor: number;
}

/** The newest Istio release meshguard knows: an unset version means this one's defaults. */
export const NEWEST_ISTIO: IstioVersion = { major: 1, minor: 31 };

/** The oldest release meshguard models (the FAQs' meshes): anything older is not taken for Istio. */
const OLDEST_ISTIO: IstioVersion = { major: 1, minor: 11 };

interface Change {
  /** The first 1.x release with the change. */
  readonly since: number;
  readonly source: string;
}

/**
 * Changes to what a revision's injector does to a pod. The injecting revision's own release
 * decides: revisions of one mesh may differ.
 */
const injectorChanges = {
  /** The pod label `sidecar.istio.io/inject` is read, and replaces the annotation. */
  injectLabel: { since: 12, source: 'pkg/kube/inject/inject.go injectRequired (1.12: label over annotation)' },
  /** Only exactly "true"/"false" count; before, y/yes/true/on (any case) meant inject, any other value not. */
  exactInjectValues: { since: 27, source: 'pkg/kube/inject/inject.go injectRequired (istio/istio#56737)' },
  /** tcpSocket probes are rewritten through the agent (httpGet always were). */
  tcpProbeRewrite: { since: 12, source: 'pkg/kube/inject/app_probe.go (1.12: tcpSocket)' },
  /** grpc probes are rewritten through the agent. */
  grpcProbeRewrite: { since: 13, source: 'pkg/kube/inject/app_probe.go (1.13: grpc)' },
  /** istiod's ENABLE_NATIVE_SIDECARS exists (default false). */
  nativeSidecarFlag: { since: 19, source: 'pilot/pkg/features/pilot.go EnableNativeSidecars (1.19)' },
  /** The pod annotation sidecar.istio.io/nativeSidecar exists (read as exactly "true" until 1.26). */
  nativeSidecarAnnotation: { since: 24, source: 'pkg/kube/inject/webhook.go DetectNativeSidecar (1.24)' },
  /**
   * ENABLE_NATIVE_SIDECARS takes `auto` and defaults to it (native when every kubelet is ≥ 1.33;
   * before, "auto" read as false), and a non-empty annotation means native unless "false"
   * (istio-discovery files/injection-template.yaml `$nativeSidecar`).
   */
  nativeSidecarAuto: { since: 27, source: 'pilot/pkg/features/pilot.go, webhook.go DetectNativeSidecar (1.27)' },
  /**
   * The injection template reads `values.pilot.cni.enabled` as well as `values.istio_cni.enabled`
   * (istio-discovery files/injection-template.yaml `or .Values.pilot.cni.enabled .Values.istio_cni.enabled`).
   */
  cniPilotValue: { since: 22, source: 'istio-discovery files/injection-template.yaml (1.22: pilot.cni.enabled)' },
  /** The template reads only `values.pilot.cni.enabled`: `values.istio_cni` is no longer read (nor rendered). */
  cniIstioCniValueDropped: {
    since: 24,
    source: 'istio-discovery files/injection-template.yaml, templates/istiod-injector-configmap.yaml (1.24)',
  },
  /**
   * The agent (the revision's proxy image) reads EXIT_ON_ZERO_ACTIVE_CONNECTIONS: on SIGTERM it waits
   * MINIMUM_DRAIN_DURATION, then until Envoy has no active connections, instead of terminationDrainDuration.
   */
  exitOnZeroActiveConnections: {
    since: 12,
    source: 'pilot/cmd/pilot-agent/options/options.go, pkg/envoy/agent.go terminate (1.12)',
  },
  /** The injector reads CIDR annotations with netip.ParsePrefix (net.ParseCIDR before). */
  netipPrefixes: { since: 16, source: 'pkg/kube/inject/validate.go validateCIDRList (istio/istio#41336, 1.16)' },
  /** sidecar.istio.io/enableCoreDump is no longer read, nor validated as a Go boolean. */
  coreDumpAnnotationDropped: { since: 25, source: 'pkg/kube/inject/validate.go (istio/istio#53830, 1.25)' },
  /**
   * The proxy's resource annotations must be quantities without control characters (and the
   * template quotes them). Also in the patch releases 1.27.6 and 1.28.4, which a minor version
   * cannot tell apart: before the row, only what every patch release refuses is refused.
   */
  proxyResourceValidation: {
    since: 29,
    source: 'pkg/kube/inject/validate.go validateResourceQuantity (istio/istio#58928; 1.29.0, 1.28.4, 1.27.6)',
  },
  /** excludeInterfaces, kubevirtInterfaces and istio.io/reroute-virtual-interfaces must list interface names. */
  interfaceNameValidation: {
    since: 30,
    source: 'pkg/kube/inject/validate.go ValidateExcludeInterfaces (istio/istio#58785, 1.30)',
  },
} as const satisfies Record<string, Change>;

/**
 * Changes to the configuration every istiod pushes to its proxies. A trap that exists on any
 * revision exists in the mesh, so the mesh has a change only when every revision has it (its
 * oldest revision decides).
 */
const meshChanges = {
  /** A DestinationRule's workloadSelector is read (the rule is then private to its namespace). */
  workloadSelectorDestinationRules: {
    since: 14,
    source: 'pilot/pkg/model/push_context.go setDestinationRules, sidecar.go DestinationRule (1.14)',
  },
  /** Istio no longer knows the protocol name `thrift`: a port named thrift-… or with protocol thrift is sniffed. */
  thriftUnknown: {
    since: 14,
    source: 'pkg/config/protocol/instance.go Parse (1.14: thrift removed, istio/istio#37287)',
  },
  /** Service appProtocol kubernetes.io/h2c is HTTP2. */
  h2cAppProtocol: { since: 19, source: 'pkg/config/kube/conversion.go ConvertProtocol (1.19)' },
  /** ExternalName Services are DNS aliases with no listener of their own (the old behaviour removed in 1.24). */
  externalNameAlias: {
    since: 21,
    source: 'pilot/pkg/features/pilot.go ENABLE_EXTERNAL_NAME_ALIAS (1.21 on by default)',
  },
  /** Service appProtocol kubernetes.io/ws and kubernetes.io/wss are HTTP and HTTPS. */
  wsAppProtocol: { since: 24, source: 'pkg/config/kube/conversion.go ConvertProtocol (1.24)' },
  /** Sidecars that capture DNS use the addresses Istio's allocator gave ServiceEntries. */
  allocatedAddressesWithDnsCapture: {
    since: 24,
    source: 'pilot/pkg/model/service.go nodeUsesAutoallocatedIPs (1.24)',
  },
  /** DestinationRules of one namespace for the same host merge only when their exportTo is the same (ENABLE_ENHANCED_DESTINATIONRULE_MERGE). */
  destinationRuleMergeByExportTo: {
    since: 24,
    source: 'pilot/pkg/model/destination_rule.go mergeDestinationRule (1.24, istio/istio#52636)',
  },
  /** Istio's IP allocator gives address-less ServiceEntries an address by default. */
  ipAutoallocateByDefault: {
    since: 25,
    source: 'pilot/pkg/features/pilot.go PILOT_ENABLE_IP_AUTOALLOCATE (1.25 on by default)',
  },
} as const satisfies Record<string, Change>;

/** Kubernetes runs restartable init containers (sidecars) on kubelets from this minor: Istio's `auto` asks for it. */
const NATIVE_SIDECAR_KUBELET = {
  minor: 33,
  source: 'pkg/kube/inject/webhook.go DetectNativeSidecar (kubelet ≥ 1.33)',
} as const;

export type InjectorFeature = keyof typeof injectorChanges;
export type MeshFeature = keyof typeof meshChanges;
export type InjectorFeatures = Readonly<Record<InjectorFeature, boolean>>;
export type MeshFeatures = Readonly<Record<MeshFeature, boolean>>;

/** Every row with its source, for documentation and tests. */
export const releaseTable: Readonly<Record<string, Change>> = {
  ...injectorChanges,
  ...meshChanges,
  nativeSidecarKubelet: { since: NATIVE_SIDECAR_KUBELET.minor, source: NATIVE_SIDECAR_KUBELET.source },
};

const has = (v: IstioVersion, since: number) => v.major > 1 || (v.major === 1 && v.minor >= since);

function resolve<K extends string>(rows: Readonly<Record<K, Change>>, v: IstioVersion): Readonly<Record<K, boolean>> {
  const out = {} as Record<K, boolean>;
  for (const key of Object.keys(rows) as K[]) out[key] = has(v, rows[key].since);
  return Object.freeze(out);
}

/** What a revision's injector of this release does. */
export const injectorFeatures = (v: IstioVersion): InjectorFeatures => resolve(injectorChanges, v);

/** What the mesh does when its oldest revision is of this release. */
export const meshFeatures = (v: IstioVersion): MeshFeatures => resolve(meshChanges, v);

/** Every kubelet of this minor or later runs native sidecars (Istio's `auto`). */
export const kubeletRunsNative = (kubeletMinor: number) => kubeletMinor >= NATIVE_SIDECAR_KUBELET.minor;

/** A version Istio released (1.11 or later): a source-built chart's 1.0.0 or a dev tag is not one. */
export const isRelease = (v: IstioVersion) => has(v, OLDEST_ISTIO.minor);

export function parseVersion(text: string | undefined): IstioVersion | undefined {
  // "1.30", "1.30.2", "v1.30.2", "1.31-dev", "1.30.2-distroless": the minor version decides.
  const m = text === undefined ? null : /^v?(\d+)\.(\d+)(?:[.\-+_].*)?$/.exec(text.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

export const showVersion = (v: IstioVersion) => `${v.major}.${v.minor}`;

/** The oldest of these versions (the newest release when there are none). */
export function oldestOf(versions: Iterable<IstioVersion>): IstioVersion {
  let oldest = NEWEST_ISTIO;
  for (const v of versions)
    if (v.major < oldest.major || (v.major === oldest.major && v.minor < oldest.minor)) oldest = v;
  return oldest;
}
