// The chart's settings, read from the same files its templates read (charts/meshguard/files/*),
// turned into the objects `helm install` would create — with a URL instead of a Service, since
// meshguard runs here as a local process.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  V1ClusterRole,
  V1MutatingWebhookConfiguration,
  V1PolicyRule,
  V1Role,
  V1RuleWithOperations,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { packageRoot } from '../../src/paths.js';

const chart = join(packageRoot, 'charts/meshguard');
const read = <T>(file: string): T => yaml.load(readFileSync(join(chart, file), 'utf8')) as T;

interface WebhookSpec {
  name: string;
  path: string;
  reinvocationPolicy?: 'Never' | 'IfNeeded';
  rules: V1RuleWithOperations[];
}
interface Spec {
  mutating: { configurationName: string; webhooks: WebhookSpec[] };
  validating: { configurationName: string; webhooks: WebhookSpec[] };
  common: { admissionReviewVersions: string[]; sideEffects: string; matchPolicy: string };
  excludedNamespaces: string[];
  ignoreLabel: string;
}
interface Values {
  webhook: { timeoutSeconds: number; validatingFailurePolicy: string };
}

export const webhookSpec = read<Spec>('files/webhooks.yaml');
export const chartValues = read<Values>('values.yaml');

/** Both webhook configurations as templates/webhooks.yaml renders them, pointed at `baseUrl`. */
export function webhookConfigurations(baseUrl: string, caPem: string, releaseNamespace: string) {
  const spec = webhookSpec;
  const common = (w: WebhookSpec) => ({
    name: w.name,
    clientConfig: { url: `${baseUrl}${w.path}`, caBundle: Buffer.from(caPem).toString('base64') },
    rules: w.rules,
    admissionReviewVersions: spec.common.admissionReviewVersions,
    sideEffects: spec.common.sideEffects,
    matchPolicy: spec.common.matchPolicy,
    timeoutSeconds: chartValues.webhook.timeoutSeconds,
    namespaceSelector: {
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: [...spec.excludedNamespaces, releaseNamespace],
        },
        { key: spec.ignoreLabel, operator: 'NotIn', values: ['true'] },
      ],
    },
  });
  const mutating: V1MutatingWebhookConfiguration = {
    metadata: { name: spec.mutating.configurationName },
    webhooks: spec.mutating.webhooks.map((w) => ({
      ...common(w),
      failurePolicy: 'Ignore',
      reinvocationPolicy: w.reinvocationPolicy,
    })),
  };
  const validating: V1ValidatingWebhookConfiguration = {
    metadata: { name: spec.validating.configurationName },
    webhooks: spec.validating.webhooks.map((w) => ({
      ...common(w),
      failurePolicy: chartValues.webhook.validatingFailurePolicy,
    })),
  };
  return { mutating, validating };
}

/** The chart's ClusterRole and Role (templates/rbac.yaml) for a release named `name`. */
export function rbacRoles(name: string, namespace: string): { clusterRole: V1ClusterRole; role: V1Role } {
  const text = readFileSync(join(chart, 'files/rbac.yaml'), 'utf8').replaceAll('CONFIGMAP', name);
  const rbac = yaml.load(text) as { clusterRules: V1PolicyRule[]; namespaceRules: V1PolicyRule[] };
  return {
    clusterRole: { metadata: { name }, rules: rbac.clusterRules },
    role: { metadata: { name, namespace }, rules: rbac.namespaceRules },
  };
}
