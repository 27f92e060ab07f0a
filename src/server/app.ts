import { STATUS_CODES } from 'node:http';
import type { ServerOptions } from 'node:https';
// Node's global `performance` is a getter, run on every read; the module's binding is not.
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { decodeReview } from '../admission/decode.js';
import { answerJson, responseOf } from '../admission/respond.js';
import type { Verdict } from '../admission/types.js';
import type { ClusterView } from '../cluster/view.js';
import { showVersion } from '../mesh/releases.js';
import { MeshStore } from '../mesh/store.js';
import type { ConfigStore } from '../config/store.js';
import { evaluate } from '../engine/evaluate.js';
import type { Registry } from '../engine/registry.js';
import type { Decision, Stage } from '../engine/types.js';
import { verdictOf } from '../engine/verdict.js';
import { workloadKinds } from '../engine/workloads.js';
import { decisionRecorder } from './decisions.js';
import { parseJsonBody } from './json-body.js';
import { settleUnreadBody } from './unread-body.js';
import type { Metrics } from './metrics.js';

/** Room for a 3 MiB object plus its oldObject and the review around them. */
export const DEFAULT_BODY_LIMIT = 7 * 1024 * 1024;

export interface AppDeps {
  store: ConfigStore;
  registry: Registry;
  cluster: ClusterView;
  /** The mesh profile in force; by default the configuration's `mesh:` alone. */
  mesh?: MeshStore;
  metrics: Metrics;
  logger: Logger;
  /** null when ready, else why not (e.g. caches not synced yet). */
  notReady?: () => string | null;
  /** True once shutdown began: answers ask clients to reconnect elsewhere. */
  draining?: () => boolean;
  bodyLimit?: number;
  /** TLS options; the serve command passes them, tests use plain HTTP through inject(). */
  https?: ServerOptions;
}

/**
 * meshguard's routes declare no schemas (reviews are checked by the validator compiled from
 * review-schema.ts), so fastify need not load ajv and fast-json-stringify to build its default
 * compilers: about 70 ms of every start. A schema added to a route fails loudly at ready.
 */
export const noSchemaCompilers = {
  compilersFactory: {
    buildValidator: () => () => {
      throw new Error('meshguard routes declare no schemas');
    },
    buildSerializer: () => () => {
      throw new Error('meshguard routes declare no schemas');
    },
  },
};

/** What fastify sends objects as; answers are sent as text already serialised. */
const JSON_TYPE = 'application/json; charset=utf-8';

const failOpen: Verdict = {
  allowed: true,
  denials: [],
  warnings: ['meshguard: internal error, request allowed unchecked'],
  patch: [],
};

/** The admission server's routes. It never listens: the serve command does, tests inject. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const { store, registry, cluster, metrics, logger } = deps;
  const mesh = deps.mesh ?? MeshStore.following(store);
  const options = {
    // fastify gets no logger: given one, it adds 'finish' and 'error' listeners to every response
    // to log the request's completion, even with request logging off. meshguard logs its
    // decisions and the errors below itself.
    logger: false,
    schemaController: noSchemaCompilers,
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // While closing, requests on connections already open are still answered, not refused.
    return503OnClosing: false,
  } as const;
  const app = (deps.https
    ? Fastify({ ...options, https: deps.https })
    : Fastify(options)) as unknown as FastifyInstance;
  // Reviews are JSON; anything else (fastify also parses text/plain by default) is a 415. JSON
  // bodies with `__proto__` or `constructor.prototype` keys are refused (parseJsonBody).
  app.removeContentTypeParser(['text/plain', 'application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);

  const recordDecisions = decisionRecorder(logger, metrics);

  const knownKinds = new Set([
    ...registry.policies.flatMap((p) => p.targets.map((t) => t.kind)),
    ...workloadKinds.map((w) => w.kind),
  ]);

  // While draining, a client reusing a keep-alive connection would race the close: every answer
  // asks it to reconnect.
  const draining = deps.draining ?? (() => false);
  app.addHook('onRequest', (_request, reply, done) => {
    if (draining()) reply.header('connection', 'close');
    done();
  });

  // Synchronous: the answer is sent before the handler returns, so an async handler's promise, and
  // fastify's wait on it in a microtask, would be work for nothing on every review.
  const admit =
    (stage: Stage) =>
    (request: FastifyRequest, reply: FastifyReply): void => {
      const started = performance.now();
      const decoded = decodeReview(request.body);
      if (!decoded.ok) {
        metrics.countRequest(stage, '', '', 'invalid');
        reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: decoded.reason });
        return;
      }
      const { review } = decoded;
      const req = review.request;
      const { scope } = store.current;
      let verdict: Verdict;
      let decisions: readonly Decision[] = [];
      try {
        decisions = evaluate({ request: req, stage }, { registry, scope, cluster, mesh: mesh.current });
        verdict = verdictOf(decisions, scope.config);
      } catch (err) {
        // Policies' own errors are decisions; this is a bug in the engine. Never block on it.
        logger.error({ err, uid: req.uid, kind: req.kind.kind }, 'engine error');
        verdict = failOpen;
      }
      if (decisions.length > 0) {
        try {
          recordDecisions(decisions, req);
        } catch (err) {
          // The answer stands: a logging failure must not turn a denial into an allow.
          logger.error({ err: (err as Error).message, uid: req.uid }, 'recording decisions failed');
        }
      }
      const outcome = !verdict.allowed ? 'denied' : verdict.patch.length > 0 ? 'patched' : 'allowed';
      // Kinds come from the caller: only the ones meshguard handles become label values.
      metrics.countRequest(stage, knownKinds.has(req.kind.kind) ? req.kind.kind : 'other', req.operation, outcome);
      if (verdict.warnings.length > 0) metrics.countWarnings(stage, verdict.warnings.length);
      metrics.observeDuration(stage, (performance.now() - started) / 1000);
      const answer = answerJson({
        apiVersion: review.apiVersion,
        kind: 'AdmissionReview',
        response: responseOf(req.uid, verdict),
      });
      reply.header('content-type', JSON_TYPE).send(answer);
    };

  app.post('/mutate', admit('mutate'));
  app.post('/validate', admit('validate'));
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const reason = draining() ? 'shutting down' : (deps.notReady?.() ?? null);
    const { generation } = store.current;
    if (reason !== null) return reply.code(503).send({ status: 'not ready', reason });
    const { version, rootNamespace, revisions } = mesh.current;
    return {
      status: 'ready',
      configGeneration: generation,
      clusterLookups: cluster.enabled ? 'on' : 'off',
      mesh: { istioVersion: showVersion(version), rootNamespace, revisions: [...revisions.keys()] },
    };
  });

  // Refusals can come before the body is read (415, 413, 404): settleUnreadBody lets the client
  // finish writing, so it reads the answer instead of a broken pipe.
  const bodyLimit = options.bodyLimit;
  app.setErrorHandler(async (err: { statusCode?: number; message: string }, request, reply) => {
    const code = err.statusCode ?? 500;
    if (code >= 500) logger.error({ err, method: request.method, url: request.url }, 'request failed');
    await settleUnreadBody(request, reply, bodyLimit);
    reply.code(code);
    return { statusCode: code, error: STATUS_CODES[code] ?? 'Error', message: err.message };
  });
  app.setNotFoundHandler(async (request, reply) => {
    await settleUnreadBody(request, reply, bodyLimit);
    reply.code(404);
    return { statusCode: 404, error: 'Not Found', message: `Route ${request.method}:${request.url} not found` };
  });
  return app;
}
