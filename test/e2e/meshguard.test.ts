// meshguard end to end: a real kube-apiserver + etcd + kube-controller-manager, meshguard as a
// real HTTPS process with the chart's RBAC, registered with the chart's webhook settings. Every
// scenario goes through the API server with @kubernetes/client-node.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  Observable,
  type ObservableMiddleware,
  type V1Pod,
} from '@kubernetes/client-node';
import t from 'tap';
import { defaultConfigPath, packageRoot } from '../../src/paths.js';
import { startServe, type Served } from '../serve-process.js';
import { rbacRoles, webhookConfigurations, webhookSpec } from './chart.js';
import { installIstioCrds, startCluster } from './cluster.js';

const RELEASE_NS = 'meshguard-system';
const NAME = 'meshguard';

const cluster = await startCluster({ istioCrds: false });
t.teardown(() => cluster.stop());
t.comment(`control plane ready in ${cluster.startupMs} ms`);
const kc = cluster.kubeConfig;
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const admission = kc.makeApiClient(AdmissionregistrationV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);

/** Polls `fn` until it returns a value other than undefined, or fails after `ms`. */
async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

function getJson(port: number, path: string, ca: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    httpsGet({ host: '127.0.0.1', port, path, ca, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    }).on('error', reject);
  });
}

/** Runs an API call and returns the `Warning` headers the API server sent with its answer. */
async function withWarnings<T>(
  call: (options: { middleware: ObservableMiddleware[]; middlewareMergeStrategy: 'append' }) => Promise<T>,
): Promise<{ value: T; warnings: string[] }> {
  const warnings: string[] = [];
  const middleware: ObservableMiddleware = {
    pre: (ctx) => new Observable(Promise.resolve(ctx)),
    post: (ctx) => {
      // `299 - "text"`, several joined with ", "
      for (const m of (ctx.headers.warning ?? '').matchAll(/299 - "((?:[^"\\]|\\.)*)"/g))
        warnings.push((m[1] ?? '').replace(/\\(.)/g, '$1'));
      return new Observable(Promise.resolve(ctx));
    },
  };
  const value = await call({ middleware: [middleware], middlewareMergeStrategy: 'append' });
  return { value, warnings };
}

/** The API server's denial message for a call expected to be refused by meshguard. */
async function denial(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
  } catch (err) {
    if (err instanceof ApiException) return String((JSON.parse(String(err.body)) as { message?: string }).message);
    throw err;
  }
  throw new Error('expected a denial, the request was admitted');
}

const dr = (namespace: string, name: string, host: string, exportTo?: string[]) => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name, namespace },
  spec: { host, ...(exportTo && { exportTo }) },
});
const createDr = (body: ReturnType<typeof dr>, dryRun?: string) =>
  custom.createNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1beta1',
    namespace: body.metadata.namespace,
    plural: 'destinationrules',
    body,
    dryRun,
  });

function plainPod(name: string): V1Pod {
  return {
    metadata: { name, namespace: 'shop', labels: { app: name } },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'example.invalid/app:1',
          ports: [{ containerPort: 9000 }],
          livenessProbe: { tcpSocket: { port: 9000 } },
        },
      ],
    },
  };
}

// --- the cluster as a platform team would set it up -------------------------------------------

for (const [name, labels] of [
  [RELEASE_NS, {}],
  ['shop', { 'istio-injection': 'enabled' }],
  ['payments', { 'istio-injection': 'enabled' }],
  ['ns1', {}],
  ['ignored', { 'meshguard.io/ignore': 'true' }],
] as const) {
  await core.createNamespace({ body: { metadata: { name, labels } } });
}
await core.createNamespacedServiceAccount({ namespace: RELEASE_NS, body: { metadata: { name: NAME } } });
const roles = rbacRoles(NAME, RELEASE_NS);
await rbac.createClusterRole({ body: roles.clusterRole });
await rbac.createNamespacedRole({ namespace: RELEASE_NS, body: roles.role });
const subjects = [{ kind: 'ServiceAccount', name: NAME, namespace: RELEASE_NS }];
await rbac.createClusterRoleBinding({
  body: {
    metadata: { name: NAME },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME },
    subjects,
  },
});
await rbac.createNamespacedRoleBinding({
  namespace: RELEASE_NS,
  body: {
    metadata: { name: NAME },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: NAME },
    subjects,
  },
});
const defaults = readFileSync(defaultConfigPath, 'utf8');
await core.createNamespacedConfigMap({
  namespace: RELEASE_NS,
  body: { metadata: { name: NAME }, data: { 'config.yaml': defaults } },
});

