import type {
  ClusterView,
  DestinationRuleRecord,
  PeerAuthenticationRecord,
  ServicePort,
  ServiceRecord,
  WorkloadRecord,
} from '../cluster/view.js';
import { destinationRuleRecord, peerAuthenticationRecord, serviceRecord, tlsModesOf } from '../cluster/records.js';
import type { Config } from '../config/types.js';
import { isRecord } from '../guards.js';
import type { Policy, PolicyContext, Result } from '../engine/types.js';
import { rulesCovering, serviceScope, tlsFor, use, type TlsAt } from '../mesh/destination-rules.js';
import type { PeerAuthentications } from '../mesh/mtls.js';
import type { MeshProfile } from '../mesh/profile.js';
import { inMesh, selectedWorkloads, strictness, type Strictness } from '../mesh/service-mtls.js';

// A DestinationRule's explicit tls replaces Istio's auto mTLS: DISABLE and SIMPLE are used as
// written (pilot/pkg/networking/core/cluster_tls.go buildUpstreamTLSSettings: "userSupplied"), so
// a sidecar or gateway sends plain text or one-way TLS where auto mTLS would have sent Istio mTLS.
// A server whose PeerAuthentication mode is STRICT accepts only Istio mTLS (authn
// policy_applier.go, authn/utils BuildInboundTLS): every such request fails. Ambient clients are
// not affected: ztunnel and waypoints reach mesh workloads over HBONE whatever the rule's tls.

type Ctx = PolicyContext<'mtls-conflict'>;

/** The tls modes that bypass Istio mTLS. (SIMPLE with a credentialName on a sidecar is plain text: cluster_tls.go.) */
const BYPASS: ReadonlySet<string> = new Set(['DISABLE', 'SIMPLE']);
const MAX_NAMED = 3;

interface Conflict {
  svc: ServiceRecord;
  port: ServicePort;
  subset?: string;
  tls: TlsAt;
  server: Strictness;
  rule: DestinationRuleRecord;
}

const TCP = (p: ServicePort) => p.protocol === 'TCP';
const ruleLabel = (dr: { namespace: string; name: string }) => `${dr.namespace}/${dr.name}`;

/** `tls DISABLE sends plain text`, `subset v1's port-level tls SIMPLE sends one-way TLS`. */
function sends(c: Conflict): string {
  const where = {
    rule: '',
    none: '',
    port: 'port-level ',
    subset: `subset ${c.subset}'s `,
    'subset port': `subset ${c.subset}'s port-level `,
  }[c.tls.level];
  return `${where}tls ${c.tls.tls} sends ${c.tls.tls === 'SIMPLE' ? 'one-way TLS' : 'plain text'}`;
}

const target = (c: Conflict) => `Service ${c.svc.namespace}/${c.svc.name}:${c.port.port}`;
const strictBy = (s: Strictness) => (s.by ? `PeerAuthentication ${ruleLabel(s.by)}` : 'a PeerAuthentication');
const FAILS = 'sidecar and gateway clients fail';
const more = (n: number) => (n > 1 ? ` (+${n - 1} more)` : '');
/** What is not known, first: the rest of a long warning may be cut at 256 characters. */
const unverified = (s: Strictness) => (s.strict === 'maybe' ? `not verified (${s.unknown}): ` : '');

/**
 * Where this rule sends Istio-mTLS-breaking TLS to pods that accept only mTLS. `pas`: the
 * PeerAuthentications to judge with.
 */
