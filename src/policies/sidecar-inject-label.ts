import type { KubeObject } from '../admission/types.js';
import type { PolicyContext, Policy, Result } from '../engine/types.js';
import { templatePath, workloadKinds } from '../engine/workloads.js';
import { isRecord } from '../guards.js';
import {
  explicitInject,
  INJECT,
  injectingRevision,
  neverInjectedWhy,
  sidecarWith,
  type Sidecar,
} from '../mesh/injection.js';
import { annotation, label } from '../mesh/pod.js';
import type { MeshProfile, Revision } from '../mesh/profile.js';
import { showVersion } from '../mesh/releases.js';
import { INJECTION, REV, revisionNames, showRevisionNames } from '../mesh/revisions.js';
import { withoutLabel, type Labels } from '../mesh/selector.js';

// `sidecar.istio.io/inject`, the FAQs' most repeated confusion. Facts, all from istio/istio:
// - The API server calls an injector only when one of its webhooks' selectors match the pod's and
//   the namespace's LABELS (istio-discovery templates/mutatingwebhook.yaml, recorded in
//   shared/istio/webhook/SELECTORS.yaml): an annotation never opts a pod in; a pod's own label
//   counts only in a namespace with neither istio-injection nor istio.io/rev.
// - The injector then reads the pod's own value, the label over the annotation (from 1.12), and
//   honours "false" from either (pkg/kube/inject/inject.go injectRequired): an annotation can opt out.
// - Which values count changed in 1.27 (release row exactInjectValues).
// - Only the pod's own metadata is read: a workload's or a namespace's is not (istioctl analyze
//   reports such annotations as IST0107 MisplacedAnnotation: analyzers/annotations/annotations.go).
// meshguard never changes whether a pod is injected: it warns, saying what Istio will do.

type Says = 'inject' | 'skip' | 'unclear';
const INJECT_WORDS = new Set(['true', 'yes', 'y', 'on', 'enabled', 'enable', '1']);
const SKIP_WORDS = new Set(['false', 'no', 'n', 'off', 'disabled', 'disable', '0']);

/** What a value says to the person who wrote it. */
function says(value: string): Says {
  const word = value.trim().toLowerCase();
  return INJECT_WORDS.has(word) ? 'inject' : SKIP_WORDS.has(word) ? 'skip' : 'unclear';
}

const injected = (s: Sidecar) => injectingRevision(s) !== undefined;
/** Whether Istio injects is known (only native or classic may not be). */
const decided = (s: Sidecar) => s.proxy !== 'unknown' || s.revision !== undefined;
const NO_WEBHOOK = /^no Istio injector webhook selects/;

/**
 * What Istio gives the pod, short (warnings are cut at 256 characters): the reason for no sidecar
 * only when the message does not say it already (no webhook selects the pod, or its own value
 * opts it out). Undefined when it cannot be told.
 */
function gets(s: Sidecar): string | undefined {
  const revision = injectingRevision(s);
  if (revision) return `a sidecar from revision ${revision.name}`;
  if (s.proxy !== 'none') return undefined;
  return NO_WEBHOOK.test(s.why) || s.why.startsWith("Istio's injector is called, but its ")
    ? 'no sidecar'
    : `no sidecar (${s.why})`;
}

/** How a revision's injector reads the pod's own value (injectRequired), for a message. */
function reading(value: string, from: 'label' | 'annotation', r: Revision): string {
  const istio = `Istio ${showVersion(r.version)}`;
  if (from === 'label' && !r.features.injectLabel) return `${istio}'s injector reads only the annotation`;
  const read = explicitInject(value, r);
  if (r.features.exactInjectValues)
    return read === undefined ? `${istio} reads only "true"/"false" and takes it as unset` : `${istio} reads it`;
  return read ? `${istio} reads it as "true"` : `${istio} reads all but y/yes/true/on as "false"`;
}

/** Whether a revision's injector reads the value as its spelling says. */
function readsAsSaid(value: string, from: 'label' | 'annotation', r: Revision, said: Says): boolean {
  if (said === 'unclear') return false;
  const read = from === 'label' && !r.features.injectLabel ? undefined : explicitInject(value, r);
  return read === (said === 'inject');
}

interface Pod {
  pod: KubeObject;
  namespace: string;
  /** The namespace's labels, when known. */
  nsLabels: Labels | undefined;
  sidecar: Sidecar;
  mesh: MeshProfile;
}

/** Would Istio inject the pod with these labels, or in a namespace with these labels? */
function injectsWith({ pod, namespace, nsLabels, mesh }: Pod, podLabels: Labels, ns: Labels | undefined = nsLabels) {
  return ns !== undefined && injected(sidecarWith(pod, { pod: podLabels, namespace: ns }, namespace, mesh));
}