// meshguard's own identity: the ServiceAccount's token, so it runs with exactly the chart's RBAC.
const token = await eventually('the ServiceAccount token', async () => {
  const secrets = await core.listNamespacedSecret({ namespace: RELEASE_NS });
  const secret = secrets.items.find(
    (s) =>
      s.type === 'kubernetes.io/service-account-token' &&
      s.metadata?.annotations?.['kubernetes.io/service-account.name'] === NAME,
  );
  return secret?.data?.token ? Buffer.from(secret.data.token, 'base64').toString() : undefined;
});
const saConfig = new KubeConfig();
saConfig.loadFromOptions({
  clusters: [{ name: 'e2e', server: cluster.server, caData: Buffer.from(cluster.caPem).toString('base64') }],
  users: [{ name: NAME, token }],
  contexts: [{ name: 'e2e', cluster: 'e2e', user: NAME }],
  currentContext: 'e2e',
});
const saKubeconfig = join(cluster.logDir, 'meshguard.kubeconfig');
writeFileSync(saKubeconfig, saConfig.exportConfig());

const serveArgs = [
  '--cluster',
  'auto',
  '--kubeconfig',
  saKubeconfig,
  '--config-map',
  `${RELEASE_NS}/${NAME}`,
  '--namespace',
  RELEASE_NS,
  '--shutdown-delay',
  '0',
];
let served: Served = await startServe(serveArgs, { compiled: true });
t.teardown(() => served.proc.kill('SIGKILL'));
const logged = (msg: RegExp) => served.logs.some((l) => typeof l.msg === 'string' && msg.test(l.msg));

// --- scenarios --------------------------------------------------------------------------------

t.test('meshguard syncs its cluster view with least privilege and becomes ready', async (t) => {
  const ready = await eventually('readyz 200', async () => {
    const res = await getJson(served.port, '/readyz', served.ca.cert);
    return res.status === 200 ? res.body : undefined;
  });
  t.match(ready, { status: 'ready', clusterLookups: 'on' });
  await eventually('the cluster lookups log line', async () => (logged(/^cluster lookups on$/) ? true : undefined));
  await eventually('the missing-CRD log line', async () =>
    logged(/^serviceentries: not installed/) ? true : undefined,
  );
  t.notOk(logged(/list\/watch failed/), 'no list/watch failures under the chart RBAC');
});

t.test('the API server accepts the chart webhook configurations', async (t) => {
  const { mutating, validating } = webhookConfigurations(
    `https://127.0.0.1:${served.port}`,
    served.ca.cert,
    RELEASE_NS,
  );
  const m = await admission.createMutatingWebhookConfiguration({ body: mutating });
  const v = await admission.createValidatingWebhookConfiguration({ body: validating });
  t.equal(m.metadata?.name, webhookSpec.mutating.configurationName);
  t.equal(m.webhooks?.[0]?.failurePolicy, 'Ignore');
  t.equal(m.webhooks?.[0]?.reinvocationPolicy, 'IfNeeded');
  t.equal(v.webhooks?.[0]?.failurePolicy, 'Ignore');
  t.ok((m.metadata?.name ?? '') < 'istio-sidecar-injector', 'mutating configuration ordered before Istio');
});

