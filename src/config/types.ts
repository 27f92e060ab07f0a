// The configuration after schema validation and defaults (policies/meshguard.schema.json).

export type Mode = 'enforce' | 'warn' | 'off';
export type GlobalMode = 'enforce' | 'warn';
export type ProbeType = 'tcpSocket' | 'httpGet' | 'grpc';

export interface PolicySettings {
  'destinationrule-placement': { mode: Mode };
  'externalname-tcp-collision': { mode: Mode };
  'hold-application-until-proxy-starts': { mode: Mode };
  'probe-port-exclusion': { mode: Mode; probeTypes: ProbeType[] };
  'job-sidecar-quit': { mode: Mode; readyTimeoutSeconds: number; requireShellCommand: boolean };
}

export type PolicyId = keyof PolicySettings;

export interface Override {
  namespaces: string[];
  mode?: GlobalMode;
  policies?: Partial<Record<PolicyId, { mode: Mode }>>;
}

export interface Config {
  mode: GlobalMode;
  rootNamespace: string;
  clusterDomain: string;
  excludeNamespaces: string[];
  nativeSidecars: boolean;
  onError: 'allow' | 'deny';
  policies: PolicySettings;
  overrides: Override[];
}
