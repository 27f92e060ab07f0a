import { compileSelector, isEmptySelector, type Labels } from '../mesh/selector.js';
import { chart, chartNamespaceSelector, helmUpgrade, releaseOf, type ChartWebhook } from './chart.js';
import { ok, problem, type Finding } from './model.js';
import { patchCommand, webhookObject, type Webhook } from './webhooks.js';

// Check webhook-settings: each of meshguard's webhooks against what the chart installs
// (chart.ts), and why each setting matters. Defaults are the API server's for
// admissionregistration.k8s.io/v1 (k8s.io/api admissionregistration/v1 types.go). A webhook's
// settings that hold make one ok line; each that does not, a problem of its own.

const CHECK = 'webhook-settings';
/** kube-apiserver --request-timeout's default: a request still in admission after this fails. */
export const REQUEST_TIMEOUT_SECONDS = 60;
const DEFAULT_TIMEOUT = 10;

/** A setting that holds (what to say about it), or the problem. */
type Part = string | Finding;

/** Why failing closed hurts, per webhook: what an unavailable meshguard would then refuse. */
const closedWhy: Record<string, string> = {
  'mutate.meshguard.io':
    'while meshguard cannot answer (a rollout, a drained node, an expired certificate) the API server would refuse every pod it sends to meshguard: Deployments, Jobs and gateways get no new pods. Ignore admits them unchanged',
  'namespaces.meshguard.io':
    'an unavailable meshguard would keep anyone from creating or labelling a namespace, and meshguard only warns on them',
  'security.validate.meshguard.io':
    'an unavailable meshguard would keep anyone from changing a PeerAuthentication (turning mTLS on in an incident too), and meshguard only warns on them',
};

export interface SettingsInput {
  /** meshguard's webhooks, mutating and validating. */
  webhooks: readonly Webhook[];
  /** Every namespace's labels, by name (the API server matches namespaceSelector on them). */
  namespaces: ReadonlyMap<string, Labels>;
  /** The longest timeoutSeconds of Istio's injectors (a pod create also waits for it). */
  injectorTimeout: number;
}

export function checkSettings({ webhooks, namespaces, injectorTimeout }: SettingsInput): Finding[] {
  const findings: Finding[] = [];
  const upgrade = helmUpgrade(releaseOf(webhooks));
  for (const spec of chart.webhooks) {
    if (!webhooks.some((w) => w.name === spec.name && w.kind === spec.kind))
      findings.push(
        problem(
          CHECK,
          `${spec.kind}, webhook ${spec.name}`,
          'not registered',
          `meshguard never sees ${describeRules(spec)}`,
          `${upgrade} (the chart registers it)`,
        ),
      );
  }
  for (const w of webhooks) {
    const object = webhookObject(w);
    const spec = chart.webhooks.find((s) => s.name === w.name && s.kind === w.kind);
    const parts: Part[] = [
      failureOf(w, object, spec),
      sideEffectsOf(w, object),
      timeoutOf(w, object, injectorTimeout),
      versionsOf(w, object),
      ...selectorsOf(w, object, namespaces),
      ...(spec ? [rulesOf(w, object, spec, upgrade)] : []),
    ];
    const held = parts.filter((p): p is string => typeof p === 'string');
    if (held.length > 0) findings.push(ok(CHECK, object, held.join('; ')));
    findings.push(...parts.filter((p): p is Finding => typeof p !== 'string'));
  }
  return findings;
}

function failureOf(w: Webhook, object: string, spec: ChartWebhook | undefined): Part {
  const failure = w.failurePolicy ?? 'Fail';
  if (spec?.failurePolicy === 'Ignore' && failure !== 'Ignore')
    return problem(
      CHECK,
      object,
      `failurePolicy ${failure}; the chart installs Ignore`,
      closedWhy[w.name] ?? '',
      patchCommand(w, 'failurePolicy', 'Ignore'),
    );
  return failure === 'Ignore'
    ? 'failurePolicy Ignore'
    : `failurePolicy ${failure} (webhook.validatingFailurePolicy: nothing it validates is admitted while meshguard cannot answer)`;
}

function sideEffectsOf(w: Webhook, object: string): Part {
  const sideEffects = w.sideEffects ?? 'unset';
  if (sideEffects === 'None' || sideEffects === 'NoneOnDryRun') return `sideEffects ${sideEffects}`;
  return problem(
    CHECK,
    object,
    `sideEffects ${sideEffects}; the chart installs ${chart.sideEffects}`,
    'the API server refuses dry-run requests (kubectl apply --dry-run=server, kubectl diff) that a webhook with side effects would see',
    patchCommand(w, 'sideEffects', chart.sideEffects),
  );
}

/**
 * A pod create waits for meshguard's mutating webhook (twice with IfNeeded) and for Istio's
 * injector: past the API server's request timeout, a hung meshguard makes creates time out
 * instead of failing open. Validations are called once, in parallel.
 */
