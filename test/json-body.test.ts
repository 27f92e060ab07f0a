// parseJsonBody against fastify's own JSON parser: the same status and the same value for every
// body, poisoned or not, whichever path it takes.
import Fastify from 'fastify';
import fc from 'fast-check';
import tap from 'tap';
import { parseJsonBody } from '../src/server/json-body.js';
import { recordedReviews } from './fuzz/send.js';

function echo(ours: boolean) {
  const app = Fastify({ onProtoPoisoning: 'error', onConstructorPoisoning: 'error' });
  if (ours) {
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);
  }
  app.post('/', async (req) => ({ body: req.body }));
  return app;
}
const fastifys = echo(false);
const ours = echo(true);

async function same(t: Pick<typeof tap, 'strictSame'>, body: string): Promise<number> {
  const send = (app: typeof ours) =>
    app.inject({ method: 'POST', url: '/', headers: { 'content-type': 'application/json' }, payload: body });
  const [a, b] = await Promise.all([send(fastifys), send(ours)]);
  t.strictSame([b.statusCode, b.body], [a.statusCode, a.body], JSON.stringify(body).slice(0, 80));
  return a.statusCode;
}

tap.test('hand-picked bodies', async (t) => {
  const bodies = [
    '',
    '{',
    'null',
    '1',
    '"text"',
    '  {"a": [1, {"b": null}]}  ',
    '\ufeff{"a":1}',
    '{"__proto__": {"polluted": true}}',
    '{"a": {"__proto__": 1}}',
    '{"\\u005f_proto__": 1}',
    '{"__pr\\u006fto__": 1}',
    '{"constructor": {"prototype": {"polluted": true}}}',
    '{"a": {"c\\u006fnstructor": {"prototype": 1}}}',
    '{"constructor": {"x": 1}}',
    '{"protocol": "TCP", "text": "__proto__ in a value", "c": "constructor"}',
    '{"a": "\\\\u0041", "b": "\\u00e9\\u2028"}',
    ...recordedReviews().map((r) => JSON.stringify(r.review)),
  ];
  for (const body of bodies) await same(t, body);
});

tap.test('generated JSON, with poisoned keys mixed in', async (t) => {
  const key = fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'prototype', '\u005f_proto__'));
  const value = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      fc.jsonValue({ maxDepth: 1 }),
      fc.dictionary(key, tie('node'), { maxKeys: 4 }),
      fc.array(tie('node'), { maxLength: 3 }),
    ),
  })).node;
  // Keys are written as JSON text, so that __proto__ stays a key, with their letters \u-escaped or not.
  const text = (v: unknown, escape: boolean): string => {
    if (Array.isArray(v)) return `[${v.map((x) => text(x, escape)).join(',')}]`;
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    const keyText = (k: string) =>
      escape
        ? JSON.stringify(k).replace(/[a-z_]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
        : JSON.stringify(k);
    return `{${Object.entries(v)
      .map(([k, x]) => `${keyText(k)}:${text(x, escape)}`)
      .join(',')}}`;
  };
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(value, fc.boolean(), async (v, escape) => {
      const status = await same(t, text(v, escape));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }),
    { numRuns: 500 },
  );
  t.ok(
    (statuses.get(200) ?? 0) > 50 && (statuses.get(400) ?? 0) > 50,
    `both accepted and refused bodies: ${JSON.stringify([...statuses])}`,
  );
});
