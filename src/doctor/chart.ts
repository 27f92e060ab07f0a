import type { LabelSelector } from '../mesh/selector.js';
import type { Rule, WebhookKind } from './webhooks.js';

// What the chart registers (charts/meshguard/files/webhooks.yaml and templates/webhooks.yaml),
// which doctor compares a cluster's webhooks with. The chart is not shipped with the CLI or the
// image, so it is written out here; test/doctor.test.ts holds the two equal.

export interface ChartWebhook {
  kind: WebhookKind;
  name: string;
  /** Fixed by the chart; absent: webhook.validatingFailurePolicy, Ignore or Fail as the operator chose. */
  failurePolicy?: 'Ignore';
  reinvocationPolicy?: 'Never';
  rules: readonly Rule[];
}

const workloads = { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets', 'replicasets'] };
const createUpdate = ['CREATE', 'UPDATE'];

export const chart = {
  mutatingConfiguration: '0-meshguard',
  validatingConfiguration: 'meshguard',
  webhooks: [
    {
      kind: 'MutatingWebhookConfiguration',
      name: 'mutate.meshguard.io',
      failurePolicy: 'Ignore',
      reinvocationPolicy: 'Never',
      rules: [{ apiGroups: [''], resources: ['pods'], operations: ['CREATE'] }],
    },
    {
      kind: 'ValidatingWebhookConfiguration',
      name: 'validate.meshguard.io',
      rules: [
        {
          apiGroups: ['networking.istio.io'],
          resources: ['destinationrules', 'serviceentries'],
          operations: createUpdate,
        },
        { apiGroups: [''], resources: ['services'], operations: createUpdate },
        { ...workloads, operations: createUpdate },
        { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'], operations: createUpdate },
      ],
    },
    {
      kind: 'ValidatingWebhookConfiguration',
      name: 'namespaces.meshguard.io',
      failurePolicy: 'Ignore',
      rules: [{ apiGroups: [''], resources: ['namespaces'], operations: createUpdate }],
    },
    {
      kind: 'ValidatingWebhookConfiguration',
      name: 'security.validate.meshguard.io',
      failurePolicy: 'Ignore',
      rules: [{ apiGroups: ['security.istio.io'], resources: ['peerauthentications'], operations: createUpdate }],
    },
  ] satisfies ChartWebhook[] as readonly ChartWebhook[],
  admissionReviewVersions: ['v1'],
  sideEffects: 'None',
  /** values.yaml webhook.timeoutSeconds */
  timeoutSeconds: 5,
  excludedNamespaces: ['kube-system', 'kube-public'],
  ignoreLabel: 'meshguard.io/ignore',
} as const;

/** The namespaceSelector the chart gives every webhook of a release in `namespace`. */
export function chartNamespaceSelector(namespace: string): LabelSelector {
  return {
    matchExpressions: [
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...chart.excludedNamespaces, namespace] },
      { key: chart.ignoreLabel, operator: 'NotIn', values: ['true'] },
    ],
  };
}

/** The Helm release meshguard's webhooks belong to: the chart names the Service after it, in its namespace. */
export interface ReleaseRef {
  name: string;
  namespace: string;
}

export function releaseOf(
  ours: readonly { clientConfig: { service?: { name: string; namespace: string } } }[],
): ReleaseRef | undefined {
  const svc = ours.find((w) => w.clientConfig.service)?.clientConfig.service;
  return svc && { name: svc.name, namespace: svc.namespace };
}

/** `helm upgrade` of the release, keeping its values, with more flags. */
export const helmUpgrade = (release: ReleaseRef | undefined, flags = '') =>
  `helm upgrade ${release?.name ?? 'RELEASE'} charts/meshguard -n ${release?.namespace ?? 'NAMESPACE'} --reuse-values${flags ? ` ${flags}` : ''}`;