t.test('ServiceEntries are picked up once their CRD appears', async (t) => {
  await installIstioCrds(kc);
  await eventually(
    'the CRD pickup log line',
    async () => (logged(/^serviceentries: now installed/) ? true : undefined),
    20_000,
  );
  t.pass('watching serviceentries');
});

t.test(
  'a Deployment in an injected namespace: warnings at apply, its Pod mutated through the controller',
  async (t) => {
    const labels = { app: 'web' };
    await core.createNamespacedService({
      namespace: 'shop',
      body: { metadata: { name: 'web' }, spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] } },
    });
    await eventually(
      'the Service in the view',
      async () => (await core.readNamespacedService({ name: 'web', namespace: 'shop' })) && (await sleep(300), true),
    );
    const { warnings } = await withWarnings((o) =>
      apps.createNamespacedDeployment(
        {
          namespace: 'shop',
          body: {
            metadata: { name: 'web' },
            spec: {
              selector: { matchLabels: labels },
              template: {
                metadata: { labels, annotations: { 'proxy.istio.io/config': 'terminationDrainDuration: 20s\n' } },
                spec: {
                  containers: [
                    {
                      name: 'web',
                      image: 'example.invalid/web:1',
                      ports: [
                        { name: 'http', containerPort: 8080 },
                        { name: 'health', containerPort: 8087 },
                      ],
                      livenessProbe: { tcpSocket: { port: 8087 } },
                      readinessProbe: { tcpSocket: { port: 'http' } },
                    },
                  ],
                },
              },
            },
          },
        },
        o,
      ),
    );
    t.match(
      warnings.join('\n'),
      /^meshguard probe-port-exclusion: probe port 8080 also serves Service web; excluding it would bypass mTLS/m,
      'workload-level warning to the person applying',
    );
    t.match(
      warnings.join('\n'),
      /^meshguard hold-application-until-proxy-starts: when its pods are created, meshguard will set holdApplicationUntilProxyStarts: true/m,
      'and what its pods will get, in enforce mode too',
    );
    const pod = await eventually(
      'the Deployment Pod',
      async () => (await core.listNamespacedPod({ namespace: 'shop', labelSelector: 'app=web' })).items[0],
    );
    t.equal(
      pod.metadata?.annotations?.['proxy.istio.io/config'],
      'terminationDrainDuration: 20s\nholdApplicationUntilProxyStarts: true\n',
      'hold merged, other keys kept',
    );
    t.equal(
      pod.metadata?.annotations?.['traffic.sidecar.istio.io/excludeInboundPorts'],
      '8087',
      'the health port excluded, the serving port not',
    );
  },
);

