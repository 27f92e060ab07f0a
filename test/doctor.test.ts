// meshguard doctor's checks, as pure functions over objects: meshguard's webhooks as real Helm
// rendered them (deploy/meshguard.yaml), Istio's as an API server returns them
// (test/fixtures/istio-cluster), certificates made for each case, and TLS probes' results as data.
// The e2e file test/e2e/doctor.test.ts runs the same against a real cluster.
import type { X509Certificate } from 'node:crypto';
import { X509Certificate as Cert } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t from 'tap';
import { chart, chartNamespaceSelector } from '../src/doctor/chart.js';
import { notReadyHint, parseService, parseSlice, readyAddresses, type ServiceRead } from '../src/doctor/endpoints.js';
import { namespaceLabels } from '../src/doctor/gather.js';
import { checkInjectors, injectorGroups } from '../src/doctor/injectors.js';
import { exitCodeOf, worst, type Finding } from '../src/doctor/model.js';
import { checkOrder } from '../src/doctor/order.js';
import { checkProfile } from '../src/doctor/profile.js';
import { renderJson, renderText } from '../src/doctor/render.js';
import { checkRevisions, servedRevisions } from '../src/doctor/revisions.js';
import { checkServing, planServing, probeKey, servingGroups, type Probe } from '../src/doctor/serving.js';
import { checkSettings } from '../src/doctor/settings.js';
import { bundleCertificates, verifyChain } from '../src/doctor/tls.js';
import { isIstioInjector, isMeshguard, patchCommand, webhooksOf, type Webhook } from '../src/doctor/webhooks.js';
import { discoverMesh } from '../src/mesh/discover.js';
import type { Labels } from '../src/mesh/selector.js';
import { resolveProfile } from '../src/mesh/profile.js';
import { packageRoot } from '../src/paths.js';
import { generateCa, generateServing, type PemPair } from '../src/tls/generate.js';

type Obj = Record<string, unknown> & { kind?: string; metadata?: { name?: string } };
const docs = (file: string) => yaml.loadAll(readFileSync(join(packageRoot, file), 'utf8')) as Obj[];

const DAY = 86_400_000;
const ca = await generateCa('meshguard CA for meshguard.meshguard', 365);
const caBundle = Buffer.from(ca.cert).toString('base64');
const serving = await generateServing(ca, ['meshguard.meshguard.svc', 'meshguard.meshguard.svc.cluster.local'], 365);
const chainOf = (pair: PemPair): X509Certificate[] => [new Cert(pair.cert)];

/** The chart as real Helm rendered it for namespace meshguard, with a real caBundle. */
const deployed = docs('deploy/meshguard.yaml').map(
  (o) => JSON.parse(JSON.stringify(o).replaceAll('REPLACEWITHCABUNDLE', caBundle)) as Obj,
);
const ofKind = (objects: Obj[], kind: string) => objects.filter((o) => o.kind === kind);
const istioObjects = docs('test/fixtures/istio-cluster/objects.yaml');
/** Istio's injector configurations of the fixture (default, canary, the prod tag); not its 0-meshguard. */
const istioConfigs = ofKind(istioObjects, 'MutatingWebhookConfiguration').filter((o) =>
  /^istio-/.test(o.metadata?.name ?? ''),
);
const certManager = ofKind(istioObjects, 'MutatingWebhookConfiguration').filter(
  (o) => o.metadata?.name === 'cert-manager-webhook',
);

function cluster(change: (configs: { mutating: Obj[]; validating: Obj[] }) => void = () => undefined) {
  const copy = JSON.parse(
    JSON.stringify({
      mutating: [...ofKind(deployed, 'MutatingWebhookConfiguration'), ...istioConfigs, ...certManager],
      validating: ofKind(deployed, 'ValidatingWebhookConfiguration'),
    }),
  ) as { mutating: Obj[]; validating: Obj[] };
  change(copy);
  const mutating = webhooksOf(copy.mutating, 'MutatingWebhookConfiguration');
  const validating = webhooksOf(copy.validating, 'ValidatingWebhookConfiguration');
  return {
    mutating,
    ours: [...mutating, ...validating].filter(isMeshguard),
    injectors: mutating.filter(isIstioInjector),
  };
}
/** The first webhook of a configuration, to change in a case. */
const hook = (configs: Obj[], name: string, i = 0) =>
  ((configs.find((c) => c.metadata?.name === name) as { webhooks: Record<string, unknown>[] }).webhooks[i] ??
    {}) as Record<string, unknown>;

