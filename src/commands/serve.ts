import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server as HttpsServer } from 'node:https';
import Fastify from 'fastify';
import type { ClusterView } from '../cluster/view.js';
import { clusterOff, MemoryClusterView } from '../cluster/memory.js';
import { kubeConfigFor } from '../cluster/connect.js';
import { loadConfig } from '../config/load.js';
import { readManifests } from '../manifests.js';
import { ConfigStore } from '../config/store.js';
import { buildProfile } from '../mesh/build.js';
import { summarize } from '../mesh/describe.js';
import type { MeshProfile } from '../mesh/profile.js';
import { explainAll } from '../engine/explain.js';
import { Registry } from '../engine/registry.js';
import { createLogger } from '../log.js';
import { packageRoot } from '../paths.js';
import { policies } from '../policies/index.js';
import { buildApp, DEFAULT_BODY_LIMIT, noSchemaCompilers } from '../server/app.js';
import { createMetrics } from '../server/metrics.js';
import { checkPair, devCertificate, loadPair } from '../tls/serving.js';
import { watchFiles } from '../watch-files.js';
import {
  helpText,
  int,
  istioNamespaceFlag,
  istioNamespaceOf,
  oneOf,
  parseFlags,
  str,
  UsageError,
  type Flag,
} from './flags.js';

const flags: Flag[] = [
  {
    name: 'config',
    type: 'string',
    arg: 'FILE',
    help: 'configuration file, reloaded when it changes',
    default: undefined,
  },
  { name: 'port', type: 'string', arg: 'N', help: 'HTTPS port of the webhook', default: '8443' },
  { name: 'host', type: 'string', arg: 'ADDR', help: 'address to listen on', default: '0.0.0.0' },
  {
    name: 'tls-cert',
    type: 'string',
    arg: 'FILE',
    help: 'serving certificate (PEM), reloaded when it changes; without it a dev certificate is made',
  },
  { name: 'tls-key', type: 'string', arg: 'FILE', help: 'its private key (PEM)' },
  { name: 'metrics-port', type: 'string', arg: 'N', help: 'plain-HTTP port of /metrics (0: off)', default: '9090' },
  {
    name: 'cluster',
    type: 'string',
    arg: 'auto|off',
    help: 'cluster lookups: auto uses in-cluster or kubeconfig credentials when present',
    default: 'auto',
  },
  {
    name: 'kubeconfig',
    type: 'string',
    arg: 'FILE',
    help: 'kubeconfig for cluster lookups (else KUBECONFIG, ~/.kube/config)',
  },
  {
    name: 'cluster-state',
    type: 'string',
    arg: 'PATH',
    help: "a recorded cluster instead of a live one: the Namespaces, Services and Istio's objects in these manifests (a file or directory; e.g. kubectl get -A -o yaml)",
  },
  istioNamespaceFlag,
  {
    name: 'config-map',
    type: 'string',
    arg: 'NS/NAME',
    help: 'ConfigMap (key config.yaml) that replaces the configuration while it exists',
  },
  {
    name: 'namespace',
    type: 'string',
    arg: 'NS',
    help: "the webhook's own namespace, never evaluated (in-cluster: the pod's namespace)",
  },
  {
    name: 'body-limit',
    type: 'string',
    arg: 'BYTES',
    help: 'largest admission review accepted',
    default: String(DEFAULT_BODY_LIMIT),
  },
  {
    name: 'shutdown-delay',
    type: 'string',
    arg: 'SECONDS',
    help: 'after SIGTERM, keep answering (readyz failing) this long before closing the listener',
    default: '1',
  },
  {
    name: 'log-level',
    type: 'string',
    arg: 'LEVEL',
    help: 'fatal, error, warn, info, debug or trace',
    default: 'info',
  },
];

export const serveHelp = helpText(
  'meshguard serve [flags]',
  'Serves the admission webhook: POST /mutate and /validate, GET /healthz and /readyz over HTTPS; /metrics on a plain-HTTP port.',
  flags,
);

/** A port that cannot be opened: one line naming it (the CLI exits 2). */
export class ListenError extends Error {}

async function listen(
  server: { listen(o: { port: number; host: string }): Promise<string> },
  port: number,
  host: string,
  what: string,
) {
  try {
    await server.listen({ port, host });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'address already in use'
        : code === 'EACCES'
          ? 'permission denied'
          : (err as Error).message;
    throw new ListenError(`cannot listen on ${host}:${port} (${what}): ${why}`);
  }
}