function timeoutOf(w: Webhook, object: string, injectorTimeout: number): Part {
  const seconds = w.timeoutSeconds ?? DEFAULT_TIMEOUT;
  const mutating = w.kind === 'MutatingWebhookConfiguration';
  const calls = mutating && w.reinvocationPolicy === 'IfNeeded' ? 2 : 1;
  const worst = calls * seconds + (mutating ? injectorTimeout : 0);
  if (worst < REQUEST_TIMEOUT_SECONDS) return `timeoutSeconds ${seconds}`;
  return problem(
    CHECK,
    object,
    `timeoutSeconds ${seconds}: a pod create can wait ${calls}×${seconds} s for meshguard and ${injectorTimeout} s for Istio's injector`,
    `that reaches the API server's request timeout (${REQUEST_TIMEOUT_SECONDS} s by default): while meshguard hangs, pod creates time out instead of failing open`,
    `${patchCommand(w, 'timeoutSeconds', chart.timeoutSeconds)} (or helm upgrade with --set webhook.timeoutSeconds=${chart.timeoutSeconds})`,
  );
}

function versionsOf(w: Webhook, object: string): Part {
  const versions = w.admissionReviewVersions;
  if (versions.includes('v1') || versions.includes('v1beta1')) return `admissionReviewVersions ${versions.join(', ')}`;
  return problem(
    CHECK,
    object,
    `admissionReviewVersions ${versions.join(', ') || 'empty'}: meshguard answers v1 and v1beta1 only`,
    'the API server sends the first version of this list it knows; meshguard cannot read any of them, so every call fails',
    patchCommand(w, 'admissionReviewVersions', chart.admissionReviewVersions),
  );
}

function selectorsOf(w: Webhook, object: string, namespaces: ReadonlyMap<string, Labels>): Part[] {
  const out: Part[] = [];
  const sends = compileSelector(w.namespaceSelector);
  // A namespace not listed still carries its name label (Kubernetes ≥ 1.21).
  const sent = (ns: string) => sends(namespaces.get(ns) ?? { 'kubernetes.io/metadata.name': ns });
  const own = w.clientConfig.service?.namespace;
  const fix = own
    ? `${patchCommand(w, 'namespaceSelector', chartNamespaceSelector(own))} (the chart's selector)`
    : `set namespaceSelector to leave out kube-system and meshguard's namespace: ${JSON.stringify(chartNamespaceSelector('MESHGUARD_NAMESPACE'))}`;
  if (sent('kube-system'))
    out.push(
      problem(
        CHECK,
        object,
        "namespaceSelector sends kube-system's objects to meshguard",
        'kube-system holds what the cluster heals itself with (DNS, the network plugin, kube-proxy): while meshguard is slow or down, each of their creates waits for it, or is refused when failurePolicy is Fail',
        fix,
      ),
    );
  if (own && sent(own))
    out.push(
      problem(
        CHECK,
        object,
        `namespaceSelector sends meshguard's own namespace ${own} to meshguard`,
        "meshguard's own pods are created through its own webhook: while none runs, each new one waits for a webhook that is not there, and with failurePolicy Fail meshguard never comes back",
        fix,
      ),
    );
  if (out.length === 0) out.push(`namespaceSelector leaves out kube-system${own ? ` and ${own}` : ''}`);
  if (!compileSelector(w.objectSelector)({}))
    out.push(
      problem(
        CHECK,
        object,
        `objectSelector ${JSON.stringify(w.objectSelector)} sends only objects with those labels`,
        "every other pod and workload reaches Istio without meshguard's checks and changes",
        patchCommand(w, 'objectSelector', {}),
      ),
    );
  else if (!isEmptySelector(w.objectSelector))
    out.push(`objectSelector ${JSON.stringify(w.objectSelector)} still sends unlabelled objects`);
  return out;
}

/** "pods CREATE; services CREATE, UPDATE" */
function describeRules(spec: Pick<ChartWebhook, 'rules'>): string {
  return spec.rules.map((r) => `${r.resources.join(', ')} ${r.operations.join(', ')}`).join('; ');
}

const covers = (have: readonly string[], want: string) => have.includes(want) || have.includes('*');

/** The chart's rules a webhook's rules leave out (group, resource, operation), as the API server matches them. */
function rulesOf(w: Webhook, object: string, spec: ChartWebhook, upgrade: string): Part {
  const missing: string[] = [];
  for (const r of spec.rules)
    for (const group of r.apiGroups)
      for (const resource of r.resources)
        for (const op of r.operations)
          if (
            !w.rules.some(
              (h) => covers(h.apiGroups, group) && covers(h.resources, resource) && covers(h.operations, op),
            )
          )
            missing.push(`${group === '' ? '' : `${group}/`}${resource} ${op}`);
  if (missing.length === 0) return 'rules as the chart installs them';
  return problem(
    CHECK,
    object,
    `rules leave out ${missing.join(', ')}`,
    'meshguard never sees those requests: its policies on them do nothing',
    `${upgrade} (the chart's rules: charts/meshguard/files/webhooks.yaml), or by hand: kubectl edit ${w.kind.toLowerCase()} ${w.configuration}`,
  );
}
