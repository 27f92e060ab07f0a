// A fake API server for tests (plain HTTP, just enough of the API): discovery, lists (in a namespace
// or everywhere) and watches that stay open with nothing to say, over a fixed set of objects.
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The built-in kinds it serves, by group/version, and whether they are namespaced. */
const served: Record<string, Record<string, boolean>> = {
  v1: { Namespace: false, Node: false, Service: true, Pod: true, ConfigMap: true },
  'apps/v1': { Deployment: true, StatefulSet: true, DaemonSet: true, ReplicaSet: true },
  'batch/v1': { Job: true, CronJob: true },
  'admissionregistration.k8s.io/v1': { MutatingWebhookConfiguration: false },
};
const plural = (kind: string) => `${kind.toLowerCase()}s`;

interface Obj {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { namespace?: unknown };
}

export interface FakeApiServer {
  url: string;
  /** Every request's path and query, in order. */
  requests: string[];
  /** Writes a kubeconfig for it. */
  kubeconfig(file: string): void;
  close(): void;
}

export async function fakeApiServer(objects: readonly Obj[]): Promise<FakeApiServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${url.pathname}${url.search}`);
    res.setHeader('content-type', 'application/json');
    const m = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))(\/.*)?$/.exec(url.pathname);
    const groupVersion = m?.[1] ?? m?.[2] ?? '';
    const kinds = served[groupVersion];
    // [] discovery, [resource] everywhere, [namespaces, ns, resource] in one namespace.
    const rest = (m?.[3] ?? '').split('/').filter(Boolean);
    const [namespace, resource] =
      rest.length === 3 && rest[0] === 'namespaces' ? [rest[1], rest[2]] : [undefined, rest[0]];
    if (!kinds || (rest.length !== 0 && rest.length !== 1 && namespace === undefined)) {
      res.statusCode = 404;
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
      return;
    }
    if (resource === undefined) {
      const resources = Object.entries(kinds).map(([kind, namespaced]) => ({
        name: plural(kind),
        kind,
        namespaced,
        verbs: ['list', 'watch'],
      }));
      res.end(JSON.stringify({ kind: 'APIResourceList', groupVersion, resources }));
      return;
    }
    if (url.searchParams.get('watch')) {
      // Nothing changes: the watch stays open until the client goes.
      res.write('');
      return;
    }
    const kind = Object.keys(kinds).find((k) => plural(k) === resource);
    // A real API server leaves kind and apiVersion out of a list's items (the list carries them).
    const items = objects
      .filter(
        (o) =>
          o.kind === kind &&
          o.apiVersion === groupVersion &&
          (namespace === undefined || o.metadata?.namespace === namespace),
      )
      .map(({ kind: _kind, apiVersion: _apiVersion, ...item }) => item);
    res.end(
      JSON.stringify({ kind: `${kind}List`, apiVersion: groupVersion, metadata: { resourceVersion: '1' }, items }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    kubeconfig(file) {
      writeFileSync(
        file,
        `apiVersion: v1\nkind: Config\nclusters: [{name: fake, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]\n` +
          'users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: fake, user: u}}]\ncurrent-context: c\n',
      );
    },
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
