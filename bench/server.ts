// One server under load, in its own process so its CPU time can be read from /proc:
//   node dist/bench/server.js meshguard|meshguard-quiet|bare PORT CERT KEY
// meshguard is built as `meshguard serve` builds it (logger on stdout at info, metrics with the
// process collectors, embedded default configuration, all five guardrails), with the cluster view
// filled as the watches would fill it. meshguard-quiet is the same at log level warn: no decision
// lines, to show what they cost. bare is the limit of the stack: fastify on the same Node, the
// same kind of TLS certificate, parsing the same body and answering a minimal allowed review.
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { ConfigStore } from '../src/config/store.js';
import { Registry } from '../src/engine/registry.js';
import { createLogger } from '../src/log.js';
import { policies } from '../src/policies/index.js';
import { buildApp, DEFAULT_BODY_LIMIT } from '../src/server/app.js';
import { createMetrics } from '../src/server/metrics.js';
import { benchCluster, benchConfig } from './common.js';

const [which, portText, certFile, keyFile] = process.argv.slice(2);
if ((which !== 'meshguard' && which !== 'meshguard-quiet' && which !== 'bare') || !portText || !certFile || !keyFile) {
  process.stderr.write('usage: server.js meshguard|meshguard-quiet|bare PORT CERT KEY\n');
  process.exit(2);
}
const https = {
  cert: readFileSync(certFile, 'utf8'),
  key: readFileSync(keyFile, 'utf8'),
  minVersion: 'TLSv1.2',
} as const;

async function meshguard(level: string): Promise<FastifyInstance> {
  const base = await benchConfig();
  return buildApp({
    store: new ConfigStore(base.config, base.source),
    registry: new Registry(policies),
    cluster: benchCluster(),
    metrics: createMetrics({ processMetrics: true }),
    // bench/instructions.ts stretches the log's flush interval as valgrind stretches time.
    logger: createLogger(level, Number(process.env.BENCH_LOG_FLUSH_MS) || undefined),
    bodyLimit: DEFAULT_BODY_LIMIT,
    https,
    notReady: () => null,
    draining: () => false,
  });
}

function bare(): FastifyInstance {
  const app = Fastify({
    https,
    logger: false,
    bodyLimit: DEFAULT_BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  });
  const answer = async (req: { body: unknown }) => {
    const body = req.body as { apiVersion?: unknown; request?: { uid?: unknown } } | null;
    return {
      apiVersion: body?.apiVersion,
      kind: 'AdmissionReview',
      response: { uid: body?.request?.uid, allowed: true },
    };
  };
  app.post('/mutate', answer);
  app.post('/validate', answer);
  return app as unknown as FastifyInstance;
}

const app = which === 'bare' ? bare() : await meshguard(which === 'meshguard' ? 'info' : 'warn');
await app.listen({ port: Number(portText), host: '127.0.0.1' });
// The logger writes what it buffered when the process exits.
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