/**
 * The one-line change that gets the pod a sidecar here, tried in order: its own label, a revision
 * label, then the namespace's labels (dropping a blocking istio-injection, naming an installed
 * revision). Undefined when nothing would (hostNetwork, kube-system).
 */
function optIn(p: Pod): string | undefined {
  if (neverInjectedWhy(p.pod, p.namespace)) return undefined;
  const own = p.pod.metadata?.labels ?? {};
  const labelled = { ...own, [INJECT]: 'true' };
  if (own[INJECT] !== 'true' && (p.nsLabels === undefined || injectsWith(p, labelled))) return 'make it a pod label';
  if (p.nsLabels === undefined) return undefined;
  const names = revisionNames(p.mesh);
  for (const { name } of names) if (injectsWith(p, { ...own, [REV]: name })) return `label the pod ${REV}=${name}`;
  const kubectl = `kubectl label ns ${p.namespace}`;
  const injection = p.nsLabels[INJECTION];
  const without = withoutLabel(p.nsLabels, INJECTION);
  if (injection !== undefined && injectsWith(p, labelled, without)) return `${kubectl} ${INJECTION}-`;
  if (p.nsLabels[REV] === undefined && injectsWith(p, own, { ...p.nsLabels, [INJECTION]: 'enabled' }))
    return `${kubectl} ${INJECTION}=enabled --overwrite`;
  for (const { name } of names)
    if (injectsWith(p, own, { ...without, [REV]: name }))
      return `${kubectl} ${REV}=${name} --overwrite${injection === undefined ? '' : ` ${INJECTION}-`}`;
  return undefined;
}

const withFix = (message: string, fix: string | undefined) => (fix ? `${message}. Fix: ${fix}` : message);
const warn = (message: string): Result => ({ result: 'warn', warnings: [message] });

/** Why a pod labelled exactly "true" is seen by no injector. */
function unselectedWhy(p: Pod): string {
  const injection = p.nsLabels?.[INJECTION];
  if (injection !== undefined && injection !== 'enabled')
    return `namespace ${p.namespace} has ${INJECTION}=${injection} (no webhook reads pod labels there)`;
  const rev = p.nsLabels?.[REV];
  const names = revisionNames(p.mesh);
  if (rev !== undefined && injection === undefined && !names.some((n) => n.name === rev))
    return `namespace ${p.namespace}'s ${REV}=${rev} is not installed (installed: ${showRevisionNames(names)})`;
  return p.sidecar.proxy === 'none' ? p.sidecar.why : 'no injector is called';
}

function judgePod(p: Pod): Result {
  const own = label(p.pod, INJECT);
  const ann = annotation(p.pod, INJECT);
  if (own === undefined && ann === undefined) return { result: 'pass' };
  const { sidecar, mesh } = p;

  // An annotation that means to opt in: only the namespace's webhooks ever call an injector.
  if (own === undefined && ann !== undefined && says(ann) === 'inject') {
    const revision = injectingRevision(sidecar);
    const here =
      revision === undefined
        ? gets(sidecar)
        : `${gets(sidecar)}, ${revision.policy === 'disabled' ? 'whose injector (policy disabled) still reads it' : 'thanks to its namespace'}`;
    const message = `the annotation ${INJECT}="${ann}" opts nothing in (webhooks select pods by label)`;
    return warn(withFix(here ? `${message}. Here: ${here}` : message, optIn(p)));
  }

  // A value whose effect differs from its spelling on this mesh.
  const value = own ?? (ann as string);
  const from = own === undefined ? 'annotation' : 'label';
  if (value !== 'true' && value !== 'false') {
    const said = says(value);
    const injecting = injectingRevision(sidecar);
    const revisions = injecting ? [injecting] : [...mesh.revisions.values()];
    const misread = revisions.filter((r) => !readsAsSaid(value, from, r, said));
    const wrongOutcome = decided(sidecar) && said !== 'unclear' && injected(sidecar) !== (said === 'inject');
    if (said === 'unclear' || misread.length > 0 || wrongOutcome) {
      const canon = said === 'inject' ? 'true' : said === 'skip' ? 'false' : undefined;
      const how = [...new Set((misread.length > 0 ? misread : revisions).map((r) => reading(value, from, r)))];
      // Read as it says, yet not injected: the webhooks' objectSelectors compare label values exactly.
      const exactly = misread.length === 0 && from === 'label' ? ', but webhooks match the label exactly' : '';
      let message = `${INJECT}="${value}" is not "${canon ?? 'true" or "false'}": ${how.join('; ')}${exactly}`;
      const here = gets(sidecar);
      if (here) message += `. Here: ${here}`;
      if (canon && p.nsLabels !== undefined && here) {
        const fixed = from === 'label' ? { ...p.pod.metadata?.labels, [INJECT]: canon } : undefined;
        const annotated = { ...p.pod, metadata: { ...p.pod.metadata, annotations: { [INJECT]: canon } } };
        const alt = sidecarWith(
          fixed ? p.pod : annotated,
          { ...(fixed && { pod: fixed }), namespace: p.nsLabels },
          p.namespace,
          mesh,
        );
        if (injected(alt) !== injected(sidecar)) message += `; with "${canon}": ${gets(alt)}`;
      }
      return warn(`${message}. Fix: write ${canon ? `"${canon}"` : '"true" or "false"'}`);
    }
  }

  // The label "true" where no webhook takes it: the namespace decides against it.
  if (own === 'true' && sidecar.proxy === 'none')
    return warn(withFix(`${INJECT}=true gets no sidecar: ${unselectedWhy(p)}`, optIn(p)));
  return { result: 'pass' };
}