t.test("a Job's Pod is stored with the wrapped command", async (t) => {
  await batch.createNamespacedJob({
    namespace: 'shop',
    body: {
      metadata: { name: 'report' },
      spec: {
        template: {
          metadata: { labels: { app: 'report', 'sidecar.istio.io/inject': 'true' } },
          spec: {
            restartPolicy: 'Never',
            containers: [{ name: 'report', image: 'busybox', command: ['/bin/sh', '-c'], args: ['date; echo done'] }],
          },
        },
      },
    },
  });
  const pod = await eventually(
    'the Job Pod',
    async () => (await core.listNamespacedPod({ namespace: 'shop', labelSelector: 'app=report' })).items[0],
  );
  const container = pod.spec?.containers[0];
  t.equal(container?.command?.[0], '/bin/sh');
  t.match(container?.command?.[2], /^# meshguard job-sidecar-quit v1\n/);
  t.strictSame(
    container?.args,
    ['/bin/sh', '-c', 'date; echo done'],
    'the original argv, unchanged, after the wrapper',
  );
});

t.test(
  'DestinationRules: misplaced denied with the message, well placed admitted, ignored namespaces skipped',
  async (t) => {
    const message = await denial(() => createDr(dr('ns1', 'myservice', 'myservice.default.svc.cluster.local')));
    t.match(
      message,
      /meshguard destinationrule-placement: DestinationRule ns1\/myservice for myservice\.default\.svc\.cluster\.local is only seen by clients in ns1; move it to default or istio-system, or set exportTo: \["\."\]/,
    );
    t.ok(await createDr(dr('default', 'myservice', 'myservice.default.svc.cluster.local')), 'in the host namespace');
    t.ok(await createDr(dr('ns1', 'local', 'myservice.default.svc.cluster.local', ['.'])), 'explicitly local');
    t.ok(
      await createDr(dr('ignored', 'myservice', 'myservice.default.svc.cluster.local')),
      'meshguard.io/ignore=true namespace: not sent to meshguard',
    );
  },
);

t.test('a second ExternalName Service on the same TCP port is admitted with a warning', async (t) => {
  const svc = (namespace: string, name: string) => ({
    metadata: { name },
    spec: { type: 'ExternalName', externalName: `${name}.rds.example.com`, ports: [{ port: 3306, protocol: 'TCP' }] },
  });
  const first = await withWarnings((o) =>
    core.createNamespacedService({ namespace: 'shop', body: svc('shop', 'mysql-a') }, o),
  );
  t.strictSame(first.warnings, []);
  await sleep(500); // the watch brings mysql-a into the view
  const second = await withWarnings((o) =>
    core.createNamespacedService({ namespace: 'payments', body: svc('payments', 'mysql-b') }, o),
  );
  t.equal(second.value.metadata?.name, 'mysql-b', 'admitted');
  t.match(second.warnings, [
    /^meshguard externalname-tcp-collision: TCP port 3306 also carries Service shop\/mysql-a to another host/,
  ]);
});

t.test('server-side dry-run gets the same answers, and nothing is stored', async (t) => {
  const message = await denial(() => createDr(dr('ns1', 'dry', 'myservice.default.svc.cluster.local'), 'All'));
  t.match(message, /meshguard destinationrule-placement: DestinationRule ns1\/dry/);
  const pod = await core.createNamespacedPod({ namespace: 'shop', body: plainPod('dry'), dryRun: 'All' });
  t.match(
    pod.metadata?.annotations?.['proxy.istio.io/config'],
    /holdApplicationUntilProxyStarts: true/,
    'the dry-run answer carries the mutation',
  );
  const stored = await core
    .readNamespacedPod({ name: 'dry', namespace: 'shop' })
    .catch((e: ApiException<unknown>) => e.code);
  t.equal(stored, 404, 'nothing stored');
});

t.test(
  'ConfigMap toggles: warn mode within 2 s, invalid edits refused with an Event, deletion back to the base',
  async (t) => {
    const misplaced = () => createDr(dr('ns1', `probe-${Date.now()}`, 'myservice.default.svc.cluster.local'), 'All');
    const started = Date.now();
    await core.replaceNamespacedConfigMap({
      name: NAME,
      namespace: RELEASE_NS,
      body: { metadata: { name: NAME }, data: { 'config.yaml': defaults.replace(/^mode: enforce$/m, 'mode: warn') } },
    });
    const admitted = await eventually(
      'warn mode',
      async () =>
        (await misplaced().then(
          () => true,
          () => false,
        )) || undefined,
      5_000,
    );
    const elapsed = Date.now() - started;
    t.ok(admitted && elapsed <= 2_000, `the change took effect in ${elapsed} ms (≤ 2000)`);

    const dryRunDr = await withWarnings((o) =>
      custom.createNamespacedCustomObject(
        {
          group: 'networking.istio.io',
          version: 'v1beta1',
          namespace: 'ns1',
          plural: 'destinationrules',
          body: dr('ns1', 'warned', 'myservice.default.svc.cluster.local'),
        },
        o,
      ),
    );
    t.match(
      dryRunDr.warnings,
      [/^meshguard destinationrule-placement: DestinationRule ns1\/warned/],
      'admitted with the warning',
    );
    const pod = await withWarnings((o) =>
      core.createNamespacedPod({ namespace: 'shop', body: plainPod('unmodified') }, o),
    );
    t.equal(pod.value.metadata?.annotations, undefined, 'the Pod is stored unmodified');
    t.match(
      pod.warnings.join('\n'),
      /meshguard hold-application-until-proxy-starts: would set holdApplicationUntilProxyStarts: true/,
    );
    t.match(pod.warnings.join('\n'), /meshguard probe-port-exclusion: would exclude probe port 9000/);

    await core.replaceNamespacedConfigMap({
      name: NAME,
      namespace: RELEASE_NS,
      body: { metadata: { name: NAME }, data: { 'config.yaml': 'mode: loud\n' } },
    });
    const event = await eventually('the InvalidConfig event', async () => {
      const events = await core.listNamespacedEvent({
        namespace: RELEASE_NS,
        fieldSelector: `involvedObject.name=${NAME},reason=InvalidConfig`,
      });
      return events.items[0];
    });
    t.match(event.message, /mode: must be one of enforce, warn/, 'the Event names the field');
    t.equal(event.type, 'Warning');
    t.ok(
      await misplaced().then(
        () => true,
        () => false,
      ),
      'still warn mode: the last good configuration stays',
    );

    await core.deleteNamespacedConfigMap({ name: NAME, namespace: RELEASE_NS });
    await eventually(
      'the base configuration (enforce)',
      async () =>
        (await misplaced().then(
          () => false,
          () => true,
        )) || undefined,
      5_000,
    );
    t.pass('deleting the ConfigMap returned to the embedded defaults');
  },
);

t.test('fail-open: with meshguard stopped Pods are still created; it recovers when started again', async (t) => {
  served.proc.kill('SIGTERM');
  t.equal(await served.exited, 0, 'meshguard exits 0 on SIGTERM');
  const pod = await core.createNamespacedPod({ namespace: 'shop', body: plainPod('while-down') });
  t.equal(pod.metadata?.annotations, undefined, 'created, unmodified (failurePolicy Ignore)');
  const port = served.port;
  served = await startServe([...serveArgs, '--port', String(port)], { compiled: true, reuse: served });
  const again = await eventually('a mutated Pod after restart', async () => {
    const p = await core.createNamespacedPod({ namespace: 'shop', body: plainPod(`after-${Date.now()}`) });
    return p.metadata?.annotations?.['proxy.istio.io/config'] ? p : undefined;
  }).catch((err: Error) => {
    t.comment(served.logs.map((l) => JSON.stringify(l)).join('\n'));
    throw err;
  });
  t.match(again.metadata?.annotations?.['proxy.istio.io/config'], /holdApplicationUntilProxyStarts: true/);
});

t.test('meshguard audit reports what the cluster already holds', async (t) => {
  const run = spawnSync(
    process.execPath,
    [join(packageRoot, 'dist/src/cli.js'), 'audit', '--kubeconfig', cluster.kubeconfigPath, '--output', 'json'],
    { encoding: 'utf8' },
  );
  t.equal(run.status, 1, `exit 1: a stored object would be denied\n${run.stderr}`);
  const { reports } = JSON.parse(run.stdout) as {
    reports: { kind: string; namespace: string; name: string; denied: boolean; findings: { policy: string }[] }[];
  };
  const find = (kind: string, namespace: string, name: string) =>
    reports.find((r) => r.kind === kind && r.namespace === namespace && r.name === name);
  t.match(
    find('DestinationRule', 'ignored', 'myservice'),
    { denied: true, findings: [{ policy: 'destinationrule-placement' }] },
    'the rule stored where meshguard was not asked',
  );
  t.match(find('Service', 'shop', 'mysql-a'), { findings: [{ policy: 'externalname-tcp-collision' }] });
  t.match(
    find('Pod', 'shop', 'while-down'),
    { findings: [{ policy: 'hold-application-until-proxy-starts' }, { policy: 'probe-port-exclusion' }] },
    'the Pod created while meshguard was down',
  );
  t.notOk(
    reports.some((r) => r.kind === 'Pod' && r.name.startsWith('web-')),
    'controller-owned Pods are judged through their owner',
  );
});
