// meshguard end to end: a real kube-apiserver + etcd + kube-controller-manager, meshguard as a
// real HTTPS process with the chart's RBAC, registered with the chart's webhook settings. Every
// scenario goes through the API server with @kubernetes/client-node.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
  Observable,
  type ObservableMiddleware,
  type V1Pod,
} from '@kubernetes/client-node';
import t from 'tap';
import { defaultConfigPath, packageRoot } from '../../src/paths.js';
import { installRelease } from './release.js';
import { kubectl } from './tools.js';
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

function getJson(path: string): Promise<{ status: number; body: unknown }> {
  const { host, caPem: ca, serverName: servername } = release;
  return new Promise((resolve, reject) => {
    httpsGet({ host, port: release.served.port, path, ca, servername, agent: false }, (res) => {
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
  ['shop', { 'istio-injection': 'enabled' }],
  ['payments', { 'istio-injection': 'enabled' }],
  ['ns1', {}],
  ['ignored', { 'meshguard.io/ignore': 'true' }],
] as const) {
  await core.createNamespace({ body: { metadata: { name, labels } } });
}
// No istiod runs in this cluster; its Deployment says which Istio is guarded, as a real one would:
// the FAQs' 1.11 (classic sidecars, tcpSocket probes not rewritten), where every guardrail's trap
// exists. meshguard discovers it (configuration toggles below leave it in force); istio.test.ts
// runs meshguard against a real istiod instead.
await core.createNamespace({ body: { metadata: { name: 'istio-system' } } });
await apps.createNamespacedDeployment({
  namespace: 'istio-system',
  body: {
    metadata: { name: 'istiod', labels: { app: 'istiod', 'istio.io/rev': 'default' } },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: 'istiod' } },
      template: {
        metadata: { labels: { app: 'istiod', 'sidecar.istio.io/inject': 'false' } },
        spec: { containers: [{ name: 'discovery', image: 'docker.io/istio/pilot:1.11.8' }] },
      },
    },
  },
});
const release = await installRelease(cluster, RELEASE_NS);
t.teardown(() => release.served.proc.kill('SIGKILL'));
const defaults = readFileSync(defaultConfigPath, 'utf8');
const logged = (msg: RegExp) => release.served.logs.some((l) => typeof l.msg === 'string' && msg.test(l.msg));

// --- scenarios --------------------------------------------------------------------------------

t.test('meshguard syncs its cluster view with least privilege and becomes ready', async (t) => {
  const ready = await eventually('readyz 200', async () => {
    const res = await getJson('/readyz');
    return res.status === 200 ? res.body : undefined;
  });
  t.match(ready, { status: 'ready', clusterLookups: 'on' });
  await eventually('the cluster lookups log line', async () => (logged(/^cluster lookups on$/) ? true : undefined));
  await eventually('the mesh profile discovered from istiod (1.11)', async () =>
    release.served.logs.some(
      (l) =>
        l.msg === 'mesh profile in force' && (l.mesh as { istioVersion?: string } | undefined)?.istioVersion === '1.11',
    )
      ? true
      : undefined,
  );
  await eventually('the missing-CRD log line', async () =>
    logged(/^serviceentries: not installed/) ? true : undefined,
  );
  t.notOk(logged(/list\/watch failed/), 'no list/watch failures under the chart RBAC');
});

t.test("Helm's webhook configurations: ordered before Istio, failing open, sparing excluded namespaces", async (t) => {
  const m = await admission.readMutatingWebhookConfiguration({ name: '0-meshguard' });
  const v = await admission.readValidatingWebhookConfiguration({ name: NAME });
  t.equal(m.metadata?.labels?.['app.kubernetes.io/managed-by'], 'Helm');
  t.equal(m.webhooks?.[0]?.failurePolicy, 'Ignore');
  t.equal(m.webhooks?.[0]?.reinvocationPolicy, 'Never');
  t.equal(v.webhooks?.[0]?.failurePolicy, 'Ignore');
  t.match(m.webhooks?.[0]?.clientConfig, {
    service: { name: NAME, namespace: RELEASE_NS, path: '/mutate', port: 443 },
  });
  t.ok((m.metadata?.name ?? '') < 'istio-sidecar-injector', 'mutating configuration ordered before Istio');
  for (const name of ['kube-system', 'kube-public', RELEASE_NS]) {
    const ns = await core.readNamespace({ name });
    t.equal(ns.metadata?.labels?.['kubernetes.io/metadata.name'], name, `${name} carries its name label`);
  }
  // Sent to meshguard, a misplaced DestinationRule is denied; in kube-system it never reaches it.
  await installIstioCrds(kc);
  const message = await denial(() => createDr(dr('ns1', 'sel', 'myservice.default.svc.cluster.local'), 'All'));
  t.match(message, /destinationrule-placement/, 'ns1: sent to meshguard');
  t.ok(
    await createDr(dr('kube-system', 'sel', 'myservice.default.svc.cluster.local'), 'All'),
    'kube-system: excluded by kubernetes.io/metadata.name at the API server',
  );
  t.ok(
    await createDr(dr(RELEASE_NS, 'sel', 'myservice.default.svc.cluster.local'), 'All'),
    'the release namespace: excluded too',
  );
});