const problems = (findings: readonly Finding[]) => findings.filter((f) => f.status === 'problem');
const namespaces = new Map<string, Labels>(
  Object.entries<Labels>({
    'kube-system': { 'kubernetes.io/metadata.name': 'kube-system' },
    meshguard: { 'kubernetes.io/metadata.name': 'meshguard' },
    shop: { 'kubernetes.io/metadata.name': 'shop', 'istio-injection': 'enabled' },
    payments: { 'kubernetes.io/metadata.name': 'payments', 'istio.io/rev': 'canary' },
    web: { 'kubernetes.io/metadata.name': 'web', 'istio.io/rev': 'prod' },
    plain: { 'kubernetes.io/metadata.name': 'plain' },
  }),
);

t.test(
  "chart.ts is what the chart installs (files/webhooks.yaml, values.yaml, the template's fixed settings)",
  async (t) => {
    const files = yaml.load(readFileSync(join(packageRoot, 'charts/meshguard/files/webhooks.yaml'), 'utf8')) as {
      mutating: { configurationName: string; webhooks: Record<string, unknown>[] };
      validating: { configurationName: string; webhooks: Record<string, unknown>[] };
      common: { admissionReviewVersions: string[]; sideEffects: string };
      excludedNamespaces: string[];
      ignoreLabel: string;
    };
    t.equal(chart.mutatingConfiguration, files.mutating.configurationName);
    t.equal(chart.validatingConfiguration, files.validating.configurationName);
    t.strictSame(chart.admissionReviewVersions, files.common.admissionReviewVersions);
    t.equal(chart.sideEffects, files.common.sideEffects);
    t.strictSame(chart.excludedNamespaces, files.excludedNamespaces);
    t.equal(chart.ignoreLabel, files.ignoreLabel);
    const all: Record<string, unknown>[] = [
      ...files.mutating.webhooks.map((w) => ({ ...w, kind: 'MutatingWebhookConfiguration', failurePolicy: 'Ignore' })),
      ...files.validating.webhooks.map((w) => ({ ...w, kind: 'ValidatingWebhookConfiguration' })),
    ];
    const fromFiles = all.map((w) => ({
      kind: w.kind,
      name: w.name,
      ...(w.failurePolicy !== undefined && { failurePolicy: w.failurePolicy }),
      ...(w.reinvocationPolicy !== undefined && { reinvocationPolicy: w.reinvocationPolicy }),
      rules: (w.rules as Record<string, unknown>[]).map((r) => ({
        apiGroups: r.apiGroups,
        resources: r.resources,
        operations: r.operations,
      })),
    }));
    t.strictSame(chart.webhooks, fromFiles);
    // The template fixes the mutating webhook's failurePolicy (files/webhooks.yaml leaves it out).
    const template = readFileSync(join(packageRoot, 'charts/meshguard/templates/webhooks.yaml'), 'utf8');
    t.match(template, /failurePolicy: Ignore\n\s+reinvocationPolicy: \{\{ \.reinvocationPolicy \}\}/);
    const values = yaml.load(readFileSync(join(packageRoot, 'charts/meshguard/values.yaml'), 'utf8')) as {
      webhook: { timeoutSeconds: number };
    };
    t.equal(chart.timeoutSeconds, values.webhook.timeoutSeconds);
    // And as rendered: the deployed selector is chartNamespaceSelector's.
    t.strictSame(cluster().ours[0]?.namespaceSelector, chartNamespaceSelector('meshguard'));
  },
);

t.test('webhooks: which are meshguard’s, which are Istio’s injector (by name or by what they call)', async (t) => {
  const { ours, injectors } = cluster();
  t.strictSame(
    ours.map((w) => `${w.configuration}/${w.name}`),
    [
      '0-meshguard/mutate.meshguard.io',
      'meshguard/validate.meshguard.io',
      'meshguard/namespaces.meshguard.io',
      'meshguard/security.validate.meshguard.io',
    ],
  );
  t.strictSame(
    [...new Set(injectors.map((w) => w.configuration))],
    ['istio-sidecar-injector', 'istio-sidecar-injector-canary', 'istio-revision-tag-prod'],
  );
  // Renamed and hand-made: found by the path istiod serves injection at (pkg/kube/inject/webhook.go).
  const custom = webhooksOf(
    [
      {
        metadata: { name: 'acme-injector' },
        webhooks: [
          { name: 'inject.acme.io', clientConfig: { url: 'https://istiod.example:15017/inject/cluster/c1/net/n1' } },
          {
            name: 'svc.acme.io',
            clientConfig: { service: { namespace: 'istio-system', name: 'istiod', path: '/inject' } },
          },
          { name: 'other.acme.io', clientConfig: { service: { namespace: 'x', name: 'y', path: '/injection' } } },
          {
            name: 'rev.acme.io',
            clientConfig: { service: { namespace: 'istio-system', name: 'istiod-canary', path: '/x' } },
          },
        ],
      },
    ],
    'MutatingWebhookConfiguration',
  );
  t.strictSame(custom.map(isIstioInjector), [true, true, false, true]);
  t.equal(custom[1]?.clientConfig.service?.port, 443, "the API server's default port");
  t.equal(
    patchCommand(custom[1] as Webhook, 'failurePolicy', 'Ignore'),
    `kubectl patch mutatingwebhookconfiguration acme-injector --type json -p '[{"op":"add","path":"/webhooks/1/failurePolicy","value":"Ignore"}]'`,
  );
});

