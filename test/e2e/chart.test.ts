// The Helm chart with real Helm 4 (built from helm.sh/helm/v4, test/e2e/components/helm):
// `helm lint`, then `helm template` with the values the README documents, every rendered object
// created with server-side dry-run (dryRun=All) against the real kube-apiserver, and the answer
// must still hold every rendered field (so a misspelt field in a template cannot pass). On top:
// what the README promises about the chart. `helm install` itself is in meshguard.test.ts.
//
// Objects go to the API server as the renderer printed them (raw HTTPS, no client model in
// between): @kubernetes/client-node serialises known kinds through its models, which would drop
// a misspelt field before the server could.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmissionregistrationV1Api, ApiextensionsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { V1PolicyRule } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import t from 'tap';
import { defaultConfigPath, packageRoot } from '../../src/paths.js';
import { apiRequest, startCluster } from './cluster.js';
import { helm, HELM_VERSION, KUBE_VERSION } from './tools.js';

/** A subtest's `t` (the last overload of t.test takes just the callback). */
type Sub = Parameters<Parameters<typeof t.test>[0]>[0];

const chartDir = join(packageRoot, 'charts/meshguard');
const RELEASE = 'meshguard';

const cluster = await startCluster({ istioCrds: false, waitForControllers: false });
t.teardown(() => cluster.stop());
t.comment(`control plane ready in ${cluster.startupMs} ms`);
const kc = cluster.kubeConfig;
const core = kc.makeApiClient(CoreV1Api);
const tmp = mkdtempSync(join(tmpdir(), 'meshguard-chart-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test(`helm lint (Helm ${HELM_VERSION}), with the values of both README installs`, async (t) => {
  for (const set of [
    ['--set', 'tls.existingSecret=meshguard-tls', '--set', 'tls.caBundle=Y2E='],
    ['--set', 'certManager.enabled=true'],
  ]) {
    const lint = await helm(tmp, ['lint', '--strict', chartDir, '--kube-version', KUBE_VERSION, ...set]);
    t.equal(lint.status, 0, `helm lint ${set.join(' ')}: ${lint.stdout}${lint.stderr}`);
    t.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
  const version = await helm(tmp, ['version', '--short']);
  t.match(version.stdout, new RegExp(`^${HELM_VERSION.replaceAll('.', '\\.')}\\b`), 'the pinned Helm');
});

// --- rendering ------------------------------------------------------------------------------

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}
interface Doc {
  source: string;
  obj: Obj;
}
interface Rendered {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

let valuesFiles = 0;
/** helm template RELEASE charts/meshguard --namespace NS -f VALUES, for the cluster's Kubernetes version. */
async function render(
  namespace: string,
  values: object,
  extra: string[] = ['--kube-version', KUBE_VERSION],
): Promise<Rendered> {
  const file = join(tmp, `values-${++valuesFiles}.json`);
  writeFileSync(file, JSON.stringify(values));
  const started = Date.now();
  const r = await helm(tmp, ['template', RELEASE, chartDir, '--namespace', namespace, '-f', file, ...extra]);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

/** `---` separated documents, each opened by helm's `# Source: meshguard/templates/FILE`. */
function parse(out: string): Doc[] {
  return out
    .split(/^---\n/m)
    .filter((chunk) => chunk.trim() !== '')
    .map((chunk) => {
      const source = /^# Source: (meshguard\/templates\/[\w.-]+)\n/.exec(chunk)?.[1];
      if (source === undefined) throw new Error(`document without a # Source line:\n${chunk}`);
      return { source, obj: yaml.load(chunk) as Obj };
    });
}

async function renderOk(t: Sub, namespace: string, values: object): Promise<Doc[]> {
  const r = await render(namespace, values);
  t.equal(r.code, 0, `rendered in ${r.ms} ms ${r.stderr}`);
  const docs = parse(r.stdout);
  for (const d of docs)
    t.ok(
      existsSync(join(chartDir, 'templates', d.source.slice('meshguard/templates/'.length))),
      `${d.obj.kind} ${d.obj.metadata.name} from ${d.source}`,
    );
  return docs;
}

function one(docs: Doc[], kind: string): Obj {
  const found = docs.filter((d) => d.obj.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return (found[0] as Doc).obj;
}

// --- the API server, raw ----------------------------------------------------------------------

const api = (method: string, path: string, body?: unknown, contentType?: string) =>
  apiRequest(cluster, method, path, body, contentType);

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}
const resourceLists = new Map<string, ApiResource[]>();
/** The collection URL of an object's kind, from discovery. */
async function collection(obj: Obj, namespace: string): Promise<string> {
  const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  let list = resourceLists.get(base);
  if (list === undefined) {
    const r = await api('GET', base);
    if (r.status !== 200) throw new Error(`discovery ${base}: ${r.status} ${JSON.stringify(r.body)}`);
    list = (r.body as { resources: ApiResource[] }).resources;
    resourceLists.set(base, list);
  }
  const res = list.find((x) => x.kind === obj.kind && !x.name.includes('/'));
  if (res === undefined) throw new Error(`the API server does not serve ${obj.apiVersion} ${obj.kind}`);
  return `${base}${res.namespaced ? `/namespaces/${obj.metadata.namespace ?? namespace}` : ''}/${res.name}`;
}

/** Paths of rendered fields the answer lacks or changed (the API server drops unknown fields). */
function lost(rendered: unknown, answer: unknown, at = ''): string[] {
  if (rendered === null || rendered === undefined) return [];
  if (Array.isArray(rendered)) {
    if (!Array.isArray(answer) || answer.length !== rendered.length) return [`${at} (list)`];
    return rendered.flatMap((v: unknown, i) => lost(v, answer[i], `${at}[${i}]`));
  }
  if (typeof rendered === 'object') {
    if (typeof answer !== 'object' || answer === null) return [`${at} (object)`];
    return Object.entries(rendered).flatMap(([k, v]) => lost(v, (answer as Record<string, unknown>)[k], `${at}.${k}`));
  }
  return String(rendered) === String(answer)
    ? []
    : [`${at}: ${JSON.stringify(rendered)} became ${JSON.stringify(answer)}`];
}

/** Every document created with dryRun=All, in the order rendered (helm's install order). */
async function dryRunAll(t: Sub, docs: Doc[], namespace: string): Promise<void> {
  for (const { obj, source } of docs) {
    const what = `${obj.apiVersion} ${obj.kind} ${obj.metadata.name} (${source})`;
    const url = await collection(obj, namespace).catch((err: unknown) => {
      t.fail(`${what}: ${(err as Error).message}`);
      return undefined;
    });
    if (url === undefined) continue;
    const r = await api('POST', `${url}?dryRun=All&fieldManager=helm`, obj);
    t.equal(r.status, 201, `dry-run create ${what}: ${r.status === 201 ? 'accepted' : JSON.stringify(r.body)}`);
    if (r.status === 201) t.strictSame(lost(obj, r.body), [], `${what}: the API server kept every rendered field`);
  }
  // Nothing was persisted.
  const cm = await api('GET', `/api/v1/namespaces/${namespace}/configmaps/${RELEASE}`);
  t.equal(cm.status, 404, 'dry-run: nothing stored');
}

// --- the cluster: release namespaces, minimal cert-manager and ServiceMonitor CRDs --------------

function looseCrd(group: string, kind: string, plural: string): V1CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      // In @kubernetes/client-node 1.x the model's property name; the wire name would be dropped.
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
        },
      ],
    },
  };
}

