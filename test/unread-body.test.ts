// Refusals decided before the body is read (415, 404, 413), over real HTTPS: the client, still
// writing its body, must be able to read the answer (npm run fuzz once found a 3.2 MB body with
// content type application/jsonx answered with a broken pipe instead). The race shows only with
// the server in a process of its own, as `meshguard serve`; not over plain HTTP, nor with client
// and server on one event loop.
import type { IncomingHttpHeaders } from 'node:http';
import { request, Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import t from 'tap';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { ConfigStore } from '../src/config/store.js';
import { Registry } from '../src/engine/registry.js';
import { policies } from '../src/policies/index.js';
import { buildApp, DEFAULT_BODY_LIMIT } from '../src/server/app.js';
import { createMetrics } from '../src/server/metrics.js';
import { generateCa, generateServing } from '../src/tls/generate.js';
import { startServe } from './serve-process.js';
import { configOf } from './support.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

const ca = await generateCa('meshguard test CA', 1);
const serving = await generateServing(ca, ['127.0.0.1'], 1);

async function listening(bodyLimit?: number) {
  const app = buildApp({
    https: { cert: serving.cert, key: serving.key },
    store: new ConfigStore(configOf(), 'test'),
    registry: new Registry(policies),
    cluster: MemoryClusterView.fromObjects([]),
    metrics: createMetrics(),
    logger: pino({ level: 'silent' }),
    bodyLimit,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as AddressInfo).port };
}

/**
 * Sends the whole body at once, as the API server and `npm run fuzz` do, and resolves with the
 * answer or the error the client saw. Without an agent, Node's client asks for `connection: close`.
 */
function send(
  port: number,
  opts: { path: string; contentType: string; body: Buffer; agent?: Agent; chunked?: boolean; ca?: string },
): Promise<Answer | Error> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        ca: opts.ca ?? served.ca.cert,
        method: 'POST',
        path: opts.path,
        agent: opts.agent ?? false,
        headers: {
          'content-type': opts.contentType,
          ...(opts.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(opts.body.length) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', resolve);
      },
    );
    req.on('error', resolve);
    req.end(opts.body);
  });
}

// Large enough that the answer comes while the client is still writing: before the fix, most of
// these got EPIPE or a reset.
const big = Buffer.alloc(6 * 1024 * 1024, '[');

const served = await startServe(['--shutdown-delay', '0']);
t.teardown(() => served.proc.kill('SIGKILL'));
const { port } = served;

t.test('a refusal of a body within the limit is read by a client that asked to close', async (t) => {
  const cases = [
    { path: '/validate', contentType: 'application/jsonx', status: 415 },
    { path: '/mutate', contentType: 'text/plain', status: 415 },
    { path: '/nowhere', contentType: 'application/octet-stream', status: 404 },
  ];
  for (const c of cases) {
    const answers = await Promise.all(Array.from({ length: 5 }, () => send(port, { ...c, body: big })));
    t.strictSame(
      answers.map((a) => (a instanceof Error ? `${a.message}` : a.status)),
      Array.from({ length: 5 }, () => c.status),
      `${c.path} ${c.contentType}: ${c.status} each time`,
    );
    const [first] = answers;
    if (first && !(first instanceof Error)) t.match(JSON.parse(first.body), { statusCode: c.status });
  }
});

t.test('with keep-alive, the refused body is consumed and the connection serves the next request', async (t) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: served.ca.cert });
  t.teardown(() => agent.destroy());
  const sockets = new Set<unknown>();
  agent.on('free', (s) => sockets.add(s));
  const refused = await send(port, { path: '/validate', contentType: 'application/jsonx', body: big, agent });
  t.match(refused, { status: 415 });
  t.not((refused as Answer).headers.connection, 'close', 'the connection stays open');
  const next = await send(port, { path: '/validate', contentType: 'application/json', body: Buffer.from('{}'), agent });
  t.match(next, { status: 400, body: /AdmissionReview/ }, 'the next request is read as a request, not as body');
  t.equal(sockets.size, 1, 'on the same connection');
});

t.test('nothing past the limit is read: a larger body is refused and the connection closed', async (t) => {
  // In process, to see what the server reads.
  const limit = 64 * 1024;
  const { app, port } = await listening(limit);
  t.teardown(() => app.close());
  const sockets: { bytesRead: number }[] = [];
  app.server.on('secureConnection', (s: { bytesRead: number }) => sockets.push(s));
  // Declared over the limit: answered from the headers alone, before any of the body is sent. A
  // client that waits for an answer before sending (as the fuzz's does for these) reads it.
  const declared = await new Promise<Answer>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        ca: ca.cert,
        method: 'POST',
        path: '/validate',
        agent: false,
        headers: { 'content-type': 'application/jsonx', 'content-length': String(DEFAULT_BODY_LIMIT) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' }));
      },
    );
    req.on('error', reject);
    req.flushHeaders();
  });
  t.equal(declared.status, 415, 'the first reason to refuse it');
  t.equal(declared.headers.connection, 'close');
  // Chunked, no length declared: read up to the limit, then refused and closed.
  const body = Buffer.alloc(limit * 32, '[');
  const chunked = await send(port, {
    path: '/validate',
    contentType: 'application/jsonx',
    body,
    chunked: true,
    ca: ca.cert,
  });
  if (!(chunked instanceof Error)) {
    t.equal(chunked.status, 415);
    t.equal(chunked.headers.connection, 'close');
  } else {
    t.match(chunked.message, /EPIPE|ECONNRESET/, 'or the client, still writing past the limit, sees the close');
  }
  const read = sockets[1]?.bytesRead ?? 0;
  t.ok(read < body.length / 4, `the server read ${read} of the ${body.length} bytes sent`);
});
