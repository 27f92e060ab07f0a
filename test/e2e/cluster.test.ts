// The e2e harness itself: a real etcd + kube-apiserver + kube-controller-manager start, the
// controllers really create Pods, the Istio CRDs serve custom objects, and stop() leaves nothing.
import t from 'tap';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, VersionApi } from '@kubernetes/client-node';
import type { V1Deployment } from '@kubernetes/client-node';
import { ISTIO_NETWORKING_GROUP, startCluster } from './cluster.js';
import type { Cluster } from './cluster.js';
import { KUBE_VERSION } from './tools.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const cluster: Cluster = await startCluster();
t.teardown(() => cluster.stop());
t.comment(`control plane ready in ${cluster.startupMs} ms at ${cluster.server}; ${JSON.stringify(cluster.timings)}`);

const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
const custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
const namespace = 'harness';

t.test(`API server answers as ${KUBE_VERSION} (the pinned k8s.io/kubernetes) with the admin kubeconfig`, async (t) => {
  t.ok(existsSync(cluster.kubeconfigPath), 'kubeconfig written');
  const version = await cluster.kubeConfig.makeApiClient(VersionApi).getCode();
  t.equal(version.gitVersion, KUBE_VERSION);
  const ns = await core.createNamespace({ body: { metadata: { name: namespace } } });
  t.equal(ns.metadata?.name, namespace);
  for (const pid of Object.values(cluster.pids)) t.ok(alive(pid), `pid ${pid} running`);
});

t.test('kube-controller-manager turns a Deployment into a Pod', async (t) => {
  const labels = { app: 'harness-web' };
  const body: V1Deployment = {
    metadata: { name: 'web', labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'example.invalid/web:1' }] } },
    },
  };
  await apps.createNamespacedDeployment({ namespace, body });
  const deadline = Date.now() + 30_000;
  let names: string[] = [];
  while (Date.now() < deadline) {
    const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app=harness-web' });
    names = pods.items.map((p) => p.metadata?.name ?? '');
    if (names.length > 0) break;
    await sleep(200);
  }
  t.equal(names.length, 1, `one Pod created by the ReplicaSet controller: ${names.join(', ')}`);
  t.match(names[0] ?? '', /^web-[a-z0-9]+-[a-z0-9]{5}$/, 'named by Deployment -> ReplicaSet -> Pod');
  if (names.length === 0) t.comment(cluster.logTail('kube-controller-manager'));
});

t.test('Istio CRDs serve DestinationRules (v1beta1 and v1alpha3)', async (t) => {
  const body = {
    apiVersion: `${ISTIO_NETWORKING_GROUP}/v1beta1`,
    kind: 'DestinationRule',
    metadata: { name: 'web', namespace },
    spec: { host: 'web.harness.svc.cluster.local', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
  };
  await custom.createNamespacedCustomObject({
    group: ISTIO_NETWORKING_GROUP,
    version: 'v1beta1',
    namespace,
    plural: 'destinationrules',
    body,
  });
  const got: unknown = await custom.getNamespacedCustomObject({
    group: ISTIO_NETWORKING_GROUP,
    version: 'v1alpha3',
    namespace,
    plural: 'destinationrules',
    name: 'web',
  });
  t.match(got, {
    kind: 'DestinationRule',
    spec: { host: 'web.harness.svc.cluster.local', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
  });
  for (const plural of ['serviceentries', 'virtualservices']) {
    const list: unknown = await custom.listNamespacedCustomObject({
      group: ISTIO_NETWORKING_GROUP,
      version: 'v1beta1',
      namespace,
      plural,
    });
    t.match(list, { items: [] }, `${plural} served`);
  }
});

t.test('stop() kills every process and is idempotent', async (t) => {
  await cluster.stop();
  await cluster.stop();
  for (const [name, pid] of Object.entries(cluster.pids)) t.notOk(alive(pid), `${name} (pid ${pid}) is gone`);
  t.notOk(existsSync(cluster.kubeconfigPath), 'temp dir removed');
});