const crds = kc.makeApiClient(ApiextensionsV1Api);
await Promise.all(
  [
    looseCrd('cert-manager.io', 'Certificate', 'certificates'),
    looseCrd('cert-manager.io', 'Issuer', 'issuers'),
    // The Prometheus Operator's, for the chart's optional ServiceMonitor.
    looseCrd('monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors'),
  ].map(async (body) => {
    await crds.createCustomResourceDefinition({ body });
    const name = body.metadata?.name ?? '';
    for (let i = 0; ; i++) {
      const crd = await crds.readCustomResourceDefinition({ name });
      if ((crd.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 300) throw new Error(`CRD ${name} not Established`);
      await sleep(100);
    }
  }),
);

const NS_CM = 'meshguard'; // (a) cert-manager, as in the README
const NS_TLS = 'mg-existing'; // (b) an existing Secret and caBundle
// istio-system: the chart grants read access to Istio's objects there (values: istioNamespace).
for (const name of [NS_CM, NS_TLS, 'istio-system']) await core.createNamespace({ body: { metadata: { name } } });

const config = yaml.load(readFileSync(defaultConfigPath, 'utf8')) as { excludeNamespaces: string[] };
const webhookSpec = yaml.load(readFileSync(join(chartDir, 'files/webhooks.yaml'), 'utf8')) as {
  mutating: { configurationName: string };
  excludedNamespaces: string[];
};
/** The chart's ClusterRole and Role rules (files/rbac.yaml) for a release named `name`. */
function rbacRules(name: string): {
  clusterRules: V1PolicyRule[];
  namespaceRules: V1PolicyRule[];
  istioRules: V1PolicyRule[];
} {
  const text = readFileSync(join(chartDir, 'files/rbac.yaml'), 'utf8').replaceAll('CONFIGMAP', name);
  return yaml.load(text) as {
    clusterRules: V1PolicyRule[];
    namespaceRules: V1PolicyRule[];
    istioRules: V1PolicyRule[];
  };
}

/** The document of a kind in a namespace. */
function inNamespace(docs: Doc[], kind: string, namespace: string): Obj {
  const found = docs.filter((d) => d.obj.kind === kind && d.obj.metadata.namespace === namespace);
  if (found.length !== 1) throw new Error(`expected one ${kind} in ${namespace}, found ${found.length}`);
  return (found[0] as Doc).obj;
}

// --- what both installations share: the README's promises ---------------------------------------

function checkCommon(t: Sub, docs: Doc[], namespace: string, validatingFailurePolicy: string): void {
  const deployment = one(docs, 'Deployment') as Obj & { spec: DeploymentSpec };
  const spec = deployment.spec;
  const pod = spec.template.spec;
  const container = pod.containers[0] as Container;
  const podLabels = spec.template.metadata.labels;
  const values = yaml.load(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as {
    shutdownDelaySeconds: number;
    terminationGracePeriodSeconds: number;
  };

  t.test('Deployment: two replicas, hardened, spread, probed, drained gracefully', async (t) => {
    t.equal(spec.replicas, 2);
    t.match(
      pod.securityContext,
      { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      'pod: non-root, RuntimeDefault seccomp',
    );
    t.match(
      container.securityContext,
      { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
      'container: no escalation, read-only root, all capabilities dropped',
    );
    t.match(
      pod.topologySpreadConstraints,
      [
        {
          topologyKey: 'kubernetes.io/hostname',
          maxSkew: 1,
          labelSelector: { matchLabels: spec.selector.matchLabels },
        },
      ],
      'spread across nodes',
    );
    t.match(container.livenessProbe, { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' } });
    t.match(container.readinessProbe, { httpGet: { path: '/readyz', port: 'https', scheme: 'HTTPS' } });
    t.ok(
      container.ports.some((p) => p.name === 'https'),
      'probes use a named container port',
    );
    const delay = Number(
      /^--shutdown-delay=(\d+)$/.exec(container.args.find((a) => a.startsWith('--shutdown-delay=')) ?? '')?.[1],
    );
    t.equal(delay, values.shutdownDelaySeconds, '--shutdown-delay from values');
    t.ok(
      pod.terminationGracePeriodSeconds > delay + 20,
      `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > shutdown delay ${delay} + 20`,
    );
    t.ok(container.args.includes(`--config-map=${namespace}/${RELEASE}`), 'reads its ConfigMap');
    t.match(
      container.env,
      [{ name: 'MESHGUARD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
      'knows its own namespace (never evaluated)',
    );
    t.equal(pod.serviceAccountName, RELEASE);
    t.match(podLabels, spec.selector.matchLabels, 'the selector selects the pod template');
    t.equal(spec.template.metadata.annotations?.['sidecar.istio.io/inject'], 'false', 'never in the mesh');
  });

  t.test('PodDisruptionBudget: policy/v1', async (t) => {
    const pdb = one(docs, 'PodDisruptionBudget') as Obj & {
      spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    };
    t.equal(pdb.apiVersion, 'policy/v1');
    t.equal(pdb.spec.minAvailable, 1);
    t.strictSame(pdb.spec.selector.matchLabels, spec.selector.matchLabels);
  });

  t.test('Service: the webhook port reaches the container', async (t) => {
    const svc = one(docs, 'Service') as Obj & {
      spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] };
    };
    t.match(podLabels, svc.spec.selector, 'selects the pods');
    for (const p of svc.spec.ports)
      t.ok(
        container.ports.some((c) => c.name === p.targetPort),
        `port ${p.name} -> container port ${p.targetPort}`,
      );
    t.ok(
      svc.spec.ports.some((p) => p.name === 'http-metrics' && p.port === 9090),
      'http-metrics on 9090',
    );
  });

  t.test('ConfigMap config.yaml is policies/meshguard.yaml', async (t) => {
    const cm = one(docs, 'ConfigMap') as Obj & { data: Record<string, string> };
    t.strictSame(yaml.load(cm.data['config.yaml'] ?? ''), yaml.load(readFileSync(defaultConfigPath, 'utf8')));
  });

  t.test('RBAC is files/rbac.yaml, bound to the ServiceAccount', async (t) => {
    const rules = rbacRules(RELEASE);
    t.strictSame((one(docs, 'ClusterRole') as Obj & { rules: unknown }).rules, rules.clusterRules);
    t.strictSame((inNamespace(docs, 'Role', namespace) as Obj & { rules: unknown }).rules, rules.namespaceRules);
    t.strictSame((inNamespace(docs, 'Role', 'istio-system') as Obj & { rules: unknown }).rules, rules.istioRules);
    const subjects = [{ kind: 'ServiceAccount', name: RELEASE, namespace }];
    t.match(one(docs, 'ClusterRoleBinding'), { roleRef: { kind: 'ClusterRole', name: RELEASE }, subjects });
    t.match(inNamespace(docs, 'RoleBinding', namespace), {
      metadata: { namespace },
      roleRef: { kind: 'Role', name: RELEASE },
      subjects,
    });
    t.match(inNamespace(docs, 'RoleBinding', 'istio-system'), {
      roleRef: { kind: 'Role', name: `${RELEASE}-istio` },
      subjects,
    });
    t.equal(one(docs, 'ServiceAccount').metadata.name, RELEASE);
  });

  t.test('webhooks: ordering, failure policies, selectors', async (t) => {
    const mutating = one(docs, 'MutatingWebhookConfiguration') as Obj & { webhooks: Webhook[] };
    const validating = one(docs, 'ValidatingWebhookConfiguration') as Obj & { webhooks: Webhook[] };
    for (const istio of ['istio-sidecar-injector', 'istio-sidecar-injector-1-22', 'istio-revision-tag-default']) {
      t.ok(mutating.metadata.name < istio, `${mutating.metadata.name} sorts before ${istio}`);
    }
    const svc = one(docs, 'Service') as Obj & { spec: { ports: { name: string; port: number }[] } };
    for (const w of [...mutating.webhooks, ...validating.webhooks]) {
      t.match(
        w,
        { timeoutSeconds: 5, sideEffects: 'None', admissionReviewVersions: ['v1'] },
        `${w.name}: 5 s, no side effects, v1 reviews`,
      );
      t.strictSame(
        w.namespaceSelector.matchExpressions,
        [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', namespace] },
          { key: 'meshguard.io/ignore', operator: 'NotIn', values: ['true'] },
        ],
        `${w.name}: kube-system, kube-public, ${namespace} and meshguard.io/ignore=true excluded`,
      );
      t.match(w.clientConfig.service, {
        name: RELEASE,
        namespace,
        port: svc.spec.ports.find((p) => p.name === 'https-webhook')?.port,
      });
    }
    t.match(mutating.webhooks, [
      {
        name: 'mutate.meshguard.io',
        failurePolicy: 'Ignore',
        reinvocationPolicy: 'Never',
        clientConfig: { service: { path: '/mutate' } },
      },
    ]);
    t.match(validating.webhooks, [
      {
        name: 'validate.meshguard.io',
        failurePolicy: validatingFailurePolicy,
        clientConfig: { service: { path: '/validate' } },
      },
      // Namespaces always fail open, whatever the value says.
      {
        name: 'namespaces.meshguard.io',
        failurePolicy: 'Ignore',
        clientConfig: { service: { path: '/validate' } },
        rules: [{ apiGroups: [''], resources: ['namespaces'], operations: ['CREATE', 'UPDATE'], scope: 'Cluster' }],
      },
      // Security settings (PeerAuthentications) fail open whatever the values say.
      {
        name: 'security.validate.meshguard.io',
        failurePolicy: 'Ignore',
        clientConfig: { service: { path: '/validate' } },
        rules: [
          {
            apiGroups: ['security.istio.io'],
            resources: ['peerauthentications'],
            operations: ['CREATE', 'UPDATE'],
            scope: 'Namespaced',
          },
        ],
      },
    ]);
    t.equal(validating.webhooks.length, 3);
    t.equal(mutating.metadata.name, webhookSpec.mutating.configurationName);
  });
}

interface Container {
  args: string[];
  env: unknown[];
  ports: { name: string; containerPort: number }[];
  securityContext: unknown;
  livenessProbe: unknown;
  readinessProbe: unknown;
}
interface DeploymentSpec {
  replicas: number;
  selector: { matchLabels: Record<string, string> };
  template: {
    metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
    spec: {
      containers: Container[];
      securityContext: unknown;
      topologySpreadConstraints: unknown;
      terminationGracePeriodSeconds: number;
      serviceAccountName: string;
      volumes: { name: string; secret?: { secretName: string } }[];
    };
  };
}
interface Webhook {
  name: string;
  clientConfig: { service: { name: string; namespace: string; path: string; port: number }; caBundle?: string };
  namespaceSelector: { matchExpressions: unknown[] };
  [key: string]: unknown;
}

const tlsSecretOf = (docs: Doc[]) =>
  (one(docs, 'Deployment') as Obj & { spec: DeploymentSpec }).spec.template.spec.volumes.find((v) => v.name === 'tls')
    ?.secret?.secretName;

// --- (a) with cert-manager --------------------------------------------------------------------

t.test('(a) certManager.enabled=true: rendered, dry-run by the API server, as the README says', async (t) => {
  const docs = await renderOk(t, NS_CM, { certManager: { enabled: true } });
  t.strictSame(
    docs.map((d) => d.obj.kind),
    [
      'PodDisruptionBudget',
      'ServiceAccount',
      'ConfigMap',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'Role',
      'RoleBinding',
      'RoleBinding',
      'Service',
      'Deployment',
      'MutatingWebhookConfiguration',
      'ValidatingWebhookConfiguration',
      // Helm 4 installs kinds it does not know (custom resources) last.
      'Certificate',
      'Issuer',
    ],
    "helm's install order",
  );
  await dryRunAll(t, docs, NS_CM);
  checkCommon(t, docs, NS_CM, 'Ignore');

  t.test('cert-manager issues the Secret the pods mount and injects its CA', async (t) => {
    const cert = one(docs, 'Certificate') as Obj & {
      spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string } };
    };
    const issuer = one(docs, 'Issuer') as Obj & { spec: unknown };
    t.equal(cert.spec.secretName, tlsSecretOf(docs), 'the Deployment mounts the Certificate Secret');
    t.strictSame(cert.spec.dnsNames, [`${RELEASE}.${NS_CM}.svc`, `${RELEASE}.${NS_CM}.svc.cluster.local`]);
    t.strictSame(cert.spec.issuerRef, { name: issuer.metadata.name, kind: 'Issuer' }, "the chart's self-signed Issuer");
    t.strictSame(issuer.spec, { selfSigned: {} });
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const conf = one(docs, kind) as Obj & { webhooks: Webhook[] };
      t.equal(
        conf.metadata.annotations?.['cert-manager.io/inject-ca-from'],
        `${NS_CM}/${cert.metadata.name}`,
        `${kind}: cainjector annotation`,
      );
      t.ok(
        conf.webhooks.every((w) => w.clientConfig.caBundle === undefined),
        `${kind}: no caBundle of the chart's own`,
      );
    }
  });

  t.test('certManager.issuerRef: an existing ClusterIssuer instead of the self-signed Issuer', async (t) => {
    const docs = await renderOk(t, NS_CM, {
      certManager: { enabled: true, issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } },
    });
    t.notOk(
      docs.some((d) => d.obj.kind === 'Issuer'),
      'no Issuer',
    );
    t.strictSame((one(docs, 'Certificate') as Obj & { spec: { issuerRef: unknown } }).spec.issuerRef, {
      kind: 'ClusterIssuer',
      name: 'corp-ca',
    });
    await dryRunAll(
      t,
      docs.filter((d) => d.obj.kind === 'Certificate'),
      NS_CM,
    );
  });
});

// --- (b) with an existing Secret and caBundle, from `meshguard certs` ---------------------------

t.test(
  '(b) tls.existingSecret + tls.caBundle from `meshguard certs`: rendered, dry-run, as the README says',
  async (t) => {
    const out = join(tmp, 'certs');
    const certs = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(packageRoot, 'dist/src/cli.js'), 'certs', '--service', RELEASE, '--namespace', NS_TLS, '--out', out],
        { encoding: 'utf8' },
        (err, stdout, stderr) =>
          err === null ? resolve({ stdout, stderr }) : reject(new Error(`meshguard certs: ${err.message} ${stderr}`)),
      ),
    );
    const caBundle = certs.stdout.trim();
    const [crt, key, caPem] = ['tls.crt', 'tls.key', 'ca.crt'].map((f) => readFileSync(join(out, f), 'utf8')) as [
      string,
      string,
      string,
    ];
    await core.createNamespacedSecret({
      namespace: NS_TLS,
      body: {
        metadata: { name: 'meshguard-tls' },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': Buffer.from(crt).toString('base64'), 'tls.key': Buffer.from(key).toString('base64') },
      },
    });

    const docs = await renderOk(t, NS_TLS, {
      tls: { existingSecret: 'meshguard-tls', caBundle },
      webhook: { validatingFailurePolicy: 'Fail' },
    });
    t.notOk(
      docs.some((d) => d.obj.apiVersion.startsWith('cert-manager.io/')),
      'no cert-manager objects',
    );
    await dryRunAll(t, docs, NS_TLS);
    checkCommon(t, docs, NS_TLS, 'Fail');

    t.test('the webhooks trust the CA that signed the mounted Secret, for the name they call', async (t) => {
      t.equal(tlsSecretOf(docs), 'meshguard-tls', 'the Deployment mounts tls.existingSecret');
      t.equal(Buffer.from(caBundle, 'base64').toString(), caPem, 'caBundle is ca.crt');
      const serving = new X509Certificate(crt);
      t.ok(serving.verify(new X509Certificate(caPem).publicKey), 'tls.crt is signed by the caBundle CA');
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        const conf = one(docs, kind) as Obj & { webhooks: Webhook[] };
        t.equal(
          conf.metadata.annotations?.['cert-manager.io/inject-ca-from'],
          undefined,
          `${kind}: no cainjector annotation`,
        );
        for (const w of conf.webhooks) {
          t.equal(w.clientConfig.caBundle, caBundle, `${w.name}: caBundle`);
          const host = `${w.clientConfig.service.name}.${w.clientConfig.service.namespace}.svc`;
          t.equal(serving.checkHost(host), host, `${w.name}: the certificate covers ${host}`);
        }
      }
    });
  },
);