t.test('webhook-order', async (t) => {
  const healthy = checkOrder(cluster().mutating);
  t.strictSame(problems(healthy), []);
  t.match(healthy[0], {
    object: 'MutatingWebhookConfiguration 0-meshguard',
    what: "sorts before istio-revision-tag-prod, istio-sidecar-injector, istio-sidecar-injector-canary: Istio's injector sees meshguard's changes",
  });

  const renamed = checkOrder(
    cluster(({ mutating }) => {
      const m = mutating.find((c) => c.metadata?.name === '0-meshguard') as Obj & { metadata: { name: string } };
      m.metadata.name = 'meshguard';
    }).mutating,
  );
  t.match(problems(renamed), [
    {
      check: 'webhook-order',
      object: 'MutatingWebhookConfiguration meshguard',
      what: "sorts after istio-revision-tag-prod, istio-sidecar-injector, istio-sidecar-injector-canary: the API server calls Istio's injector first",
      why: /name order/,
      fix: /^give it a name that sorts before istio-revision-tag-prod \(the chart's is 0-meshguard\): helm upgrade meshguard charts\/meshguard -n meshguard --reuse-values restores it/,
    },
  ]);

  // Reinvocation is no remedy for the order (it comes after Istio's injector, which is not
  // reinvoked): either policy is fine; IfNeeded is said to cost a second call.
  const reinvoked = checkOrder(
    cluster(({ mutating }) => {
      hook(mutating, '0-meshguard').reinvocationPolicy = 'IfNeeded';
    }).mutating,
  );
  t.strictSame(problems(reinvoked), []);
  t.match(reinvoked, [
    { status: 'ok' },
    {
      status: 'ok',
      object: /webhook mutate\.meshguard\.io/,
      what: /IfNeeded: called a second time for every pod Istio injects/,
    },
  ]);
  t.match(checkOrder(cluster(() => undefined).mutating), [
    { status: 'ok' },
    { status: 'ok', what: 'reinvocationPolicy Never: called once per pod' },
  ]);

  const none = checkOrder(webhooksOf(istioConfigs, 'MutatingWebhookConfiguration'));
  t.match(none, [{ status: 'problem', what: /no MutatingWebhookConfiguration holds a meshguard webhook/ }]);
  t.match(checkOrder(webhooksOf(ofKind(deployed, 'MutatingWebhookConfiguration'), 'MutatingWebhookConfiguration')), [
    { status: 'ok', what: /no Istio injector webhook found/ },
    { status: 'ok' },
  ]);
});

t.test('webhook-settings: the chart as rendered is healthy, one line per webhook', async (t) => {
  const findings = checkSettings({ webhooks: cluster().ours, namespaces, injectorTimeout: 10 });
  t.strictSame(problems(findings), []);
  t.equal(findings.length, 4);
  t.equal(
    findings[0]?.what,
    'failurePolicy Ignore; sideEffects None; timeoutSeconds 5; admissionReviewVersions v1; namespaceSelector leaves out kube-system and meshguard; rules as the chart installs them',
  );
});

t.test('webhook-settings: each setting off, found with why and the fix', async (t) => {
  const settings = (change: (c: { mutating: Obj[]; validating: Obj[] }) => void, injectorTimeout = 10) =>
    problems(checkSettings({ webhooks: cluster(change).ours, namespaces, injectorTimeout }));

  t.match(
    settings(({ mutating }) => void (hook(mutating, '0-meshguard').failurePolicy = 'Fail')),
    [
      {
        object: 'MutatingWebhookConfiguration 0-meshguard, webhook mutate.meshguard.io',
        what: 'failurePolicy Fail; the chart installs Ignore',
        why: /would refuse every pod/,
        fix: /"path":"\/webhooks\/0\/failurePolicy","value":"Ignore"/,
      },
    ],
  );
  // validate.meshguard.io's failurePolicy is the operator's (webhook.validatingFailurePolicy).
  t.strictSame(
    settings(({ validating }) => void (hook(validating, 'meshguard', 0).failurePolicy = 'Fail')),
    [],
  );
  t.match(
    settings(({ validating }) => void (hook(validating, 'meshguard', 2).failurePolicy = 'Fail')),
    [{ object: /security\.validate\.meshguard\.io/, why: /turning mTLS on in an incident/ }],
  );
  t.match(
    settings(({ validating }) => void (hook(validating, 'meshguard', 1).sideEffects = 'Some')),
    [{ what: 'sideEffects Some; the chart installs None', why: /dry-run/ }],
  );
  t.match(
    settings(({ mutating }) => {
      hook(mutating, '0-meshguard').timeoutSeconds = 30;
      hook(mutating, '0-meshguard').reinvocationPolicy = 'IfNeeded';
    }),
    [
      {
        what: "timeoutSeconds 30: a pod create can wait 2×30 s for meshguard and 10 s for Istio's injector",
        why: /request timeout \(60 s by default\)/,
        fix: /"value":5/,
      },
    ],
  );
  // Called once (no reinvocation), 25 s and Istio's 10 s stay under the request timeout.
  t.match(
    settings(({ mutating }) => {
      hook(mutating, '0-meshguard').timeoutSeconds = 25;
      hook(mutating, '0-meshguard').reinvocationPolicy = 'Never';
    }),
    [],
  );
  t.match(
    settings(({ validating }) => void (hook(validating, 'meshguard').admissionReviewVersions = ['v2'])),
    [{ what: 'admissionReviewVersions v2: meshguard answers v1 and v1beta1 only' }],
  );
  const open = settings(({ mutating }) => void (hook(mutating, '0-meshguard').namespaceSelector = {}));
  t.match(open, [
    { what: "namespaceSelector sends kube-system's objects to meshguard", why: /heals itself/ },
    { what: "namespaceSelector sends meshguard's own namespace meshguard to meshguard", why: /never comes back/ },
  ]);
  t.equal(
    open[0]?.fix,
    `kubectl patch mutatingwebhookconfiguration 0-meshguard --type json -p '[{"op":"add","path":"/webhooks/0/namespaceSelector","value":${JSON.stringify(chartNamespaceSelector('meshguard'))}}]' (the chart's selector)`,
  );
  // The API server matches the namespace's real labels: an ignore label excludes kube-system too.
  const ignored = new Map(namespaces);
  ignored.set('kube-system', { 'kubernetes.io/metadata.name': 'kube-system', 'meshguard.io/ignore': 'true' });
  t.strictSame(
    problems(
      checkSettings({
        webhooks: cluster(({ mutating }) => {
          const expressions = hook(mutating, '0-meshguard').namespaceSelector as {
            matchExpressions: { values: string[] }[];
          };
          expressions.matchExpressions[0]?.values.splice(0, 1);
        }).ours,
        namespaces: ignored,
        injectorTimeout: 10,
      }),
    ),
    [],
  );
  t.match(
    settings(({ mutating }) => void (hook(mutating, '0-meshguard').objectSelector = { matchLabels: { team: 'a' } })),
    [{ what: 'objectSelector {"matchLabels":{"team":"a"}} sends only objects with those labels' }],
  );
  t.match(
    settings(({ validating }) => {
      const rules = hook(validating, 'meshguard').rules as { resources: string[] }[];
      rules[2]?.resources.splice(0, 1);
    }),
    [
      {
        what: 'rules leave out apps/deployments CREATE, apps/deployments UPDATE',
        fix: /^helm upgrade meshguard charts\/meshguard -n meshguard --reuse-values/,
      },
    ],
  );
  t.match(
    settings(({ validating }) => {
      (validating[0] as { webhooks: unknown[] }).webhooks.splice(1, 1);
    }),
    [
      {
        object: 'ValidatingWebhookConfiguration, webhook namespaces.meshguard.io',
        what: 'not registered',
        why: /namespaces CREATE, UPDATE/,
      },
    ],
  );
});

// --- certificates --------------------------------------------------------------------------------

t.test('tls: the caBundle verifies a chain for a name, as the API server does', async (t) => {
  const roots = bundleCertificates(caBundle);
  if (!('certs' in roots)) throw new Error('no certs');
  const now = new Date();
  t.match(verifyChain(chainOf(serving), roots.certs, 'meshguard.meshguard.svc', now), { ok: true });
  t.match(verifyChain(chainOf(serving), roots.certs, 'meshguard.other.svc', now), {
    ok: false,
    reason: 'it is for DNS:meshguard.meshguard.svc, DNS:meshguard.meshguard.svc.cluster.local, not meshguard.other.svc',
  });
  const other = await generateCa('other CA', 1);
  t.match(verifyChain(chainOf(serving), [new Cert(other.cert)], 'meshguard.meshguard.svc', now), {
    ok: false,
    reason: 'it is signed by CN=meshguard CA for meshguard.meshguard, and the caBundle holds CN=other CA',
  });
  t.match(verifyChain(chainOf(serving), roots.certs, 'meshguard.meshguard.svc', new Date(Date.now() + 400 * DAY)), {
    ok: false,
    reason: /^the certificate CN=meshguard\.meshguard\.svc expired on /,
  });
  const byIp = await generateServing(ca, ['127.0.0.1'], 1);
  t.match(verifyChain(chainOf(byIp), roots.certs, '127.0.0.1', now), { ok: true });
  t.match(verifyChain([], roots.certs, 'x', now), { ok: false, reason: 'no certificate was served' });
  t.match(bundleCertificates(Buffer.from('not a pem').toString('base64')), {
    problem: 'the caBundle holds no PEM certificate',
  });
  // A bundle of two CAs (a rotation): either verifies.
  const both = bundleCertificates(Buffer.from(other.cert + ca.cert).toString('base64'));
  t.match('certs' in both && verifyChain(chainOf(serving), both.certs, 'meshguard.meshguard.svc', now), { ok: true });
});

const meshguardRead = (ready: (boolean | undefined)[], port = 'https-webhook'): ServiceRead => ({
  service: {
    namespace: 'meshguard',
    name: 'meshguard',
    type: 'ClusterIP',
    selector: { 'app.kubernetes.io/name': 'meshguard', 'app.kubernetes.io/instance': 'meshguard' },
    ports: [
      { name: 'https-webhook', port: 443 },
      { name: 'http-metrics', port: 9090 },
    ],
  },
  slices: [
    {
      ports: [
        { name: port, port: 8443 },
        { name: 'http-metrics', port: 9090 },
      ],
      endpoints: ready.map((r, i) => ({ addresses: [`10.0.0.${i + 1}`], ready: r !== false })),
    },
  ],
});

function serve(
  ours: readonly Webhook[],
  read: ServiceRead,
  probe: (address: string) => Probe,
  minDays = 30,
): Finding[] {
  const plans = planServing(servingGroups(ours), new Map([['meshguard/meshguard', read]]));
  const probes = new Map<string, Probe>();
  for (const p of plans)
    if ('addresses' in p) for (const a of p.addresses) probes.set(probeKey(p.group.serverName, a), probe(a.host));
  return checkServing(plans, probes, { now: new Date(), minDays, systemRoots: [] });
}

t.test('serving-certificate: each endpoint of the Service, verified for <service>.<namespace>.svc', async (t) => {
  const { ours } = cluster();
  const good = serve(ours, meshguardRead([true, undefined, false]), () => ({ chain: chainOf(serving) }));
  t.strictSame(problems(good), []);
  t.equal(good.length, 2, 'the two ready endpoints (a nil ready is ready), the four webhooks in one group');
  t.match(good[0], {
    status: 'ok',
    object:
      'Service meshguard/meshguard:443 at 10.0.0.1:8443, called by 0-meshguard/mutate.meshguard.io, meshguard/validate.meshguard.io, meshguard/namespaces.meshguard.io, meshguard/security.validate.meshguard.io',
    what: /^the caBundle verifies the certificate served for meshguard\.meshguard\.svc \(issuer CN=meshguard CA for meshguard\.meshguard\); (it|its issuer CN=meshguard CA for meshguard\.meshguard) expires on \S+, in 36[45] days$/,
  });

  const soon = serve(ours, meshguardRead([true]), () => ({ chain: chainOf(serving) }), 400);
  t.match(problems(soon), [
    {
      // The CA is made a moment before the certificate with the same lifetime: whichever of the chain ends first is named.
      what: /verifies, but (it|its issuer CN=meshguard CA for meshguard\.meshguard) expires on \S+, in 36[45] days \(--min-cert-days 400\)/,
      fix: /^meshguard certs --service meshguard --namespace meshguard --out DIR --force/,
    },
  ]);

  // One webhook's caBundle is another CA's: the fix copies the bundle that verifies the same Service.
  const other = await generateCa('other CA', 1);
  const mixed = cluster(({ validating }) => {
    (hook(validating, 'meshguard', 1).clientConfig as { caBundle: string }).caBundle = Buffer.from(other.cert).toString(
      'base64',
    );
  }).ours;
  const found = problems(serve(mixed, meshguardRead([true]), () => ({ chain: chainOf(serving) })));
  t.match(found, [
    {
      object: 'Service meshguard/meshguard:443 at 10.0.0.1:8443, called by meshguard/namespaces.meshguard.io',
      what: 'the caBundle does not verify the certificate served for meshguard.meshguard.svc: it is signed by CN=meshguard CA for meshguard.meshguard, and the caBundle holds CN=other CA',
      why: /objects are admitted unchecked/,
      fix: `kubectl patch validatingwebhookconfiguration meshguard --type json -p '[{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"${caBundle}"}]'`,
    },
  ]);
  // cert-manager writes the bundle: the fix looks there.
  const injected = cluster(({ mutating, validating }) => {
    for (const c of [...mutating, ...validating])
      (c.metadata as Record<string, unknown>).annotations = { 'cert-manager.io/inject-ca-from': 'meshguard/meshguard' };
  }).ours;
  t.match(problems(serve(injected, meshguardRead([true]), () => ({ chain: chainOf(byOther) }))), [
    { fix: /cert-manager's cainjector writes this caBundle from Certificate meshguard\/meshguard/ },
  ]);

  t.match(
    serve(ours, meshguardRead([true]), () => ({ error: 'ETIMEDOUT: connect ETIMEDOUT 10.0.0.1:8443' })),
    [
      {
        status: 'could-not-check',
        what: 'could not connect from here: ETIMEDOUT: connect ETIMEDOUT 10.0.0.1:8443',
        why: /kubectl -n NAMESPACE exec deploy\/meshguard/,
      },
    ],
  );
  t.match(
    serve(ours, meshguardRead([false]), () => ({ error: 'x' })),
    [
      {
        status: 'problem',
        what: 'Service meshguard/meshguard has no ready endpoints: meshguard is not running or not ready',
        why: "every call fails: pods are admitted without meshguard's changes; objects are admitted unchecked",
        fix: /kubectl -n meshguard get pods -l app\.kubernetes\.io\/name=meshguard,app\.kubernetes\.io\/instance=meshguard/,
      },
    ],
  );
  t.match(
    serve(ours, { absent: true }, () => ({ error: 'x' })),
    [{ status: 'problem', what: 'Service meshguard/meshguard does not exist' }],
  );
  t.match(
    serve(ours, { error: 'forbidden' }, () => ({ error: 'x' })),
    [{ status: 'could-not-check', what: /forbidden/ }],
  );
});
const byOther = await generateServing(await generateCa('rotated CA', 1), ['meshguard.meshguard.svc'], 1);

t.test('serving-certificate: a webhook that calls a URL is verified for the URL host', async (t) => {
  const byUrl = cluster(({ mutating }) => {
    (hook(mutating, '0-meshguard') as { clientConfig: unknown }).clientConfig = {
      url: 'https://127.0.0.1:8443/mutate',
      caBundle,
    };
  }).ours.filter((w) => w.kind === 'MutatingWebhookConfiguration');
  const ip = await generateServing(ca, ['127.0.0.1'], 365);
  const plans = planServing(servingGroups(byUrl), new Map());
  t.match(plans, [{ addresses: [{ host: '127.0.0.1', port: 8443 }] }]);
  const probes = new Map<string, Probe>([
    [probeKey('127.0.0.1', { host: '127.0.0.1', port: 8443 }), { chain: chainOf(ip) }],
  ]);
  t.match(checkServing(plans, probes, { now: new Date(), minDays: 30, systemRoots: [] }), [
    { status: 'ok', object: /^URL https:\/\/127\.0\.0\.1:8443\/mutate at 127\.0\.0\.1:8443/ },
  ]);
  // An empty caBundle: the API server's system roots, which never hold a private CA.
  const empty = byUrl.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: '' } }));
  t.match(
    checkServing(planServing(servingGroups(empty), new Map()), probes, {
      now: new Date(),
      minDays: 30,
      systemRoots: [],
    }),
    [{ status: 'problem', what: /^the system roots \(the caBundle is empty\) do not verify/ }],
  );
});

