// The Helm chart: values against their schema, the ConfigMap default against policies/meshguard.yaml,
// the webhook ordering. Real Helm (lint, template, install) runs in the e2e suite
// (test/e2e/chart.test.ts, meshguard.test.ts), which builds it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import yaml from 'js-yaml';
import t from 'tap';
import { parseConfig } from '../src/config/parse.js';
import { defaultConfigPath, packageRoot } from '../src/paths.js';

const chart = join(packageRoot, 'charts/meshguard');
const load = (file: string) => yaml.load(readFileSync(join(chart, file), 'utf8')) as Record<string, unknown>;
const values = load('values.yaml');
const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

t.test('values.yaml is valid against values.schema.json', async (t) => {
  t.ok(validate(values), JSON.stringify(validate.errors));
});

t.test('the schema refuses what it should', async (t) => {
  const bad = (patch: Record<string, unknown>) => !validate({ ...values, ...patch });
  t.ok(bad({ replicaCount: 0 }), 'replicaCount 0');
  t.ok(bad({ webhook: { validatingFailurePolicy: 'Sometimes' } }), 'failurePolicy');
  t.ok(bad({ unknownKey: 1 }), 'unknown key');
  t.ok(
    bad({ config: { ...(values.config as object), policies: { 'probe-port-exclusion': { mode: false } } } }),
    'an unquoted off (false)',
  );
  t.ok(bad({ tls: { caBundle: 'not base64!' } }), 'caBundle');
});

t.test('monitoring is off by default, and its values are checked', async (t) => {
  t.match(values, { serviceMonitor: { enabled: false }, grafanaDashboard: { enabled: false } });
  const on = {
    ...values,
    serviceMonitor: {
      enabled: true,
      namespace: 'monitoring',
      additionalLabels: { release: 'kube-prometheus-stack' },
      interval: '15s',
      scrapeTimeout: '1m30s',
      relabelings: [{ action: 'keep' }],
      metricRelabelings: [],
    },
    grafanaDashboard: { enabled: true, namespace: '', labels: { grafana_dashboard: '1' }, annotations: {} },
  };
  t.ok(validate(on), JSON.stringify(validate.errors));
  const bad = (patch: object) => !validate({ ...on, ...patch });
  t.ok(bad({ serviceMonitor: { ...on.serviceMonitor, interval: '30' } }), 'an interval without its unit');
  t.ok(bad({ serviceMonitor: { ...on.serviceMonitor, namespace: 'Monitoring' } }), 'not a namespace name');
  t.ok(bad({ serviceMonitor: { ...on.serviceMonitor, labels: {} } }), 'unknown key (additionalLabels is the one)');
  t.ok(
    bad({ grafanaDashboard: { ...on.grafanaDashboard, labels: { grafana_dashboard: 1 } } }),
    'a label that is no string',
  );
});

t.test('the ConfigMap default is policies/meshguard.yaml, and valid', async (t) => {
  t.strictSame(values.config, yaml.load(readFileSync(defaultConfigPath, 'utf8')));
  const parsed = parseConfig(yaml.dump(values.config));
  t.ok(parsed.ok, parsed.ok ? '' : parsed.errors.join('; '));
});

t.test("the mutating configuration sorts before Istio's injector", async (t) => {
  const spec = load('files/webhooks.yaml') as { mutating: { configurationName: string } };
  const name = spec.mutating.configurationName;
  for (const istio of ['istio-sidecar-injector', 'istio-sidecar-injector-1-22', 'istio-revision-tag-default']) {
    t.ok(name < istio, `${name} < ${istio}`);
  }
});

t.test('security settings never wait on meshguard: their webhook fails open whatever the values say', async (t) => {
  const spec = load('files/webhooks.yaml') as {
    validating: { webhooks: { name: string; failurePolicy?: string; rules: { apiGroups: string[] }[] }[] };
  };
  const security = spec.validating.webhooks.filter((w) =>
    w.rules.some((r) => r.apiGroups.includes('security.istio.io')),
  );
  t.ok(security.length > 0, 'PeerAuthentications are validated');
  for (const w of security) {
    t.equal(w.failurePolicy, 'Ignore', `${w.name}: failurePolicy Ignore`);
    t.ok(
      w.rules.every((r) => r.apiGroups.every((g) => g === 'security.istio.io')),
      `${w.name} holds security settings only`,
    );
  }
});