t.test('ServiceEntries are picked up once their CRD appears', async (t) => {
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
      /^meshguard probe-port-exclusion: probe port 8080 also serves Service web: excluding it would bypass mTLS/m,
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

t.test('kubectl apply: a misplaced DestinationRule is refused with the denial text', async (t) => {
  const manifest = JSON.stringify(dr('ns1', 'by-kubectl', 'myservice.default.svc.cluster.local'));
  const out = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], manifest);
  t.equal(out.status, 1, 'kubectl exits 1');
  t.match(
    out.stderr,
    /admission webhook "validate\.meshguard\.io" denied the request: meshguard destinationrule-placement: DestinationRule ns1\/by-kubectl for myservice\.default\.svc\.cluster\.local is only seen by clients in ns1; move it to default or istio-system/,
  );
  const got = await kubectl(cluster.kubeconfigPath, ['-n', 'ns1', 'get', 'destinationrule', 'by-kubectl']);
  t.match(got.stderr, /NotFound/, 'not stored');
});

t.test('kubectl apply --dry-run=server: through meshguard, nothing stored', async (t) => {
  const pod = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', ...plainPod('kubectl-dry') });
  const out = await kubectl(cluster.kubeconfigPath, ['apply', '--dry-run=server', '-o', 'json', '-f', '-'], pod);
  t.equal(out.status, 0, out.stderr);
  const answered = JSON.parse(out.stdout) as V1Pod;
  t.match(
    answered.metadata?.annotations?.['proxy.istio.io/config'],
    /holdApplicationUntilProxyStarts: true/,
    "the answer carries meshguard's mutation",
  );
  t.match(out.stdout, /"name": "kubectl-dry"/);
  const got = await kubectl(cluster.kubeconfigPath, ['-n', 'shop', 'get', 'pod', 'kubectl-dry']);
  t.match(got.stderr, /NotFound/, 'nothing stored');
  const denied = await kubectl(
    cluster.kubeconfigPath,
    ['apply', '--dry-run=server', '-f', '-'],
    JSON.stringify(dr('ns1', 'dry-kubectl', 'myservice.default.svc.cluster.local')),
  );
  t.equal(denied.status, 1);
  t.match(denied.stderr, /denied the request: meshguard destinationrule-placement: DestinationRule ns1\/dry-kubectl/);
});

t.test('a second ServiceEntry without addresses on the same TCP port is admitted with a warning', async (t) => {
  // On current Istio ExternalName Services are aliases without listeners (1.21+): the live form of
  // the trap is a DNS ServiceEntry without addresses, which owns 0.0.0.0:<port> in sidecars.
  const entry = (namespace: string, name: string) =>
    withWarnings((o) =>
      custom.createNamespacedCustomObject(
        {
          group: 'networking.istio.io',
          version: 'v1beta1',
          namespace,
          plural: 'serviceentries',
          body: {
            apiVersion: 'networking.istio.io/v1beta1',
            kind: 'ServiceEntry',
            metadata: { name, namespace },
            spec: {
              hosts: [`${name}.rds.example.com`],
              location: 'MESH_EXTERNAL',
              resolution: 'DNS',
              ports: [{ number: 3306, name: 'tcp-mysql', protocol: 'TCP' }],
            },
          },
        },
        o,
      ),
    );
  const first = await entry('shop', 'mysql-a');
  t.strictSame(first.warnings, []);
  await sleep(500); // the watch brings mysql-a into the view
  const second = await entry('payments', 'mysql-b');
  t.equal((second.value as { metadata?: { name?: string } }).metadata?.name, 'mysql-b', 'admitted');
  t.match(second.warnings, [
    /^meshguard externalname-tcp-collision: TCP port 3306 also carries ServiceEntry shop\/mysql-a to another host/,
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

    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'warned', namespace: 'shop' },
      spec: {
        selector: { matchLabels: { app: 'warned' } },
        template: { metadata: { labels: { app: 'warned' } }, spec: plainPod('warned').spec },
      },
    };
    const applied = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], JSON.stringify(deployment));
    t.equal(applied.status, 0, applied.stderr);
    t.match(applied.stdout, /deployment\.apps\/warned created/);
    t.match(
      applied.stderr,
      /^Warning: meshguard hold-application-until-proxy-starts: would set holdApplicationUntilProxyStarts: true/m,
      'kubectl shows the warning lines',
    );
    t.match(applied.stderr, /^Warning: meshguard probe-port-exclusion: would exclude probe port 9000/m);

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
  release.served.proc.kill('SIGTERM');
  t.equal(await release.served.exited, 0, 'meshguard exits 0 on SIGTERM');
  const pod = await core.createNamespacedPod({ namespace: 'shop', body: plainPod('while-down') });
  t.equal(pod.metadata?.annotations, undefined, 'created, unmodified (failurePolicy Ignore)');
  const served = await release.restart();
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
  t.match(find('ServiceEntry', 'shop', 'mysql-a'), { findings: [{ policy: 'externalname-tcp-collision' }] });
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