// --- Istio's injectors -------------------------------------------------------------------------

t.test('endpoints: ready addresses behind a Service port, by port name', async (t) => {
  const svc = parseService({
    metadata: { namespace: 'istio-system', name: 'istiod' },
    spec: { selector: { app: 'istiod' }, ports: [{ name: 'https-webhook', port: 443, targetPort: 15017 }] },
  });
  if (!svc) throw new Error('no service');
  const slice = parseSlice({
    ports: [{ name: 'https-webhook', port: 15017 }],
    endpoints: [
      { addresses: ['10.1.0.1'], conditions: { ready: true } },
      { addresses: ['10.1.0.2'], conditions: { ready: false } },
      { addresses: ['10.1.0.3'] },
    ],
  });
  const other = parseSlice({ ports: [{ name: 'grpc-xds', port: 15010 }], endpoints: [{ addresses: ['10.1.0.9'] }] });
  t.strictSame(readyAddresses(svc, [slice!, other!], 443), {
    addresses: [
      { host: '10.1.0.1', port: 15017 },
      { host: '10.1.0.3', port: 15017 },
    ],
  });
  t.strictSame(readyAddresses(svc, [slice!], 15012), { reason: 'Service istio-system/istiod has no port 15012' });
  t.match(readyAddresses({ ...svc, type: 'ExternalName' }, [], 443), { reason: /ExternalName/ });
  // Where to look when none is ready: the selected pods, or the slices of a Service that selects none.
  t.equal(
    notReadyHint(svc),
    'kubectl -n istio-system get pods -l app=istiod; kubectl -n istio-system describe pods -l app=istiod says why none is ready',
  );
  t.match(
    notReadyHint({ ...svc, selector: {} }),
    /^kubectl -n istio-system get endpointslices -l kubernetes\.io\/service-name=istiod: the Service selects no pods/,
  );
  // A namespace being deleted takes no pods.
  t.strictSame(
    [
      ...namespaceLabels([
        { metadata: { name: 'a', labels: { x: 'y' } }, status: { phase: 'Active' } },
        { metadata: { name: 'b' }, status: { phase: 'Terminating' } },
      ]).keys(),
    ],
    ['a'],
  );
});