function conflicts(
  rule: DestinationRuleRecord,
  cluster: ClusterView,
  pas: PeerAuthentications,
  mesh: MeshProfile,
  config: Config,
  limit = Infinity,
): Conflict[] {
  const scope = serviceScope(rule, config.clusterDomain);
  let services: Iterable<ServiceRecord>;
  switch (scope.kind) {
    case 'none':
      return [];
    case 'service': {
      const svc = cluster.service(scope.namespace, scope.name);
      services = svc ? [svc] : [];
      break;
    }
    case 'namespace':
      services = cluster.servicesIn(scope.namespace);
      break;
    case 'all':
      services = everyService(cluster, pas, mesh);
  }
  const out: Conflict[] = [];
  for (const svc of services) {
    if (!svc.selector || svc.type === 'ExternalName') continue;
    const u = use(
      rule,
      rulesCovering(cluster, svc, config.clusterDomain),
      svc,
      config.clusterDomain,
      mesh.rootNamespace,
      mesh.features,
    );
    if (!u.used) continue;
    const own = !u.from;
    for (const port of svc.ports) {
      if (!TCP(port)) continue;
      const found = (tls: TlsAt, subset?: { name: string; labels?: Readonly<Record<string, string>> }) => {
        if (!tls.tls || !BYPASS.has(tls.tls)) return;
        const server = strictness(cluster, pas, mesh, svc, port, subset?.labels);
        if (server.strict === 'no') return;
        out.push({ svc, port, tls, server, rule, ...(subset && { subset: subset.name }) });
      };
      if (own) found(tlsFor(u.trafficPolicy, port.port));
      for (const sub of rule.subsets) {
        if (u.droppedSubsets.has(sub.name)) continue;
        const tls = tlsFor(u.trafficPolicy, port.port, sub.trafficPolicy);
        // The rule-level setting is judged above for all the Service's pods.
        if (tls.level === 'subset' || tls.level === 'subset port') found(tls, sub);
      }
      if (out.filter((c) => c.server.strict === 'yes').length >= limit) return out;
    }
  }
  return out;
}

/**
 * Every Service a mesh-wide wildcard rule covers, namespace by namespace, leaving out namespaces
 * where no PeerAuthentication can make anything STRICT: the common case costs a lookup per namespace.
 */
function* everyService(cluster: ClusterView, pas: PeerAuthentications, mesh: MeshProfile): Iterable<ServiceRecord> {
  const strict = (pa: PeerAuthenticationRecord) => pa.mode === 'STRICT' || pa.ports?.some((p) => p.mode === 'STRICT');
  const meshWide = [...pas.peerAuthenticationsIn(mesh.rootNamespace)].some((pa) => !pa.selector && strict(pa));
  for (const ns of cluster.serviceNamespaces()) {
    if (meshWide || [...pas.peerAuthenticationsIn(ns)].some(strict)) yield* cluster.servicesIn(ns);
  }
}

/** The first conflict as a sentence, with the count of the others. */
function describe(found: readonly Conflict[]): string {
  const first = found[0] as Conflict;
  return `${unverified(first.server)}${sends(first)} to ${target(first)}, where ${strictBy(first.server)} is STRICT: ${FAILS}; use ISTIO_MUTUAL${more(found.length)}`;
}

function judgeRule({ object, namespace, cluster, mesh, config }: Ctx): Result {
  const rule = destinationRuleRecord(object, namespace);
  if (!rule) return { result: 'skip', reason: 'no spec.host or metadata.name to read' };
  if (![...tlsModesOf(rule)].some((m) => BYPASS.has(m))) return { result: 'pass' };
  const found = conflicts(rule, cluster, cluster, mesh, config, MAX_NAMED);
  const sure = found.filter((c) => c.server.strict === 'yes');
  if (sure.length > 0) return { result: 'fail', message: describe(sure) };
  return found.length > 0 ? { result: 'warn', warnings: [describe(found)] } : { result: 'pass' };
}

/** The view's PeerAuthentications with one replaced (or removed, given none). */
function replacing(
  cluster: ClusterView,
  id: { namespace: string; name: string },
  pa?: PeerAuthenticationRecord,
): PeerAuthentications {
  return {
    *peerAuthenticationsIn(ns) {
      for (const p of cluster.peerAuthenticationsIn(ns))
        if (p.namespace !== id.namespace || p.name !== id.name) yield p;
      if (pa && pa.namespace === ns) yield pa;
    },
  };
}

const key = (c: Conflict) => `${ruleLabel(c.rule)} ${c.svc.namespace}/${c.svc.name}:${c.port.port} ${c.subset ?? ''}`;

/**
 * A PeerAuthentication that makes pods STRICT where DestinationRules already send plain text or
 * one-way TLS: what fails once it is applied (compared with the policy it replaces, or none).
 */