// --- (c) neither ------------------------------------------------------------------------------

t.test(
  '(c) without cert-manager or an existing Secret and caBundle, rendering fails with the required message',
  async (t) => {
    const cases: [object, RegExp][] = [
      [
        {},
        /^Error: execution error at \(meshguard\/templates\/webhooks\.yaml:\d+:\d+\): tls\.caBundle is required without certManager\.enabled$/m,
      ],
      [{ tls: { existingSecret: 'meshguard-tls' } }, /tls\.caBundle is required without certManager\.enabled/],
      [
        { tls: { caBundle: 'Y2E=' } },
        /^Error: execution error at \(meshguard\/templates\/deployment\.yaml:\d+:\d+\): tls\.existingSecret is required without certManager\.enabled$/m,
      ],
    ];
    for (const [values, message] of cases) {
      const r = await render(NS_TLS, values);
      t.equal(r.code, 1, `${JSON.stringify(values)}: exit 1`);
      t.match(r.stderr, message);
      t.equal(r.stdout, '', 'nothing rendered');
    }
  },
);

// --- monitoring: ServiceMonitor and Grafana dashboard, both off by default ------------------------

t.test('monitoring: nothing by default; asked, a ServiceMonitor on the metrics port and the dashboard', async (t) => {
  const base = { tls: { existingSecret: 'meshguard-tls', caBundle: 'Y2E=' } };
  const plain = await renderOk(t, NS_TLS, base);
  t.notOk(
    plain.some((d) => d.obj.kind === 'ServiceMonitor'),
    'no ServiceMonitor by default',
  );
  t.equal(plain.filter((d) => d.obj.kind === 'ConfigMap').length, 1, 'no dashboard ConfigMap by default');

  const docs = await renderOk(t, NS_TLS, {
    ...base,
    serviceMonitor: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' }, interval: '15s' },
    grafanaDashboard: { enabled: true, annotations: { grafana_folder: 'Istio' } },
  });
  type Endpoint = { port: string; path: string; scheme: string; interval: string; scrapeTimeout: string };
  const sm = one(docs, 'ServiceMonitor') as Obj & {
    spec: { selector: { matchLabels: Record<string, string> }; namespaceSelector: unknown; endpoints: Endpoint[] };
  };
  const service = one(docs, 'Service') as Obj & { spec: { ports: { name: string; targetPort: string }[] } };
  const container = (one(docs, 'Deployment') as Obj & { spec: DeploymentSpec }).spec.template.spec
    .containers[0] as Container;
  t.match(service.metadata.labels, sm.spec.selector.matchLabels, 'it selects the release Service');
  t.strictSame(sm.spec.namespaceSelector, { matchNames: [NS_TLS] });
  t.equal(sm.metadata.labels?.release, 'kube-prometheus-stack', 'with the labels Prometheus selects by');
  t.match(sm.spec.endpoints, [{ port: 'http-metrics', path: '/metrics', scheme: 'http', interval: '15s' }]);
  // The Service port it names leads to the container port serve listens on with --metrics-port.
  const port = service.spec.ports.find((p) => p.name === sm.spec.endpoints[0]?.port);
  const target = container.ports.find((p) => p.name === port?.targetPort);
  t.ok(target, `Service port ${port?.name} targets container port ${port?.targetPort}`);
  t.ok(container.args.includes(`--metrics-port=${target?.containerPort}`), 'where serve serves /metrics');

  const dashboard = docs.find((d) => d.obj.kind === 'ConfigMap' && d.obj.metadata.labels?.grafana_dashboard === '1');
  t.ok(dashboard, "a ConfigMap with the Grafana sidecar's label");
  t.equal(dashboard?.obj.metadata.annotations?.grafana_folder, 'Istio');
  const data = (dashboard?.obj as { data?: Record<string, string> } | undefined)?.data ?? {};
  t.strictSame(
    JSON.parse(data['meshguard.json'] ?? 'null'),
    JSON.parse(readFileSync(join(chartDir, 'dashboards/meshguard.json'), 'utf8')),
    'holding dashboards/meshguard.json as it is',
  );
  await dryRunAll(
    t,
    docs.filter((d) => d.obj.kind === 'ServiceMonitor' || d === dashboard),
    NS_TLS,
  );
});

