// The reflector against a fake API server (plain HTTP, just enough of the API): it re-lists after
// an expired watch (410) so deletions missed meanwhile disappear, resumes a watch the server
// closed, and backs off and recovers after errors.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import t, { type Test } from 'tap';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { serviceRecord } from '../src/cluster/records.js';
import { Reflector } from '../src/cluster/reflector.js';

const svc = (name: string, rv: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop', resourceVersion: rv },
  spec: { type: 'ExternalName', externalName: `${name}.example.com`, ports: [{ port: 3306 }] },
});

/** The client's discovery of the core group: it serves Services. */
const DISCOVERY = JSON.stringify({
  kind: 'APIResourceList',
  groupVersion: 'v1',
  resources: [{ name: 'services', namespaced: true, kind: 'Service', verbs: ['list', 'watch'] }],
});

/** Listens on loopback until the test ends; a kubeconfig for it. */
async function serving(t: Test, server: Server): Promise<KubeConfig> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

t.test('re-list on 410, resume a closed watch, back off after errors', async (t) => {
  const requests: string[] = [];
  let lists = 0;
  let watches = 0;
  const server = createServer((req, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(
      `${url.pathname}?${url.searchParams.get('watch') ? 'watch' : 'list'}&rv=${url.searchParams.get('resourceVersion') ?? ''}`,
    );
    res.setHeader('content-type', 'application/json');
    if (url.pathname === '/api/v1') return void res.end(DISCOVERY);
    if (!url.searchParams.get('watch')) {
      lists++;
      if (lists === 2) {
        // The second list fails: the reflector backs off and tries again.
        res.statusCode = 500;
        res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcd hiccup' }));
        return;
      }
      const items = lists === 1 ? [svc('a', '1')] : [svc('b', '7')]; // a was deleted while we were away
      res.end(
        JSON.stringify({
          kind: 'ServiceList',
          apiVersion: 'v1',
          metadata: { resourceVersion: lists === 1 ? '1' : '7' },
          items,
        }),
      );
      return;
    }
    watches++;
    if (watches === 1) {
      // A closed watch after one event: resumed from the last version seen.
      res.end(JSON.stringify({ type: 'ADDED', object: svc('b', '2') }) + '\n');
    } else if (watches === 2) {
      // Expired: re-list.
      res.end(
        JSON.stringify({
          type: 'ERROR',
          object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' },
        }) + '\n',
      );
    } else {
      // Stay open (the reflector is stopped by the test).
      res.write(JSON.stringify({ type: 'MODIFIED', object: svc('b', '8') }) + '\n');
    }
  });
  const kc = await serving(t, server);
  const view = new MemoryClusterView();
  const names = () => [...view.externalNamesOnPort(3306)].map((s) => s.name).sort();
  const reflector = new Reflector(
    kc,
    { name: 'services', kind: 'Service', apiVersions: ['v1'], path: () => '/api/v1/services' },
    {
      keep: serviceRecord,
      reset: (records) => {
        view.clearServices();
        for (const r of records) view.setService(r);
      },
      upsert: (o) => view.setService(serviceRecord(o)!),
      remove: () => undefined,
    },
    pino({ level: 'silent' }),
    { maxBackoffMs: 200 },
  ).start();
  t.teardown(() => reflector.stop());

  const deadline = Date.now() + 10_000;
  while (watches < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
  t.ok(reflector.synced, 'synced');
  t.strictSame(names(), ['b'], 'after the re-list only what exists now is in the view');
  const sequence = requests.filter((r) => !r.startsWith('/api/v1?'));
  t.strictSame(sequence.slice(0, 6), [
    '/api/v1/services?list&rv=',
    '/api/v1/services?watch&rv=1',
    '/api/v1/services?watch&rv=2', // resumed where the closed watch left off
    '/api/v1/services?list&rv=', // 410: list again — which fails once
    '/api/v1/services?list&rv=', // after the backoff
    '/api/v1/services?watch&rv=7',
  ]);
});

t.test('a list is kept page by page: each page becomes records before the next is asked for', async (t) => {
  const events: string[] = [];
  const pages = [['a', 'b'], ['c', 'd'], ['e']];
  const server = createServer((req, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (url.pathname === '/api/v1') return void res.end(DISCOVERY);
    if (url.searchParams.get('watch')) return; // stays open until the reflector stops
    const page = Number(url.searchParams.get('continue') || 0);
    events.push(`page ${page}`);
    res.end(
      JSON.stringify({
        kind: 'ServiceList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '5', ...(page + 1 < pages.length && { continue: String(page + 1) }) },
        items: (pages[page] ?? []).map((n) => ({
          metadata: { name: n, namespace: 'shop' },
          spec: { ports: [{ port: 80 }] },
        })),
      }),
    );
  });
  const kc = await serving(t, server);
  let reset: string[] | undefined;
  const reflector = new Reflector(
    kc,
    { name: 'services', kind: 'Service', apiVersions: ['v1'], path: () => '/api/v1/services' },
    {
      keep: (o) => {
        const name = (o as { metadata: { name: string } }).metadata.name;
        events.push(`keep ${name}`);
        return name === 'c' ? undefined : name.toUpperCase();
      },
      reset: (kept) => (reset = [...kept]),
      upsert: () => undefined,
      remove: () => undefined,
    },
    pino({ level: 'silent' }),
  ).start();
  t.teardown(() => reflector.stop());
  const deadline = Date.now() + 10_000;
  while (!reset && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.strictSame(events, ['page 0', 'keep a', 'keep b', 'page 1', 'keep c', 'keep d', 'page 2', 'keep e']);
  t.strictSame(reset, ['A', 'B', 'D', 'E'], 'the sink is reset with what it kept, nothing for what it did not');
});
