// What start-to-ready costs below meshguard, for comparison:
//   node dist/bench/start-bare.js fastify|node --port N --tls-cert FILE --tls-key FILE
// fastify: a bare fastify HTTPS server answering /readyz; node: node:https alone.
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const flag = (name: string) => argv[argv.indexOf(name) + 1] ?? '';
const https = {
  cert: readFileSync(flag('--tls-cert'), 'utf8'),
  key: readFileSync(flag('--tls-key'), 'utf8'),
  minVersion: 'TLSv1.2',
} as const;
const port = Number(flag('--port'));

if (argv[0] === 'fastify') {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ https, logger: false });
  app.get('/readyz', async () => ({ status: 'ready' }));
  await app.listen({ port, host: '127.0.0.1' });
} else {
  const { createServer } = await import('node:https');
  createServer(https, (_req, res) => res.end('{"status":"ready"}')).listen(port, '127.0.0.1');
}
process.on('SIGTERM', () => process.exit(0));