/** The key on a workload's or a namespace's own metadata, which no Istio component reads. */
function judgeOwnMetadata({ object, sidecar }: PolicyContext<'sidecar-inject-label'>): Result {
  const value = label(object, INJECT) ?? annotation(object, INJECT);
  if (value === undefined) return { result: 'pass' };
  const kind = object.kind ?? '';
  if (kind === 'Namespace') {
    const fix = says(value) === 'skip' ? `${INJECTION}=disabled` : `${INJECTION}=enabled or ${REV}=<revision>`;
    return warn(`${INJECT} on a Namespace is read by no Istio webhook or injector. Fix: label the namespace ${fix}`);
  }
  // A controller copies its owner's metadata (a Deployment's into its ReplicaSets): the person
  // applying the owner was told.
  const owners: unknown = object.metadata?.ownerReferences;
  if (Array.isArray(owners) && owners.some((o) => isRecord(o) && o.controller === true))
    return { result: 'skip', reason: 'its controller copied it from its owner' };
  const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : '';
  const group = apiVersion.includes('/') ? (apiVersion.split('/')[0] ?? '') : '';
  const path = templatePath(group, kind);
  if (!path) return { result: 'skip', reason: 'not a workload' };
  let template: unknown = object;
  for (const k of path) template = (template as Record<string, unknown> | undefined)?.[k];
  const meta = (template as { metadata?: { labels?: unknown; annotations?: unknown } } | undefined)?.metadata;
  const has = (m: unknown) => typeof m === 'object' && m !== null && Object.hasOwn(m, INJECT);
  // The template says it too: it decides, and the copy on the workload is harmless.
  if (has(meta?.labels) || has(meta?.annotations)) return { result: 'pass' };
  const pods = gets(sidecar);
  return warn(
    `${INJECT} on the ${kind}'s own metadata is never read (Istio reads its pods')${pods ? `: its pods get ${pods}` : ''}. Fix: move it to ${path.join('.')}.metadata.labels`,
  );
}

/**
 * Warns where `sidecar.istio.io/inject` will not do what it says: an annotation meant to opt in,
 * a value Istio reads otherwise, a label no webhook takes in its namespace, or the key on a
 * workload's or namespace's own metadata. Never changes injection.
 */
const policy: Policy<'sidecar-inject-label'> = {
  id: 'sidecar-inject-label',
  action: 'validate',
  targets: [
    { group: '', kind: 'Pod', operations: ['CREATE'] },
    ...workloadKinds.map(({ group, kind }) => ({ group, kind, operations: ['CREATE', 'UPDATE'] as const })),
    { group: '', kind: 'Namespace', operations: ['CREATE', 'UPDATE'] },
  ],
  explain(mesh) {
    const revisions = [...mesh.revisions.values()];
    const how = (r: Revision) =>
      !r.features.injectLabel
        ? 'the injector reads the annotation only; webhooks select on the label'
        : r.features.exactInjectValues
          ? 'only exactly "true"/"false" count, anything else leaves it to the namespace'
          : 'y/yes/true/on (any case) inject, any other value opts out';
    return {
      exists: true,
      why: `warns where sidecar.istio.io/inject does not do what it says; ${revisions.map((r) => `${r.name} (Istio ${showVersion(r.version)}): ${how(r)}`).join('; ')}`,
    };
  },
  evaluate(ctx) {
    if (ctx.object.kind !== 'Pod') return judgeOwnMetadata(ctx);
    return judgePod({
      pod: ctx.object,
      namespace: ctx.namespace,
      nsLabels: ctx.sidecar.assumed ? undefined : ctx.cluster.namespaceLabels(ctx.namespace),
      sidecar: ctx.sidecar,
      mesh: ctx.mesh,
    });
  },
};

export default policy;
