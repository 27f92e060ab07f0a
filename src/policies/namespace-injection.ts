import { namespaceRecord } from '../cluster/records.js';
import type { InjectedPodRecord } from '../cluster/view.js';
import type { Policy } from '../engine/types.js';
import {
  explicitInject,
  INJECT,
  injectingRevision,
  neverInjectsNamespace,
  ownInject,
  sidecarWith,
  webhooksCalled,
} from '../mesh/injection.js';
import type { MeshProfile } from '../mesh/profile.js';
import { INJECTION, REV, revisionNames, showRevisionNames } from '../mesh/revisions.js';
import { withoutLabel, type Labels } from '../mesh/selector.js';

// A namespace's labels decide which injector the API server calls for its pods (istio-discovery
// templates/mutatingwebhook.yaml and revision-tags-mwc.yaml, recorded in
// shared/istio/webhook/SELECTORS.yaml): `istio-injection=enabled` the default revision's (or the
// `default` tag's) injector, `istio.io/rev=<rev>` that revision's or tag's, but only while
// `istio-injection` is absent. Nothing else opts a namespace in; nothing is an error at apply time.
// Which revisions and tags exist, and what a label selects, come from the profile's webhooks.

const plainPod = { metadata: {}, spec: {} };

/** What a pod that says nothing about injection gets in a namespace with these labels. */
function plainOutcome(labels: Labels, namespace: string, mesh: MeshProfile): { revision?: string; text: string } {
  const s = sidecarWith(plainPod, { pod: {}, namespace: labels }, namespace, mesh);
  const revision = injectingRevision(s)?.name;
  if (revision) return { revision, text: `its pods get a sidecar from revision ${revision}` };
  if (s.proxy === 'unknown') return { text: `whether its pods get a sidecar is unknown (${s.why})` };
  return { text: 'its pods get no sidecar' };
}

/** Where the installed names come from: discovered or declared, or assumed (a default install). */
function installed(mesh: MeshProfile): string {
  const names = showRevisionNames(revisionNames(mesh));
  return mesh.origins.webhooks === 'default' ? `${names}, assumed: declare mesh.revisions` : names;
}

/**
 * Injected pods (meshguard audit lists them) that would come back otherwise if created again now:
 * without a sidecar, or from another revision. Counted per revision.
 */
function stalePods(pods: Iterable<InjectedPodRecord>, labels: Labels, namespace: string, mesh: MeshProfile): string[] {
  const lost = new Map<string, number>();
  const moved = new Map<string, number>();
  for (const p of pods) {
    // A pod that now opts itself out (its labels changed since) changed, not its namespace.
    const injector = mesh.revisions.get(p.revision);
    if (injector && explicitInject(ownInject(p.pod, injector)?.value ?? '', injector) === false) continue;
    const now = sidecarWith(p.pod, { namespace: labels }, namespace, mesh);
    if (now.proxy === 'unknown' && now.revision === undefined) continue; // cannot tell: claim nothing
    const revision = injectingRevision(now)?.name;
    if (revision === p.revision) continue;
    const key = revision === undefined ? p.revision : `${p.revision} ${revision}`;
    const counts = revision === undefined ? lost : moved;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const running = (n: number, rev: string) =>
    `${n} running pod${n === 1 ? '' : 's'} injected by revision ${rev} would come back`;
  return [
    ...[...lost].map(
      ([rev, n]) =>
        `${running(n, rev)} without a sidecar if recreated: the namespace's labels no longer select an injector for them`,
    ),
    ...[...moved].map(([change, n]) => {
      const [from = '', to = ''] = change.split(' ');
      return `${running(n, from)} with revision ${to}'s proxy if recreated: the namespace's labels now select ${to}`;
    }),
  ];
}

/**
 * Warns on Namespaces whose injection labels do not do what they seem to: a revision that is not
 * installed, both labels, an `istio-injection` value that is neither enabled nor disabled, and (in
 * `meshguard audit`) injected pods their namespace no longer selects the same injector for.
 */
const policy: Policy<'namespace-injection'> = {
  id: 'namespace-injection',
  action: 'validate',
  targets: [{ group: '', kind: 'Namespace', operations: ['CREATE', 'UPDATE'] }],
  explain(mesh) {
    const disabled = [...mesh.revisions.values()]
      .filter((r) => r.policy === 'disabled')
      .map(
        (r) =>
          `revision ${r.name}'s injector policy is disabled: namespaces labelled for it inject only pods that opt in (${INJECT}: "true")`,
      );
    return {
      exists: true,
      why: [
        `warns on Namespaces whose ${REV} names none of the installed revisions and tags (${installed(mesh)}), that set both labels, or whose ${INJECTION} is neither enabled nor disabled`,
        ...disabled,
      ].join('; '),
    };
  },
  evaluate({ object, mesh, cluster }) {
    const ns = namespaceRecord(object);
    if (!ns) return { result: 'skip', reason: 'not a Namespace' };
    if (neverInjectsNamespace(ns.name)) return { result: 'skip', reason: `Istio never injects namespace ${ns.name}` };
    const { name, labels } = ns;
    const injection = labels[INJECTION];
    const rev = labels[REV];
    const warnings: string[] = [];

    if (rev !== undefined && injection !== undefined && injection !== 'disabled') {
      // istio-injection=disabled beside a revision is a deliberate opt-out (istioctl analyze agrees: IST0123).
      // The revision webhooks require istio-injection to be absent: it wins.
      const both = plainOutcome(labels, name, mesh);
      const alone = plainOutcome(withoutLabel(labels, INJECTION), name, mesh);
      const set = `Istio's webhooks follow ${INJECTION}=${injection} over ${REV}=${rev}`;
      const fix = `Fix: kubectl label ns ${name} ${INJECTION}-`;
      warnings.push(
        both.revision !== undefined && both.revision === alone.revision
          ? `${set}: revision ${both.revision} either way, but changing ${REV} would do nothing. ${fix}`
          : `${set}: ${both.text}, not ${alone.revision ?? rev}'s. ${fix} (or ${REV}-)`,
      );
    } else if (injection !== undefined && injection !== 'enabled' && injection !== 'disabled') {
      const plain = plainOutcome(labels, name, mesh);
      const optedIn = webhooksCalled({ [INJECT]: 'true' }, labels, mesh).length > 0;
      const what = plain.revision || optedIn ? plain.text : `no pod here gets a sidecar, even labelled ${INJECT}=true`;
      warnings.push(
        `${INJECTION}=${injection} is neither enabled nor disabled: ${what}. Fix: set it to enabled or disabled`,
      );
    } else if (rev !== undefined && injection === undefined && !revisionNames(mesh).some((n) => n.name === rev)) {
      warnings.push(
        `${REV}=${rev} names no installed revision or tag (${installed(mesh)}), so its pods get no sidecar. Fix: label it with one of those, or install ${rev}`,
      );
    }

    const pods = cluster.injectedPods(name);
    if (pods) warnings.push(...stalePods(pods, labels, name, mesh));
    return warnings.length > 0 ? { result: 'warn', warnings } : { result: 'pass' };
  },
};

export default policy;