// --- the renderer's Helm behaviour the chart relies on ------------------------------------------

t.test('values schema, kubeVersion, capabilities, guards', async (t) => {
  const bad = await render(NS_CM, {
    certManager: { enabled: true },
    replicaCount: 0,
    webhook: { validatingFailurePolicy: 'Sometimes' },
  });
  t.equal(bad.code, 1);
  t.match(
    bad.stderr,
    /values don't meet the specifications of the schema\(s\) in the following chart\(s\):\nmeshguard:\n/,
  );
  t.match(bad.stderr, /at '\/replicaCount': minimum: got 0, want 1/);
  t.match(bad.stderr, /validatingFailurePolicy/);

  const old = await render(NS_CM, { certManager: { enabled: true } }, ['--kube-version', 'v1.20.15']);
  t.match(old.stderr, /chart requires kubeVersion: >=1\.21\.0-0 which is incompatible with Kubernetes v1\.20\.15/);

  // `helm template` with Helm's defaults for the cluster.
  const offline = await render(NS_CM, { certManager: { enabled: true } }, []);
  t.equal(offline.code, 0, offline.stderr);
  t.equal(one(parse(offline.stdout), 'PodDisruptionBudget').apiVersion, 'policy/v1', 'policy/v1 where it is served');

  const single = await render(NS_CM, { certManager: { enabled: true }, replicaCount: 1 });
  t.notOk(
    parse(single.stdout).some((d) => d.obj.kind === 'PodDisruptionBudget'),
    'one replica: no budget that would block every drain',
  );

  const grace = await render(NS_CM, {
    certManager: { enabled: true },
    shutdownDelaySeconds: 15,
    terminationGracePeriodSeconds: 30,
  });
  t.equal(grace.code, 1);
  t.match(grace.stderr, /terminationGracePeriodSeconds \(30\) must exceed shutdownDelaySeconds \+ 20 \(35\)/);

  const nulled = await render(NS_CM, {
    certManager: { enabled: true },
    podAnnotations: { 'example.com/a': 'b' },
    nodeSelector: null,
  });
  t.equal(nulled.code, 0, nulled.stderr);
  t.match(
    (one(parse(nulled.stdout), 'Deployment') as Obj & { spec: DeploymentSpec }).spec.template.metadata.annotations,
    { 'sidecar.istio.io/inject': 'false', 'example.com/a': 'b' },
  );
});

