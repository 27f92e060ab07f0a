// The configuration after schema validation and defaults (policies/meshguard.schema.json).

export type Mode = 'enforce' | 'warn' | 'off';
export type GlobalMode = 'enforce' | 'warn';

export interface PolicySettings {
  'destinationrule-placement': { mode: Mode };
  'externalname-tcp-collision': { mode: Mode };
  'hold-application-until-proxy-starts': { mode: Mode };
  'probe-port-exclusion': { mode: Mode };
  'job-sidecar-quit': { mode: Mode; readyTimeoutSeconds: number; requireShellCommand: boolean };
  'sidecar-inject-label': { mode: Mode };
  'namespace-injection': { mode: Mode };
  'init-containers-network': { mode: Mode };
  'termination-drain': { mode: Mode };
  'mtls-conflict': { mode: Mode };
  'service-port-protocol': { mode: Mode };
  'sidecar-annotations': { mode: Mode };
}

export type PolicyId = keyof PolicySettings;

export interface Override {
  namespaces: string[];
  mode?: GlobalMode;
  policies?: Partial<Record<PolicyId, { mode: Mode }>>;
}

export interface Config {
  mode: GlobalMode;
  clusterDomain: string;
  excludeNamespaces: string[];
  /** The mesh profile as declared: each key set here overrides what is discovered. */
  mesh: MeshSettings;
  onError: 'allow' | 'deny';
  policies: PolicySettings;
  overrides: Override[];
}

/** `mesh:` — what the configuration declares about the Istio guarded; unset keys are discovered or default. */
export interface MeshSettings {
  istioVersion?: string;
  rootNamespace?: string;
  nativeSidecars?: 'enabled' | 'auto' | 'disabled';
  /** The oldest kubelet's version ("1.33"), for nativeSidecars: auto where Nodes cannot be read. */
  kubeletVersion?: string;
  rewriteProbes?: boolean;
  holdApplicationUntilProxyStarts?: boolean;
  dnsCapture?: boolean;
  /** Istio CNI sets up the pods' redirect (values.pilot.cni.enabled; istio_cni.enabled before 1.24). */
  cni?: boolean;
  /** meshConfig.defaultConfig.terminationDrainDuration mesh-wide, e.g. "30s". */
  terminationDrainDuration?: string;
  /** meshConfig.defaultConfig.proxyMetadata EXIT_ON_ZERO_ACTIVE_CONNECTIONS mesh-wide. */
  exitOnZeroActiveConnections?: boolean;
  /** values.global.proxy.lifecycle gives istio-proxy a preStop of its own. */
  proxyPreStop?: boolean;
  /** Installed revisions and tags, when their webhook configurations cannot be seen. */
  revisions?: string[];
}
