// meshguard installed as the README says (the existing-Secret path): `meshguard certs`, a TLS
// Secret, `helm install charts/meshguard`. The objects Helm creates are the ones the tests use:
// its webhook configurations (which name the release's Service), RBAC, ConfigMap and Service.
// Only the pods cannot run here (no kubelet), so meshguard runs as a local process under the
// release's ServiceAccount, and an EndpointSlice (what the endpoint controller would publish for a
// running pod) sends the Service's traffic to it. The API server resolves webhook Services through
// EndpointSlices (--enable-aggregator-routing) and checks the certificate for the Service's name.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, DiscoveryV1Api, KubeConfig } from '@kubernetes/client-node';
import { packageRoot } from '../../src/paths.js';
import { startServe, type Served } from '../serve-process.js';
import type { Cluster } from './cluster.js';
import { helm, kubectl } from './tools.js';

const execFileAsync = promisify(execFile);

export const RELEASE = 'meshguard';
export const chartDir = join(packageRoot, 'charts/meshguard');

/**
 * A non-loopback IPv4 address of this machine: EndpointSlices refuse loopback addresses, and the
 * webhook is reached at an endpoint of the Service.
 */
export function hostAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('e2e: no non-loopback IPv4 address on this machine for the webhook endpoint');
}

export interface Release {
  namespace: string;
  served: Served;
  /** The serving certificate's CA (PEM), as given to the chart in tls.caBundle. */
  caPem: string;
  /** The name the API server checks the certificate for. */
  serverName: string;
  host: string;
  /** The helm install output. */
  installed: string;
  serveArgs: string[];
  /** Start meshguard again on the same port, after it was stopped. */
  restart(): Promise<Served>;
}

async function check(what: string, r: Promise<{ status: number; stdout: string; stderr: string }>): Promise<string> {
  const out = await r;
  if (out.status !== 0) throw new Error(`${what} failed (${out.status}): ${out.stderr}${out.stdout}`);
  return out.stdout;
}

/** `serveFlags`: more `meshguard serve` flags (e.g. a --metrics-port to scrape); later ones win. */
export async function installRelease(
  cluster: Cluster,
  namespace: string,
  helmSet: string[] = [],
  serveFlags: string[] = [],
): Promise<Release> {
  const kc = cluster.kubeConfig;
  const certDir = join(cluster.logDir, '..', 'meshguard-certs');
  const { stdout: caBundle } = await execFileAsync(
    process.execPath,
    [join(packageRoot, 'dist/src/cli.js'), 'certs', '--service', RELEASE, '--namespace', namespace, '--out', certDir],
    { encoding: 'utf8' },
  );
  const k = (args: string[]) => check(`kubectl ${args.join(' ')}`, kubectl(cluster.kubeconfigPath, args));
  await k(['create', 'namespace', namespace]);
  // The chart reads Istio's objects in istioNamespace (a Role there): Istio is installed first.
  await check(
    'kubectl apply namespace istio-system',
    kubectl(
      cluster.kubeconfigPath,
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } }),
    ),
  );
  await k([
    '-n',
    namespace,
    'create',
    'secret',
    'tls',
    'meshguard-tls',
    '--cert',
    join(certDir, 'tls.crt'),
    '--key',
    join(certDir, 'tls.key'),
  ]);
  const home = join(cluster.logDir, '..');
  const installed = await check(
    'helm install',
    helm(
      home,
      [
        'install',
        RELEASE,
        chartDir,
        '-n',
        namespace,
        '--set',
        'tls.existingSecret=meshguard-tls',
        '--set',
        `tls.caBundle=${caBundle.trim()}`,
        ...helmSet,
      ],
      cluster.kubeconfigPath,
    ),
  );

  // meshguard's own identity: a token of the release's ServiceAccount, so it runs with exactly
  // the chart's RBAC.
  const core = kc.makeApiClient(CoreV1Api);
  const tokenRequest = await core.createNamespacedServiceAccountToken({
    name: RELEASE,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const saConfig = new KubeConfig();
  saConfig.loadFromOptions({
    clusters: [{ name: 'e2e', server: cluster.server, caData: Buffer.from(cluster.caPem).toString('base64') }],
    users: [{ name: RELEASE, token: tokenRequest.status?.token ?? '' }],
    contexts: [{ name: 'e2e', cluster: 'e2e', user: RELEASE }],
    currentContext: 'e2e',
  });
  const saKubeconfig = join(cluster.logDir, 'meshguard.kubeconfig');
  writeFileSync(saKubeconfig, saConfig.exportConfig(), { mode: 0o600 });

  const host = hostAddress();
  const caPem = readFileSync(join(certDir, 'ca.crt'), 'utf8');
  const reuse = { dir: certDir, ca: { cert: caPem, key: readFileSync(join(certDir, 'ca.key'), 'utf8') } };
  const serveArgs = [
    '--host',
    host,
    '--cluster',
    'auto',
    '--kubeconfig',
    saKubeconfig,
    '--config-map',
    `${namespace}/${RELEASE}`,
    '--namespace',
    namespace,
    '--shutdown-delay',
    '0',
    ...serveFlags,
  ];
  const served = await startServe(serveArgs, { compiled: true, reuse });

  await kc.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
    namespace,
    body: {
      metadata: {
        name: `${RELEASE}-local`,
        labels: {
          'kubernetes.io/service-name': RELEASE,
          // Not the endpointslice controller's: it leaves this slice alone.
          'endpointslice.kubernetes.io/managed-by': 'meshguard-e2e',
        },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [host], conditions: { ready: true } }],
      ports: [{ name: 'https-webhook', port: served.port, protocol: 'TCP' }],
    },
  });

  const release: Release = {
    namespace,
    served,
    caPem,
    serverName: `${RELEASE}.${namespace}.svc`,
    host,
    installed,
    serveArgs,
    restart: async () => {
      release.served = await startServe([...serveArgs, '--port', String(release.served.port)], {
        compiled: true,
        reuse,
      });
      return release.served;
    },
  };
  return release;
}
