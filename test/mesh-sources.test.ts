// Istio's objects as meshguard reads them (src/mesh/sources.ts): the slim copies the watches and
// listings keep are exactly what discovery reads, and serve, audit, check and meshguard mesh read
// them from a cluster the same way — over an install's objects as an API server returns them.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import pino from 'pino';
import t from 'tap';
import { ClusterError, connect } from '../src/cluster/list.js';
import { buildProfile } from '../src/mesh/build.js';
import { listIstioObjects } from '../src/mesh/cluster.js';
import { discoverMesh } from '../src/mesh/discover.js';
import type { DiscoveredMesh } from '../src/mesh/profile.js';
import { istioSourceOf, istioSources, trimIstioObject } from '../src/mesh/sources.js';
import { packageRoot } from '../src/paths.js';
import { fakeApiServer } from './fake-apiserver.js';

const FIXTURE = join(packageRoot, 'test/fixtures/istio-cluster/objects.yaml');
const objects = yaml.loadAll(readFileSync(FIXTURE, 'utf8')) as { kind: string }[];
const trimmed = (all: readonly unknown[]) =>
  all.flatMap((o) => {
    const source = istioSourceOf(o);
    return source ? [trimIstioObject(source, o)] : [];
  });

t.test('discovery on the whole objects and on the slim copies finds the same mesh', async (t) => {
  const whole = discoverMesh(objects);
  // The fixture exercises every part of discovery.
  t.equal(whole.webhooks.length, 8);
  t.strictSame([...whole.revisions.keys()].sort(), ['canary', 'default']);
  t.strictSame(whole.meshguardConfigurations, ['0-meshguard']);
  t.equal(whole.oldestKubeletMinor, 33);
  t.equal(whole.revisions.get('canary')?.nativeSidecars, 'disabled');
  t.equal(whole.revisions.get('canary')?.dnsCapture, true);
  t.strictSame(discoverMesh(trimmed(objects)), whole);
  t.strictSame(
    trimmed(objects.filter((o) => o.kind === 'Node')),
    [
      { kind: 'Node', metadata: { name: 'kind-control-plane' }, status: { nodeInfo: { kubeletVersion: 'v1.34.1' } } },
      { kind: 'Node', metadata: { name: 'kind-worker' }, status: { nodeInfo: { kubeletVersion: 'v1.33.4' } } },
    ],
    'a heartbeat changes nothing that is kept',
  );
  t.equal(trimmed(objects).length, 14, 'the gateway and kube-root-ca.crt are none of them');
});

/**
 * The fields discovery reads of each kind, as [kind, ...path] (`*` for list elements): every
 * primitive it reads, and every object whose keys it enumerates (a selector's matchLabels).
 */
function readByDiscovery(all: readonly { kind: string }[]): Set<string> {
  const read = new Set<string>();
  const track = (v: unknown, kind: string, path: readonly string[]): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    return new Proxy(v, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        const own = typeof key === 'string' && Object.hasOwn(target, key);
        if (!own || (Array.isArray(target) && key === 'length')) return value;
        const at = [...path, Array.isArray(target) ? '*' : key];
        if (typeof value !== 'object' || value === null) read.add(JSON.stringify([kind, ...at]));
        return track(value, kind, at);
      },
      ownKeys(target) {
        read.add(JSON.stringify([kind, ...path]));
        return Reflect.ownKeys(target);
      },
    });
  };
  discoverMesh(all.map((o) => track(o, o.kind, [])));
  return read;
}

t.test('the slim copies keep exactly the fields discovery reads', async (t) => {
  const read = [...readByDiscovery(objects)].map((p) => JSON.parse(p) as string[]);
  const kept = istioSources.flatMap((s) => [[s.kind, 'kind'], ...s.fields.map((f) => [s.kind, ...f])]);
  const within = (inner: readonly string[], outer: readonly string[]) => outer.every((k, i) => inner[i] === k);
  const notKept = read.filter((r) => !kept.some((k) => within(r, k)));
  t.strictSame(notKept, [], 'every field discovery reads is kept');
  const notRead = kept.filter((k) => !read.some((r) => within(r, k)));
  t.strictSame(notRead, [], 'every field kept is read by discovery');
});

/** The fake API server serving the fixture, and a connection to it. */
async function cluster(teardown: (stop: () => void) => void) {
  const api = await fakeApiServer(objects);
  teardown(() => api.close());
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-sources-'));
  api.kubeconfig(join(dir, 'kubeconfig'));
  const connection = await connect(join(dir, 'kubeconfig'), {});
  if (!connection) throw new Error('no connection');
  return { api, dir, connection };
}