const istiodRead = (ready: boolean, name = 'istiod'): ServiceRead => ({
  service: {
    namespace: 'istio-system',
    name,
    type: 'ClusterIP',
    selector: { app: 'istiod', istio: 'pilot' },
    ports: [{ name: 'https-webhook', port: 443 }],
  },
  slices: [
    {
      ports: [{ name: 'https-webhook', port: 15017 }],
      endpoints: ready ? [{ addresses: ['10.1.0.1'], ready: true }] : [],
    },
  ],
});
const canaryRead = istiodRead(true, 'istiod-canary');

t.test('injector-endpoints: an injector with nowhere to send pods (the FAQs’ first section)', async (t) => {
  const { injectors } = cluster();
  const groups = injectorGroups(injectors);
  t.equal(groups.length, 3);
  const reads = (istiod: ServiceRead) =>
    new Map<string, ServiceRead>([
      ['istio-system/istiod', istiod],
      ['istio-system/istiod-canary', canaryRead],
    ]);
  const run = (istiod: ServiceRead, inj = injectors) =>
    checkInjectors({ groups: injectorGroups(inj), reads: reads(istiod), probes: new Map(), namespaces });
  t.match(run(istiodRead(true)), [
    { status: 'ok', what: '1 ready endpoint (10.1.0.1:15017)' },
    { status: 'ok' },
    { status: 'ok' },
  ]);
  const down = problems(run(istiodRead(false)));
  t.match(down, [
    {
      object:
        'MutatingWebhookConfiguration istio-sidecar-injector (rev.namespace.sidecar-injector.istio.io, rev.object.sidecar-injector.istio.io, namespace.sidecar-injector.istio.io, object.sidecar-injector.istio.io) → Service istio-system/istiod:443',
      what: 'Service istio-system/istiod has no ready endpoints: no istiod answers these webhooks',
      why: 'failurePolicy Fail: the API server refuses every pod created in shop, and every pod whose own labels select it elsewhere (Internal error occurred: failed calling webhook "rev.namespace.sidecar-injector.istio.io": … no endpoints available for service "istiod"): Deployments and Jobs get no new pods until it answers',
      fix: /^bring istiod back \(kubectl -n istio-system get pods -l app=istiod,istio=pilot;.*kubectl delete mutatingwebhookconfiguration istio-sidecar-injector$/,
    },
  ]);
  const ignore = injectors.map((w) =>
    w.configuration === 'istio-sidecar-injector' ? { ...w, failurePolicy: 'Ignore' } : w,
  );
  t.match(problems(run(istiodRead(false), ignore)), [
    {
      why: /^failurePolicy Ignore: every pod created in shop, and every pod whose own labels select it elsewhere is created without a sidecar/,
    },
  ]);
  t.match(problems(run({ absent: true })), [
    { what: 'Service istio-system/istiod does not exist', fix: /^install istiod for this revision/ },
  ]);
  t.match(run({ error: 'forbidden' })[0], { status: 'could-not-check' });

  // A URL injector: whether it answers TLS from here.
  const url = webhooksOf(
    [
      {
        metadata: { name: 'istio-sidecar-injector' },
        webhooks: [
          { name: 'namespace.sidecar-injector.istio.io', clientConfig: { url: 'https://10.9.0.1:15017/inject' } },
        ],
      },
    ],
    'MutatingWebhookConfiguration',
  );
  const key = probeKey('10.9.0.1', { host: '10.9.0.1', port: 15017 });
  const answer = (probe: Probe) =>
    checkInjectors({ groups: injectorGroups(url), reads: new Map(), probes: new Map([[key, probe]]), namespaces })[0];
  t.match(answer({ chain: chainOf(serving) }), {
    status: 'ok',
    what: 'answers TLS at 10.9.0.1:15017 (a URL: no Service to read)',
  });
  t.match(answer({ error: 'ECONNREFUSED' }), {
    status: 'could-not-check',
    what: 'could not connect from here: ECONNREFUSED',
  });
  t.match(checkInjectors({ groups: [], reads: new Map(), probes: new Map(), namespaces }), [
    { status: 'ok', what: /no Istio injector webhook found/ },
  ]);
});

t.test('namespace-revisions: labelled for a revision no webhook serves', async (t) => {
  const { injectors } = cluster();
  t.strictSame(servedRevisions(injectors), ['canary', 'default', 'prod']);
  t.match(checkRevisions(injectors, namespaces), [
    { status: 'ok', what: '3 namespaces labelled for injection, each served: payments, shop, web' },
  ]);
  const more = new Map(namespaces);
  more.set('legacy', { 'istio.io/rev': '1-20' });
  more.set('kube-public', { 'istio-injection': 'enabled', 'istio.io/rev': 'gone' });
  more.set('off', { 'istio.io/rev': 'gone', 'istio-injection': 'disabled' });
  t.match(problems(checkRevisions(injectors, more)), [
    {
      object: 'Namespace legacy',
      what: 'labelled istio.io/rev=1-20, which no injector webhook serves (installed: canary, default, prod)',
      why: /created without a sidecar/,
      fix: 'kubectl label namespace legacy istio.io/rev=canary --overwrite, or install revision 1-20; then restart its workloads (kubectl -n legacy rollout restart deployment)',
    },
  ]);
  // Only revisioned installs: istio-injection=enabled selects nothing.
  const canaryOnly = injectors.filter((w) => w.configuration === 'istio-sidecar-injector-canary');
  t.match(problems(checkRevisions(canaryOnly, new Map([['shop', { 'istio-injection': 'enabled' }]]))), [
    {
      what: 'labelled istio-injection=enabled, which no injector webhook serves (installed: canary)',
      fix: /^kubectl label namespace shop istio-injection- istio\.io\/rev=canary --overwrite/,
    },
  ]);
  t.match(checkRevisions(injectors, new Map([['plain', {}]])), [
    { status: 'ok', what: 'no namespace is labelled for injection' },
  ]);
});

t.test('mesh-profile: what discovery could not tell, declared or not', async (t) => {
  // What discovery says of an istiod built from source (its chart and image say 1.0.0).
  const canary = 'Deployment istiod: version 1.0 is no Istio release; set mesh.istioVersion';
  const found = { ...discoverMesh(istioObjects), problems: [canary] };
  const undeclared = checkProfile(resolveProfile({}, found), 'ConfigMap meshguard/meshguard', {
    name: 'mg',
    namespace: 'ops',
  });
  t.match(problems(undeclared), [
    {
      what: canary,
      fix: /helm upgrade mg charts\/meshguard -n ops --reuse-values --set-string config\.mesh\.istioVersion=VALUE/,
    },
  ]);
  const declared = checkProfile(resolveProfile({ istioVersion: '1.30' }, found), 'x');
  t.strictSame(problems(declared), []);
  t.match(declared[1], {
    status: 'ok',
    what: /mesh\.istioVersion is declared in the configuration, which meshguard follows$/,
  });
  const unread = checkProfile(
    resolveProfile({}, { ...found, problems: ['ConfigMaps in istio-system could not be read (forbidden)'] }),
    'x',
  );
  t.match(unread[1], { status: 'could-not-check' });
});

t.test('exit codes and output', async (t) => {
  const okF: Finding = { check: 'webhook-order', status: 'ok', what: 'a' };
  const unchecked: Finding = { check: 'serving-certificate', status: 'could-not-check', what: 'b', why: 'c' };
  const bad: Finding = { check: 'webhook-settings', status: 'problem', object: 'o', what: 'd', why: 'e', fix: 'f' };
  t.equal(exitCodeOf([okF]), 0);
  t.equal(exitCodeOf([okF, unchecked]), 2);
  t.equal(exitCodeOf([unchecked, bad]), 1);
  t.equal(worst([]), 'ok');
  const report = {
    cluster: 'https://k',
    credentials: 'kc',
    findings: [okF, unchecked, bad],
    profileText: 'mesh profile\n  x\n',
    profileJson: { p: 1 },
  };
  const json = JSON.parse(renderJson(report)) as {
    result: string;
    counts: unknown;
    checks: { id: string; status: string; findings: unknown[] }[];
    meshProfile: unknown;
  };
  t.equal(json.result, 'problems');
  t.strictSame(json.counts, { ok: 1, problem: 1, 'could-not-check': 1 });
  t.strictSame(
    json.checks.map((c) => [c.id, c.status, c.findings.length]),
    [
      ['webhook-order', 'ok', 1],
      ['webhook-settings', 'problem', 1],
      ['serving-certificate', 'could-not-check', 1],
      ['injector-endpoints', 'ok', 0],
      ['namespace-revisions', 'ok', 0],
      ['mesh-profile', 'ok', 0],
    ],
  );
  t.strictSame(json.checks[1]?.findings[0], { status: 'problem', object: 'o', what: 'd', why: 'e', fix: 'f' });
  t.strictSame(json.meshProfile, { p: 1 });
  const text = renderText(report);
  t.match(text, '\nwebhook-settings [PROBLEM]: ');
  t.match(text, '\n  PROBLEM   o: d\n            why: e\n            fix: f\n');
  t.match(text, '\n  UNCHECKED b\n            why: c\n');
  t.match(text, '\n    mesh profile\n      x\n');
  t.match(text, /\nproblems: 1 ok, 1 problem, 1 could not be checked\n$/);
});
