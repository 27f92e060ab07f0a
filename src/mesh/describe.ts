import type { MeshProfile } from './profile.js';
import { showVersion } from './releases.js';

// The profile in force as people read it: a summary for logs, /readyz and `meshguard mesh`. Per
// guardrail, whether its trap exists on this mesh is the policy's own `explain`.

export interface ProfileSummary {
  istioVersion: string;
  rootNamespace: string;
  dnsCapture: boolean;
  kubeletsSupportNative: boolean | 'unknown';
  revisions: {
    name: string;
    version: string;
    nativeSidecars: string;
    rewriteProbes: boolean;
    holdApplicationUntilProxyStarts: boolean;
    policy: string;
    cni: boolean;
    /** Mesh-wide drain settings of the revision's mesh config; absent: Istio's default (5 s). */
    terminationDrainDuration?: string;
    exitOnZeroActiveConnections?: string;
    proxyPreStop: boolean;
  }[];
  webhooks: string[];
  origins: Readonly<Record<string, string>>;
  problems: readonly string[];
}

export function summarize(p: MeshProfile): ProfileSummary {
  return {
    istioVersion: showVersion(p.version),
    rootNamespace: p.rootNamespace,
    dnsCapture: p.dnsCapture,
    kubeletsSupportNative: p.kubeletsSupportNative ?? 'unknown',
    revisions: [...p.revisions.values()].map((r) => ({
      name: r.name,
      version: showVersion(r.version),
      nativeSidecars: r.nativeSidecars,
      rewriteProbes: r.rewriteProbes,
      holdApplicationUntilProxyStarts: r.holdApplicationUntilProxyStarts,
      policy: r.policy,
      cni: r.cni,
      ...(r.terminationDrainDuration !== undefined && { terminationDrainDuration: r.terminationDrainDuration }),
      ...(r.exitOnZeroActiveConnections !== undefined && {
        exitOnZeroActiveConnections: r.exitOnZeroActiveConnections,
      }),
      proxyPreStop: r.proxyPreStop,
    })),
    webhooks: p.webhooks.map((w) => `${w.configuration}/${w.name} → ${w.revision}`),
    origins: p.origins,
    problems: p.problems,
  };
}