t.test('listed once, as audit, check --kubeconfig and meshguard mesh read them', async (t) => {
  const { api, dir, connection } = await cluster((stop) => t.teardown(stop));
  const listed = await listIstioObjects(connection, 'istio-system');
  t.strictSame(listed.problems, []);
  t.equal(listed.unread, undefined);
  // The client hands out its own classes (V1LabelSelector …): compared as JSON.
  t.strictSame(JSON.parse(JSON.stringify(listed.objects)), trimmed(objects), 'the slim copies');
  // Least privilege: Istio's ConfigMaps and istiod in its namespace only.
  t.ok(api.requests.includes('/api/v1/namespaces/istio-system/configmaps?limit=500'), api.requests.join('\n'));
  t.ok(api.requests.includes('/apis/apps/v1/namespaces/istio-system/deployments?limit=500'));
  const built = await buildProfile({}, { cluster: { connection, istioNamespace: 'istio-system' } });
  t.strictSame(built.mesh.discovered, discoverMesh(objects));
  t.equal(built.from, `the cluster (${join(dir, 'kubeconfig')})`);
});

t.test('watched, as serve reads them', async (t) => {
  const { api, connection } = await cluster((stop) => t.teardown(stop));
  const watch = pino({ level: 'silent' });
  const built = await buildProfile({}, { cluster: { connection, istioNamespace: 'istio-system', watch } });
  t.teardown(() => built.stop());
  const until = async (done: () => boolean) => {
    for (const deadline = Date.now() + 10_000; !done() && Date.now() < deadline;) await sleep(20);
  };
  // Each kind is handed over as it is listed: wait for the last.
  const expected = discoverMesh(objects);
  const text = (d: DiscoveredMesh) => JSON.stringify({ ...d, revisions: [...d.revisions] });
  await until(() => text(built.mesh.discovered) === text(expected));
  t.strictSame(built.mesh.discovered, expected);
  // Then watched from the list's version on.
  const watched = () => api.requests.some((r) => r.startsWith('/api/v1/namespaces/istio-system/configmaps?watch='));
  await until(watched);
  t.ok(watched(), api.requests.join('\n'));
});

t.test('a cluster that does not answer: nothing read, said as such', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-sources-'));
  writeFileSync(
    join(dir, 'kubeconfig'),
    'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n' +
      'users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n',
  );
  const connection = await connect(join(dir, 'kubeconfig'), {});
  if (!connection) throw new Error('no connection');
  const listed = await listIstioObjects(connection, 'istio-system');
  t.ok(listed.unread instanceof ClusterError);
  t.match(
    listed.unread?.message,
    /^cluster https:\/\/127\.0\.0\.1:1: listing MutatingWebhookConfiguration: .*ECONNREFUSED/,
  );
  t.equal(listed.problems.length, istioSources.length);
  t.match(listed.problems[1], /^ConfigMaps in istio-system could not be read \(.*ECONNREFUSED/);
  // meshguard mesh on it: exit 2 with one line, as check; no profile "discovered from the cluster".
  const mesh = await cli(['mesh', '--kubeconfig', join(dir, 'kubeconfig')]);
  t.equal(mesh.code, 2);
  t.match(
    mesh.err,
    /^meshguard: cluster https:\/\/127\.0\.0\.1:1: listing MutatingWebhookConfiguration: .*ECONNREFUSED/,
  );
  t.equal(mesh.err.trimEnd().split('\n').length, 1, mesh.err);
  t.equal(mesh.out, '');
});

/** The CLI as a child process, without blocking this one (it serves the fake API server). */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot, 'src/cli.ts'), ...args], {
      cwd: packageRoot,
      env: { ...process.env, KUBECONFIG: '/nonexistent' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** A kubeconfig that can be read once only: a named pipe written once. */
function readOnce(file: string, text: string): void {
  execFileSync('mkfifo', [file]);
  void writeFile(file, text);
}

t.test('meshguard mesh and audit against a cluster: its kubeconfig read once', async (t) => {
  const { api, dir } = await cluster((stop) => t.teardown(stop));
  const kubeconfig = readFileSync(join(dir, 'kubeconfig'), 'utf8');

  readOnce(join(dir, 'mesh-kubeconfig'), kubeconfig);
  const live = await cli(['mesh', '--kubeconfig', join(dir, 'mesh-kubeconfig')]);
  t.equal(live.code, 0, live.err);
  const files = await cli(['mesh', FIXTURE]);
  t.equal(files.code, 0, files.err);
  const [liveFrom, ...liveRest] = live.out.split('\n');
  const [filesFrom, ...filesRest] = files.out.split('\n');
  t.equal(liveFrom, `mesh profile, discovered from the cluster (${join(dir, 'mesh-kubeconfig')})`);
  t.equal(filesFrom, `mesh profile, discovered from Istio's objects in ${FIXTURE}`);
  t.strictSame(liveRest, filesRest, 'the same profile from the cluster as from its objects');
  t.match(live.out, /canary: Istio 1\.30, nativeSidecars disabled, rewriteProbes false/);

  // audit lists the cluster, then Istio's objects: one kubeconfig for both.
  readOnce(join(dir, 'audit-kubeconfig'), kubeconfig);
  const audit = await cli(['audit', '--kubeconfig', join(dir, 'audit-kubeconfig')]);
  t.not(audit.code, null, 'finished: the kubeconfig was not read a second time');
  t.not(audit.code, 2, audit.err);
  t.match(audit.out, /objects checked/);
  t.ok(api.requests.includes('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?limit=500'));
});
