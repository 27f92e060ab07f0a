// Istio's control plane in the external-istiod topology: its webhook configurations and
// ConfigMaps installed by real Helm from Istio's own charts (manifests/charts of the pinned
// istio.io/istio), and istiod (pilot-discovery, built from the same module) running as a local
// process against the test API server, serving its injection webhook over TLS on loopback.
// istiod reads the mesh config and the injector's template and values from the ConfigMaps Helm
// installed (ConfigMap `istio-sidecar-injector[-<rev>]`, `istio[-<rev>]`), as in a cluster.
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateCa, generateServing, type PemPair } from '../../src/tls/generate.js';
import { e2eBinDir, freePorts, type Cluster, type Extra } from './cluster.js';
import { helm, istioCharts } from './tools.js';

export const ISTIO_NS = 'istio-system';

export interface Istiod {
  revision: string;
  injectionUrl: string;
  proc: Extra;
}

async function helmOk(cluster: Cluster, args: string[]): Promise<string> {
  const r = await helm(join(cluster.logDir, '..'), args, cluster.kubeconfigPath);
  if (r.status !== 0) throw new Error(`helm ${args.slice(0, 3).join(' ')} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

let ca: PemPair | undefined;

/** Istio's CRDs and cluster-wide objects: Istio's base chart, default values. */
export async function installIstioBase(cluster: Cluster): Promise<void> {
  await helmOk(cluster, ['install', 'istio-base', join(istioCharts(), 'base'), '-n', ISTIO_NS, '--create-namespace']);
}

/**
 * `helm install` of Istio's istio-discovery chart for `revision` ('' for the default install),
 * default values but for the external istiod's injection URL and CA, `env` (istiod's environment:
 * the chart's `env` values, so the Deployment says what istiod runs with, as in a cluster) and
 * `helmSet` (more --set flags); then istiod for it.
 */
export async function installIstiod(
  cluster: Cluster,
  revision: string,
  env: Record<string, string> = {},
  helmSet: string[] = [],
): Promise<Istiod> {
  ca ??= await generateCa('meshguard e2e istiod CA', 1);
  const [https, http, grpc, secureGrpc, monitoring, ctrlz] = (await freePorts(6)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const name = revision === '' ? 'istiod' : `istiod-${revision}`;
  const dir = join(cluster.logDir, '..', name);
  await mkdir(dir, { recursive: true });
  const serving = await generateServing(ca, [`${name}.${ISTIO_NS}.svc`, 'localhost', '127.0.0.1'], 1);
  await Promise.all([
    writeFile(join(dir, 'tls.crt'), serving.cert),
    writeFile(join(dir, 'tls.key'), serving.key, { mode: 0o600 }),
    writeFile(join(dir, 'ca.crt'), ca.cert),
  ]);
  const injectionUrl = `https://127.0.0.1:${https}/inject`;
  await helmOk(cluster, [
    'install',
    name,
    join(istioCharts(), 'istio-control/istio-discovery'),
    '-n',
    ISTIO_NS,
    ...(revision === '' ? [] : ['--set', `revision=${revision}`]),
    '--set',
    `istiodRemote.injectionURL=${injectionUrl}`,
    '--set',
    `istiodRemote.injectionCABundle=${Buffer.from(ca.cert).toString('base64')}`,
    ...Object.entries(env).flatMap(([k, v]) => ['--set-string', `env.${k}=${v}`]),
    ...helmSet,
  ]);

  const args = [
    'discovery',
    `--kubeconfig=${cluster.kubeconfigPath}`,
    `--httpsAddr=127.0.0.1:${https}`,
    `--httpAddr=127.0.0.1:${http}`,
    `--grpcAddr=127.0.0.1:${grpc}`,
    `--secureGRPCAddr=127.0.0.1:${secureGrpc}`,
    `--monitoringAddr=127.0.0.1:${monitoring}`,
    `--ctrlz_port=${ctrlz}`,
    `--tlsCertFile=${join(dir, 'tls.crt')}`,
    `--tlsKeyFile=${join(dir, 'tls.key')}`,
    `--caCertFile=${join(dir, 'ca.crt')}`,
    '--log_output_level=default:info',
  ];
  const baseEnv = {
    POD_NAMESPACE: ISTIO_NS,
    POD_NAME: `${name}-e2e`,
    REVISION: revision === '' ? 'default' : revision,
    ISTIOD_CUSTOM_HOST: `${name}.${ISTIO_NS}.svc,localhost`,
    // The caBundle Helm installed stays: no patching of the webhook configurations by istiod, and
    // no validation webhook (its Service has no endpoint here).
    INJECTION_WEBHOOK_CONFIG_NAME: '',
    VALIDATION_WEBHOOK_CONFIG_NAME: '',
  };
  // cwd: istiod looks for ./var/lib/istio/inject and ./etc/istio/config/mesh; absent, it reads
  // the ConfigMaps.
  const proc = await cluster.startProcess(name, join(e2eBinDir(), 'pilot-discovery'), args, {
    env: { ...baseEnv, ...env },
    cwd: dir,
  });
  await waitReady(cluster, name, proc, http);
  return { revision: revision === '' ? 'default' : revision, injectionUrl, proc };
}

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function waitReady(cluster: Cluster, name: string, proc: Extra, port: number): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const exit = proc.exit();
    if (exit !== undefined) throw new Error(`${name} ${exit}:\n${cluster.logTail(name, 60)}`);
    if ((await get(`http://127.0.0.1:${port}/ready`).catch(() => 0)) === 200) return;
    if (Date.now() > deadline) throw new Error(`${name} not ready after 90 s:\n${cluster.logTail(name, 60)}`);
    await sleep(250);
  }
}