function judgePeerAuthentication({ object, oldObject, namespace, cluster, mesh, config }: Ctx): Result {
  const pa = peerAuthenticationRecord(object, namespace);
  if (!pa) return { result: 'skip', reason: 'not a PeerAuthentication' };
  // Only STRICT, or UNSET inheriting it, can make a pod STRICT.
  const modes = [pa.mode, ...(pa.ports ?? []).map((p) => p.mode)];
  if (!modes.includes('STRICT') && !modes.includes('UNSET')) return { result: 'pass' };
  const old = oldObject ? peerAuthenticationRecord(oldObject, namespace) : undefined;
  const after = replacing(cluster, pa, pa);
  const before = replacing(cluster, pa, old);
  const rules = new Map<string, DestinationRuleRecord>();
  for (const mode of BYPASS) for (const dr of cluster.destinationRulesWithTlsMode(mode)) rules.set(ruleLabel(dr), dr);
  const found: Conflict[] = [];
  for (const rule of rules.values()) {
    const was = new Set(conflicts(rule, cluster, before, mesh, config).map(key));
    for (const c of conflicts(rule, cluster, after, mesh, config)) if (!was.has(key(c))) found.push(c);
  }
  if (found.length === 0) return { result: 'pass' };
  found.sort((a, b) => (a.server.strict === b.server.strict ? 0 : a.server.strict === 'yes' ? -1 : 1));
  const first = found[0] as Conflict;
  return {
    result: 'warn',
    warnings: [
      `${unverified(first.server)}makes ${target(first)} STRICT, where DestinationRule ${ruleLabel(first.rule)}'s ${sends(first)}: ${FAILS}; change that rule's tls${more(found.length)}`,
    ],
  };
}

/**
 * A Service that routes both to pods that accept only mTLS and to pods outside the mesh (never
 * injected: hostNetwork, opted out): the same trap from the other side — plain-text clients fail
 * on the first, and any explicit tls mode fails on one of the two. Seen only where the workloads
 * are among the objects (check, audit).
 */
function judgeService({ object, namespace, cluster, mesh }: Ctx): Result {
  const svc = serviceRecord(object, namespace);
  if (!svc?.selector || svc.type === 'ExternalName') return { result: 'skip', reason: 'no selector' };
  const workloads = selectedWorkloads(cluster, svc);
  if (workloads.length < 2) return { result: 'pass' };
  const outside = workloads.filter((w) => inMesh(w.pod, svc.namespace, cluster, mesh).meshed === 'no');
  if (outside.length === 0) return { result: 'pass' };
  for (const port of svc.ports) {
    if (!TCP(port)) continue;
    const server = strictness(cluster, cluster, mesh, svc, port);
    if (server.strict !== 'yes' || !server.workload) continue;
    const o = outside[0] as WorkloadRecord;
    const s = server.workload;
    return {
      result: 'warn',
      warnings: [
        `port ${port.port} reaches pods outside the mesh (${o.kind} ${o.name}: ${whyOutside(o)}) and STRICT ones (${s.kind} ${s.name}, ${strictBy(server)}): plain-text clients fail on the latter, a DestinationRule tls on one side; split it`,
      ],
    };
  }
  return { result: 'pass' };
}

/** Why Istio leaves a workload's pods without a sidecar, in a word. */
function whyOutside(w: WorkloadRecord): string {
  if (isRecord(w.pod.spec) && w.pod.spec.hostNetwork === true) return 'hostNetwork';
  const own =
    w.pod.metadata?.labels?.['sidecar.istio.io/inject'] ?? w.pod.metadata?.annotations?.['sidecar.istio.io/inject'];
  return own === 'false' ? 'opted out' : 'not injected';
}

const policy: Policy<'mtls-conflict'> = {
  id: 'mtls-conflict',
  action: 'validate',
  targets: [
    { group: 'networking.istio.io', kind: 'DestinationRule', operations: ['CREATE', 'UPDATE'] },
    { group: 'security.istio.io', kind: 'PeerAuthentication', operations: ['CREATE', 'UPDATE'] },
    { group: '', kind: 'Service', operations: ['CREATE', 'UPDATE'] },
  ],
  explain: () => ({
    exists: true,
    why: 'acts: a DestinationRule tls mode DISABLE or SIMPLE replaces auto mTLS (every release), and STRICT pods refuse it from sidecars and gateways',
  }),
  evaluate(ctx) {
    if (!ctx.cluster.enabled)
      return { result: 'skip', reason: 'cluster lookups are off: PeerAuthentications are unknown' };
    if (ctx.object.kind === 'PeerAuthentication') return judgePeerAuthentication(ctx);
    if (ctx.object.kind === 'Service') return judgeService(ctx);
    return judgeRule(ctx);
  },
};

export default policy;
