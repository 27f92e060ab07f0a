import { nativeByDefault } from './injection.js';
import { atLeast, showVersion, type MeshProfile, type Revision } from './profile.js';

// The profile in force as people read it: a summary for logs and /readyz, and per guardrail
// whether its trap exists on this mesh (what `meshguard mesh` prints).

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
    })),
    webhooks: p.webhooks.map((w) => `${w.configuration}/${w.name} → ${w.revision}`),
    origins: p.origins,
    problems: p.problems,
  };
}

/** Per guardrail: does its trap exist on this mesh, and why (by default, before per-pod annotations). */
export function guardrailNotes(p: MeshProfile): Record<string, string> {
  const revs = [...p.revisions.values()];
  const each = (f: (r: Revision) => string) => revs.map((r) => `${r.name}: ${f(r)}`).join('; ');
  const sidecarKind = (r: Revision) => {
    const native = nativeByDefault(r, p);
    return native === undefined
      ? 'native sidecars unless a kubelet is older than 1.33 (kubelet versions unknown: set mesh.kubeletVersion)'
      : native
        ? 'native sidecars'
        : 'classic sidecars';
  };
  return {
    'destinationrule-placement': `acts: Istio reads a DestinationRule from the client's, the host's or the root namespace (${p.rootNamespace})`,
    'externalname-tcp-collision': atLeast(p.version, 21)
      ? `acts on ServiceEntries without addresses on TCP ports${p.dnsCapture ? ' (DNS capture is on: only where no address is allocated)' : ''}; ExternalName Services are DNS aliases from Istio 1.21`
      : 'acts on ExternalName Services and ServiceEntries sharing a TCP port (Istio < 1.21)',
    'hold-application-until-proxy-starts': each((r) =>
      r.holdApplicationUntilProxyStarts
        ? 'nothing to do: the mesh already holds'
        : `${sidecarKind(r)}; acts on pods with a classic sidecar`,
    ),
    'probe-port-exclusion': each((r) =>
      r.rewriteProbes && atLeast(r.version, 13)
        ? 'nothing to do: Istio rewrites every probe (except pods that turn rewriting off)'
        : `probes reach the app through capture${r.rewriteProbes ? ' (tcpSocket/grpc not rewritten before 1.12/1.13)' : ' (rewriting is off)'}: acts`,
    ),
    'job-sidecar-quit': each((r) => `${sidecarKind(r)}; acts on Job pods with a classic sidecar`),
  };
}
