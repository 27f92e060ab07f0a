import { isRecord } from '../guards.js';
import { INJECTOR_WEBHOOK, MESHGUARD_WEBHOOK } from '../mesh/discover.js';
import { parseSelector, type LabelSelector } from '../mesh/selector.js';

// Webhook configurations as doctor reads them (admissionregistration.k8s.io/v1): every webhook
// with the fields the API server acts on, and which are meshguard's and which are Istio's
// injector. Pure; the objects come from a listing.

export type WebhookKind = 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';

export interface ServiceRef {
  namespace: string;
  name: string;
  path?: string;
  /** The Service's port; the API server's default is 443. */
  port: number;
}

export interface ClientConfig {
  service?: ServiceRef;
  url?: string;
  /** base64 PEM, as stored; '' when absent (the API server then trusts its system roots). */
  caBundle: string;
}

export interface Rule {
  apiGroups: string[];
  resources: string[];
  operations: string[];
}

export interface Webhook {
  kind: WebhookKind;
  configuration: string;
  /** The configuration's annotations (cert-manager's inject-ca-from says who writes the caBundle). */
  annotations: Readonly<Record<string, string>>;
  /** Its place in the configuration's `webhooks`, for a JSON patch. */
  index: number;
  name: string;
  clientConfig: ClientConfig;
  failurePolicy?: string;
  reinvocationPolicy?: string;
  sideEffects?: string;
  timeoutSeconds?: number;
  admissionReviewVersions: string[];
  matchPolicy?: string;
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
  rules: Rule[];
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
/** The API server validated the selectors it stored; one that does not parse came from elsewhere and selects nothing here. */
const selector = (v: unknown): LabelSelector => {
  const parsed = parseSelector(v);
  return parsed.ok ? parsed.selector : { matchExpressions: [{ key: 'meshguard.io/invalid', operator: 'Exists' }] };
};

function clientConfigOf(v: unknown): ClientConfig {
  const cc = isRecord(v) ? v : {};
  const svc = isRecord(cc.service) ? cc.service : undefined;
  const path = str(svc?.path);
  return {
    caBundle: str(cc.caBundle) ?? '',
    ...(svc && {
      service: {
        namespace: str(svc.namespace) ?? '',
        name: str(svc.name) ?? '',
        ...(path !== undefined && { path }),
        port: typeof svc.port === 'number' ? svc.port : 443,
      },
    }),
    ...(str(cc.url) !== undefined && { url: str(cc.url) }),
  };
}

/** Every webhook of these configurations (as listed: items of one kind). */
export function webhooksOf(configurations: readonly unknown[], kind: WebhookKind): Webhook[] {
  const out: Webhook[] = [];
  for (const c of configurations) {
    if (!isRecord(c) || !Array.isArray(c.webhooks)) continue;
    const meta = isRecord(c.metadata) ? c.metadata : {};
    const annotations = isRecord(meta.annotations) ? (meta.annotations as Record<string, string>) : {};
    c.webhooks.forEach((w: unknown, index) => {
      if (!isRecord(w)) return;
      const timeout = w.timeoutSeconds;
      out.push({
        kind,
        configuration: str(meta.name) ?? '',
        annotations,
        index,
        name: str(w.name) ?? '',
        clientConfig: clientConfigOf(w.clientConfig),
        ...(str(w.failurePolicy) !== undefined && { failurePolicy: str(w.failurePolicy) }),
        ...(str(w.reinvocationPolicy) !== undefined && { reinvocationPolicy: str(w.reinvocationPolicy) }),
        ...(str(w.sideEffects) !== undefined && { sideEffects: str(w.sideEffects) }),
        ...(typeof timeout === 'number' && { timeoutSeconds: timeout }),
        admissionReviewVersions: strings(w.admissionReviewVersions),
        ...(str(w.matchPolicy) !== undefined && { matchPolicy: str(w.matchPolicy) }),
        namespaceSelector: selector(w.namespaceSelector),
        objectSelector: selector(w.objectSelector),
        rules: (Array.isArray(w.rules) ? w.rules : []).filter(isRecord).map((r) => ({
          apiGroups: strings(r.apiGroups),
          resources: strings(r.resources),
          operations: strings(r.operations),
        })),
      });
    });
  }
  return out;
}

export const isMeshguard = (w: Webhook) => MESHGUARD_WEBHOOK.test(w.name);

/** The path a webhook calls, whether through a Service or at a URL. */
function pathOf(cc: ClientConfig): string | undefined {
  if (cc.service) return cc.service.path;
  try {
    return cc.url === undefined ? undefined : new URL(cc.url).pathname;
  } catch {
    return undefined;
  }
}

/** istiod's Services: istiod, istiod-<revision>, istiod-revision-tag-<tag> (istio-discovery templates). */
const ISTIOD_SERVICE = /^istiod(-.+)?$/;

/**
 * Istio's sidecar injector, by name (`*.sidecar-injector.istio.io`, as the istio-discovery chart
 * names them) or by what it calls: istiod serves injection at /inject and /inject/<params>
 * (pkg/kube/inject/webhook.go), and no other mutating webhook of Istio's calls istiod's Service;
 * so a renamed or hand-made injector configuration is found too.
 */
export function isIstioInjector(w: Webhook): boolean {
  if (w.kind !== 'MutatingWebhookConfiguration') return false;
  const path = pathOf(w.clientConfig);
  return (
    INJECTOR_WEBHOOK.test(w.name) ||
    path === '/inject' ||
    (path?.startsWith('/inject/') ?? false) ||
    ISTIOD_SERVICE.test(w.clientConfig.service?.name ?? '')
  );
}

/** "MutatingWebhookConfiguration 0-meshguard, webhook mutate.meshguard.io" */
export const webhookObject = (w: Webhook) => `${w.kind} ${w.configuration}, webhook ${w.name}`;

/** "Service meshguard/meshguard:443" or "URL https://…" */
export function targetOf(cc: ClientConfig): string {
  if (cc.service) return `Service ${cc.service.namespace}/${cc.service.name}:${cc.service.port}`;
  return cc.url === undefined ? 'nothing (neither service nor url)' : `URL ${cc.url}`;
}

const resourceOf = (kind: WebhookKind) => kind.toLowerCase();

/**
 * `kubectl patch` setting one field of one webhook: a JSON patch `add`, which replaces a field
 * that is there and sets one that is not. The values are names, numbers and base64: the single
 * quotes hold them as they are in any POSIX shell.
 */
export function patchCommand(w: Webhook, field: string, value: unknown): string {
  const patch = JSON.stringify([{ op: 'add', path: `/webhooks/${w.index}/${field}`, value }]);
  return `kubectl patch ${resourceOf(w.kind)} ${w.configuration} --type json -p '${patch}'`;
}