// --- excluded namespaces, at the API server ------------------------------------------------------

t.test('kube-system, kube-public and the release namespace are excluded by kubernetes.io/metadata.name', async (t) => {
  for (const name of ['kube-system', 'kube-public', NS_TLS]) {
    const ns = await core.readNamespace({ name });
    t.equal(ns.metadata?.labels?.['kubernetes.io/metadata.name'], name, `${name} carries the label`);
  }
  t.ok(
    ['kube-system', 'kube-public'].every((n) => config.excludeNamespaces.includes(n)),
    'meshguard itself passes kube-system and kube-public too (config.excludeNamespaces)',
  );
  // Register the rendered fail-closed validating configuration for real, with nothing behind its
  // Service: a namespace it covers fails closed, an excluded one is never sent.
  const rendered = await render(NS_TLS, {
    tls: { existingSecret: 'meshguard-tls', caBundle: 'Y2E=' },
    webhook: { validatingFailurePolicy: 'Fail' },
  });
  const validating = one(parse(rendered.stdout), 'ValidatingWebhookConfiguration');
  const created = await api('POST', await collection(validating, NS_TLS), validating);
  t.equal(
    created.status,
    201,
    `registered for real: ${created.status === 201 ? validating.metadata.name : JSON.stringify(created.body)}`,
  );
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  t.teardown(() =>
    admission.deleteValidatingWebhookConfiguration({ name: validating.metadata.name }).then(() => undefined),
  );
  const service = (namespace: string) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'probe', namespace },
    spec: { ports: [{ port: 80 }] },
  });
  let sent: { status: number; body: unknown } = { status: 0, body: undefined };
  for (let i = 0; i < 50; i++) {
    // The configuration reaches the admission chain within a moment.
    sent = await api('POST', `/api/v1/namespaces/${NS_CM}/services?dryRun=All`, service(NS_CM));
    if (sent.status !== 201) break;
    await sleep(100);
  }
  t.equal(sent.status, 500, `${NS_CM}: sent to the absent webhook, failed closed`);
  t.match((sent.body as { message?: string }).message, /failed calling webhook "validate\.meshguard\.io"/);
  for (const namespace of ['kube-system', 'kube-public', NS_TLS]) {
    const r = await api('POST', `/api/v1/namespaces/${namespace}/services?dryRun=All`, service(namespace));
    t.equal(r.status, 201, `${namespace}: never sent${r.status === 201 ? '' : ` (${JSON.stringify(r.body)})`}`);
  }
});