/** How long in-flight requests get after SIGTERM; the chart's terminationGracePeriodSeconds is larger. */
const SHUTDOWN_GRACE_MS = 20_000;
const SA_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export async function serve(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(argv, flags, env);
  if (help) {
    process.stdout.write(serveHelp);
    return 0;
  }
  const port = int(values, 'port', 0, 65535);
  const metricsPort = int(values, 'metrics-port', 0, 65535);
  const bodyLimit = int(values, 'body-limit', 1024, 1024 ** 3);
  const shutdownDelay = int(values, 'shutdown-delay', 0, 300);
  const clusterMode = oneOf(values, 'cluster', ['auto', 'off'] as const);
  const level = oneOf(values, 'log-level', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const);
  const certFile = str(values, 'tls-cert');
  const keyFile = str(values, 'tls-key');
  if (Boolean(certFile) !== Boolean(keyFile)) throw new UsageError('--tls-cert and --tls-key go together');
  const configFile = str(values, 'config');
  const selfNamespace =
    str(values, 'namespace') ?? (existsSync(SA_NAMESPACE) ? readFileSync(SA_NAMESPACE, 'utf8').trim() : undefined);

  const logger = createLogger(level);
  const metrics = createMetrics({ processMetrics: true });
  const base = await loadConfig(configFile);
  const store = new ConfigStore(base.config, base.source, selfNamespace);
  metrics.configGeneration.set(store.current.generation);
  logger.info({ generation: store.current.generation, source: base.source }, 'configuration in force');
  store.on('change', ({ generation, source }) => {
    metrics.configReloads.inc({ result: 'success' });
    metrics.configGeneration.set(generation);
    logger.info({ generation, source }, 'configuration in force');
  });
  store.on('rejected', (source, errors) => {
    metrics.configReloads.inc({ result: 'failure' });
    logger.error({ source, errors }, 'configuration refused; the last good one stays in force');
  });
  const stops: (() => void)[] = [];
  let draining = false;
  if (configFile) {
    stops.push(
      watchFiles([configFile], ([text = '']) => {
        // An editor writing in place can be caught with the file still empty; an empty file at
        // start means the defaults, but while running it is far more likely half-written.
        if (text.trim() === '') store.refuse(configFile, ['the file is empty; ignored until it has content']);
        else store.setBase(text, configFile);
      }),
    );
  }

  const statePath = str(values, 'cluster-state');
  const state = statePath === undefined ? undefined : await recordedState(statePath);
  const connection = clusterMode === 'off' || state ? undefined : await kubeConfigFor(str(values, 'kubeconfig'), env);
  // The mesh profile: the configuration's mesh: section over what the cluster's Istio objects say.
  const profile = await buildProfile(store, {
    ...(state && { manifests: { objects: state, paths: [statePath as string] } }),
    ...(connection && { cluster: { connection, istioNamespace: istioNamespaceOf(values), watch: logger } }),
  });
  const mesh = profile.mesh;
  stops.push(profile.stop);
  const inForce = (current: MeshProfile) => {
    const summary = summarize(current);
    metrics.setMeshProfile(summary);
    logger.info({ mesh: summary }, 'mesh profile in force');
    // Per guardrail, whether its trap exists on this mesh and why (each policy's explain), at debug.
    if (logger.isLevelEnabled('debug'))
      logger.debug({ guardrails: explainAll(policies, current) }, 'guardrails on this mesh');
  };
  inForce(mesh.current);
  mesh.on('change', inForce);

  // Cluster lookups: watches feed the view the policies read; readiness waits for the first sync.
  let cluster: ClusterView = clusterOff;
  const syncing: (() => string | null)[] = [];
  if (state) {
    // A recorded cluster is all there is: it holds every Service of its namespaces.
    cluster = MemoryClusterView.fromObjects(state, true);
    logger.info({ clusterState: statePath }, 'cluster lookups on a recorded cluster state');
  } else if (connection) {
    const { watchCluster } = await import('../cluster/watch.js');
    const live = watchCluster(connection.kc, logger);
    cluster = live.view;
    syncing.push(live.notReady);
    stops.push(live.stop);
    logger.info({ credentials: connection.from }, 'cluster lookups on');
  } else {
    logger.info(
      clusterMode === 'off'
        ? 'cluster lookups off (--cluster off)'
        : 'cluster lookups off: no in-cluster or kubeconfig credentials',
    );
  }
  const configMap =
    str(values, 'config-map') ?? (connection?.inCluster && selfNamespace ? `${selfNamespace}/meshguard` : undefined);
  if (configMap) {
    const [cmNamespace, cmName, extra] = configMap.split('/');
    if (!cmNamespace || !cmName || extra !== undefined)
      throw new UsageError(`--config-map: expected NAMESPACE/NAME, got ${JSON.stringify(configMap)}`);
    if (!connection)
      throw new UsageError(
        `--config-map needs ${state ? 'a live cluster, not --cluster-state' : 'cluster credentials (in-cluster, --kubeconfig or ~/.kube/config)'}`,
      );
    const { watchConfigMap } = await import('../config/configmap.js');
    const reflector = watchConfigMap(connection.kc, cmNamespace, cmName, store, logger);
    syncing.push(() => (reflector.synced ? null : `ConfigMap ${configMap} not read yet`));
    stops.push(() => reflector.stop());
  }
  const notReady = () => syncing.map((f) => f()).find((r) => r !== null) ?? null;

  let tls;
  let caFile: string | undefined;
  if (certFile && keyFile) {
    tls = await loadPair(certFile, keyFile);
  } else {
    const dev = await devCertificate(join(packageRoot, 'certs', 'dev'));
    tls = dev.pair;
    caFile = dev.caFile;
  }

  const app = buildApp({
    store,
    registry: new Registry(policies),
    cluster,
    mesh,
    metrics,
    logger,
    bodyLimit,
    https: { ...tls, minVersion: 'TLSv1.2' },
    notReady,
    draining: () => draining,
  });
  if (certFile && keyFile) {
    // A rotated Secret: new connections get the new pair, open ones keep theirs.
    stops.push(
      watchFiles([certFile, keyFile], ([cert = '', key = '']) => {
        try {
          checkPair({ cert, key });
          (app.server as HttpsServer).setSecureContext({ cert, key, minVersion: 'TLSv1.2' });
          logger.info({ certFile }, 'serving certificate reloaded');
        } catch (err) {
          logger.warn(
            { err: (err as Error).message, certFile },
            'serving certificate not reloaded: certificate and key do not match yet',
          );
        }
      }),
    );
  }

  const metricsApp = Fastify({ logger: false, schemaController: noSchemaCompilers });
  metricsApp.get('/metrics', async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  const host = str(values, 'host') ?? '0.0.0.0';
  try {
    await listen(app, port, host, 'webhook');
    if (metricsPort > 0) await listen(metricsApp, metricsPort, host, 'metrics');
  } catch (err) {
    // Half a server is worse than none: a probe would find it ready. Close everything, exit 2.
    for (const stop of stops) stop();
    await Promise.allSettled([app.close(), metricsApp.close()]);
    throw err;
  }
  const address = app.server.address();
  logger.info(
    {
      address,
      metricsPort,
      config: store.current.source,
      clusterLookups: cluster.enabled ? 'on' : 'off',
      ...(configMap && { configMap }),
      ...(caFile && { caFile }),
    },
    caFile ? `meshguard serving with a dev certificate; its CA is ${caFile}` : 'meshguard serving',
  );

  return new Promise((resolve) => {
    // Kubernetes removes the pod from the Service's endpoints while SIGTERM arrives: keep
    // answering for --shutdown-delay (readyz failing, keep-alive connections told to close),
    // then stop accepting and let the requests in flight finish.
    const shutdown = (signal: string) => {
      if (draining) return;
      draining = true;
      logger.info({ signal, shutdownDelay }, 'shutting down: draining, then no new connections');
      const force = setTimeout(
        () => {
          logger.error('in-flight requests did not finish within the grace period');
          resolve(1);
        },
        shutdownDelay * 1000 + SHUTDOWN_GRACE_MS,
      ).unref();
      for (const stop of stops) stop();
      setTimeout(() => {
        void Promise.all([app.close(), metricsApp.close()]).then(() => {
          clearTimeout(force);
          logger.info('stopped');
          resolve(0);
        });
      }, shutdownDelay * 1000);
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}

/** The objects of a recorded cluster state; what cannot be read is a usage error naming it. */
async function recordedState(path: string): Promise<unknown[]> {
  const read = await readManifests([path], () => Promise.reject(new UsageError('--cluster-state: stdin is not read')));
  const [error] = read.errors;
  if (error) throw new UsageError(`--cluster-state: ${error.message}`);
  if (read.manifests.length === 0) throw new UsageError(`--cluster-state: no Kubernetes objects in ${path}`);
  return read.manifests.map((m) => m.object);
}
