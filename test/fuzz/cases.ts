// The HTTP fuzzer's cases and their judge, shared by test/fuzz.test.ts (a few thousand in
// `npm test`) and test/fuzz/run.ts (`npm run fuzz`, 100 000). A case is a request body with a
// content type; the judge says what the answer must be, from what the body is (the oracle reads
// the body as the server should — UTF-8, JSON, no __proto__ or constructor.prototype keys — and
// takes the server's own review check, decodeReview, as the definition of an AdmissionReview): a
// valid review gets 200, its uid and a patch that applies; anything else a 400, 413 or 415; never
// a 5xx, a policy error, or a hang.
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { decodeReview } from '../../src/admission/decode.js';
import type { KubeObject } from '../../src/admission/types.js';
import { DEFAULT_BODY_LIMIT } from '../../src/server/app.js';
import { pod, userString } from '../generators/world.js';

export interface FuzzCase {
  /** What was done to the body, for the counts. */
  kind: string;
  path: '/mutate' | '/validate';
  /** undefined: no content-type header. */
  contentType: string | undefined;
  body: Buffer;
}

// ---------------------------------------------------------------------------------------------
// A JSON writer that can also write what JSON.stringify cannot: raw text or bytes at a value's
// place (10 000-deep nesting, invalid UTF-8) and objects with duplicate keys.

class Raw {
  constructor(readonly bytes: Buffer) {}
}
class Pairs {
  constructor(readonly pairs: readonly (readonly [string, unknown])[]) {}
}

function write(value: unknown, out: Buffer[]): void {
  if (value instanceof Raw) {
    out.push(value.bytes);
  } else if (value instanceof Pairs) {
    out.push(Buffer.from('{'));
    value.pairs.forEach(([k, v], i) => {
      out.push(Buffer.from(`${i > 0 ? ',' : ''}${JSON.stringify(k)}:`));
      write(v, out);
    });
    out.push(Buffer.from('}'));
  } else if (Array.isArray(value)) {
    out.push(Buffer.from('['));
    value.forEach((v, i) => {
      if (i > 0) out.push(Buffer.from(','));
      write(v === undefined ? null : v, out);
    });
    out.push(Buffer.from(']'));
  } else if (typeof value === 'object' && value !== null) {
    write(new Pairs(Object.entries(value).filter(([, v]) => v !== undefined)), out);
  } else {
    out.push(Buffer.from(JSON.stringify(value) ?? 'null'));
  }
}

function serialize(value: unknown): Buffer {
  const out: Buffer[] = [];
  write(value, out);
  return Buffer.concat(out);
}

// ---------------------------------------------------------------------------------------------
// Valid reviews: the generated pods at /mutate, workloads and Istio objects at /validate.

const uid = fc.oneof(
  fc.uuid(),
  fc.string({ minLength: 1, maxLength: 128 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
);
const apiVersion = fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1', 'admission.k8s.io/v1beta1');
const namespace = fc.constantFrom('shop', 'batch', 'default', 'kube-system', 'meshguard', '');
const operation = fc.constantFrom('CREATE', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT');

const workload = fc
  .tuple(
    pod,
    fc.constantFrom(
      ['apps', 'Deployment'],
      ['apps', 'StatefulSet'],
      ['apps', 'DaemonSet'],
      ['apps', 'ReplicaSet'],
      ['batch', 'Job'],
      ['batch', 'CronJob'],
    ),
  )
  .map(([p, [group, kind]]) => {
    const template = { metadata: p.metadata, spec: p.spec };
    const spec = kind === 'CronJob' ? { schedule: '* * * * *', jobTemplate: { spec: { template } } } : { template };
    return { group, kind, object: { apiVersion: `${group}/v1`, kind, metadata: { name: 'w' }, spec } as KubeObject };
  });
const destinationRule = fc
  .record({
    host: fc.oneof(
      fc.constantFrom('reviews', 'reviews.default', 'reviews.default.svc.cluster.local', '*', '*.example.com'),
      userString,
    ),
    exportTo: fc.option(fc.array(fc.constantFrom('.', '*', 'shop')), { nil: undefined }),
  })
  .map((spec) => ({
    group: 'networking.istio.io',
    kind: 'DestinationRule',
    object: {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'dr', namespace: 'ns1' },
      spec: JSON.parse(JSON.stringify(spec)) as unknown,
    } as KubeObject,
  }));
const service = fc
  .record({
    externalName: fc.oneof(fc.constantFrom('db.example.com', 'mysql-a.rds.example.com'), userString),
    port: fc.integer({ min: 1, max: 65535 }),
  })
  .map(({ externalName, port }) => ({
    group: '',
    kind: 'Service',
    object: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's' },
      spec: { type: 'ExternalName', externalName, ports: [{ port, protocol: 'TCP' }] },
    } as KubeObject,
  }));

const subject = fc.oneof(
  { weight: 4, arbitrary: pod.map((object) => ({ group: '', kind: 'Pod', object, path: '/mutate' as const })) },
  { weight: 2, arbitrary: workload.map((w) => ({ ...w, path: '/validate' as const })) },
  { weight: 1, arbitrary: destinationRule.map((w) => ({ ...w, path: '/validate' as const })) },
  { weight: 1, arbitrary: service.map((w) => ({ ...w, path: '/validate' as const })) },
);

export const validReview = fc
  .record({ apiVersion, uid, namespace, operation, subject, dryRun: fc.option(fc.boolean(), { nil: undefined }) })
  .map(({ apiVersion, uid, namespace, operation, subject, dryRun }) => ({
    path: subject.path,
    review: {
      apiVersion,
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: subject.group, version: 'v1', kind: subject.kind },
        resource: { group: subject.group, version: 'v1', resource: `${subject.kind.toLowerCase()}s` },
        namespace,
        operation,
        userInfo: { username: 'fuzz', groups: ['system:authenticated'] },
        object: subject.object,
        oldObject: operation === 'UPDATE' ? subject.object : null,
        ...(dryRun !== undefined && { dryRun }),
      },
    } as Record<string, unknown>,
  }));

// ---------------------------------------------------------------------------------------------
// Mutations of a valid review.

/** Every place in a value, as a path of keys; the root is []. Bounded: reviews are small here. */
function places(value: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (out.length > 2000) return out;
  if (Array.isArray(value)) value.forEach((v, i) => places(v, [...at, i], out));
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) places(v, [...at, k], out);
  return out;
}

/** A copy of `root` with the value at `path` replaced (the root itself when path is empty). */
function replaceAt(root: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(root)) return root.map((v, i) => (i === head ? replaceAt(v, rest, replacement) : v));
  const obj = root as Record<string, unknown>;
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, k === head ? replaceAt(v, rest, replacement) : v]));
}

/** A copy of `root` where the object at `path` (if it is one) gets extra pairs, keeping its own. */
function addPairsAt(
  root: unknown,
  path: readonly (string | number)[],
  extra: (pairs: [string, unknown][]) => [string, unknown][],
): unknown {
  if (path.length === 0) {
    if (typeof root !== 'object' || root === null || Array.isArray(root)) return root;
    return new Pairs(extra(Object.entries(root)));
  }
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(root)) return root.map((v, i) => (i === head ? addPairsAt(v, rest, extra) : v));
  if (typeof root !== 'object' || root === null) return root;
  return Object.fromEntries(Object.entries(root).map(([k, v]) => [k, k === head ? addPairsAt(v, rest, extra) : v]));
}

const objectPlaces = (value: unknown) =>
  places(value).filter((p) => {
    let v: unknown = value;
    for (const k of p) v = (v as Record<string | number, unknown>)[k];
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  });

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length] as T;

const deep = (depth: number, open: string, close: string, inner = '1') =>
  new Raw(Buffer.from(open.repeat(depth) + inner + close.repeat(depth)));

/** Values of every type, including the hostile ones. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -0, '', 'x', [], {}, [null], { '': '' }),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: userString },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 10_000 }).map((n) => deep(n, '[', ']')) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 10_000 }).map((n) => deep(n, '{"a":', '}')) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(2 ** 53 + 1, Number.MAX_SAFE_INTEGER, -(2 ** 31), 2 ** 31, 65536, 0.1).map((n) => n),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('1e400', '-1e400', '1E-400', '123456789012345678901234567890')
      .map((t) => new Raw(Buffer.from(t))),
  },
);

/** Sizes of huge strings: mostly under the body limit, sometimes over it. */
const hugeSize = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: 1024, max: 64 * 1024 }) },
  { weight: 3, arbitrary: fc.integer({ min: 64 * 1024, max: 1024 * 1024 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1024 * 1024, max: 3 * 1024 * 1024 }) },
  { weight: 1, arbitrary: fc.constant(DEFAULT_BODY_LIMIT + 1) },
);
const hugeString = fc
  .tuple(hugeSize, fc.constantFrom('a', ' ', '\n', ',', '-', 'é', '\\"', '$(x)'))
  .map(([n, unit]) => unit.repeat(Math.max(1, Math.floor(n / Buffer.byteLength(unit)))));

/** Byte sequences that are not UTF-8: stray continuation bytes, overlong forms, surrogates, 0xFF. */
const invalidUtf8 = fc
  .constantFrom(
    [0x80],
    [0xbf],
    [0xc0, 0xaf],
    [0xc1, 0xbf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xed, 0xbf, 0xbf],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xfe],
    [0xff],
    [0xc3],
    [0xe2, 0x82],
    [0xf0, 0x9f, 0x98],
  )
  .map((bytes) => Buffer.from(bytes));

const contentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8'),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      undefined,
      'text/plain',
      'application/yaml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json-patch+json',
      '',
      'application/jsonx',
      '*/*',
    ),
  },
);

type Review = { path: '/mutate' | '/validate'; review: Record<string, unknown> };
type Mutation = fc.Arbitrary<(r: Review) => { kind: string; body: Buffer }>;

const asIs: Mutation = fc.constant((r) => ({ kind: 'valid', body: serialize(r.review) }));

const wrongType: Mutation = fc.tuple(fc.nat(), anyValue, fc.boolean()).map(([n, value, shallow]) => (r) => {
  const path = somePlace(r.review, n, shallow);
  return { kind: 'wrong-type', body: serialize(replaceAt(r.review, path, value)) };
});

/** Half the time one of the review's own fields (namespace, name, uid, kind…), the rest anywhere. */
const somePlace = (review: unknown, n: number, shallow: boolean) => {
  const all = places(review);
  return pick(shallow ? all.filter((p) => p.length >= 2 && p.length <= 3) : all, n);
};

const huge: Mutation = fc.tuple(fc.nat(), hugeString, fc.boolean()).map(([n, s, shallow]) => (r) => {
  const path = somePlace(r.review, n, shallow);
  return { kind: 'huge-string', body: serialize(replaceAt(r.review, path, s)) };
});

/** The classic shape that makes a backtracking regex slow: a long run of one separator, then a character that breaks the match. */
const longRun: Mutation = fc
  .tuple(
    fc.nat(),
    fc.constantFrom('-', ' ', '.', ',', '*', '/', 'a-', '\t', '0'),
    fc.constantFrom('/', 'x', '!', '\n', ''),
    fc.integer({ min: 1000, max: 100_000 }),
  )
  .map(([n, unit, breaker, length]) => (r) => {
    const fields = places(r.review).filter((p) => {
      let v: unknown = r.review;
      for (const k of p) v = (v as Record<string | number, unknown>)[k];
      return typeof v === 'string';
    });
    return {
      kind: 'long-run',
      body: serialize(replaceAt(r.review, pick(fields, n), unit.repeat(Math.ceil(length / unit.length)) + breaker)),
    };
  });

const deepNesting: Mutation = fc
  .tuple(
    fc.nat(),
    fc.constantFrom(['[', ']'], ['{"a":', '}'], ['{"__proto__":', '}'], ['[{"constructor":{"prototype":', '}}]']),
    fc.constantFrom(1000, 10_000, 10_000, 10_000, 100_000),
  )
  .map(([n, [open, close], depth]) => (r) => {
    const path = pick(places(r.review), n);
    return { kind: 'deep-nesting', body: serialize(replaceAt(r.review, path, deep(depth, open, close))) };
  });

const protoKeys: Mutation = fc
  .tuple(
    fc.nat(),
    fc.constantFrom<[string, unknown]>(
      ['__proto__', { polluted: true }],
      ['__proto__', null],
      ['__proto__', 'x'],
      ['constructor', { prototype: { polluted: true } }],
      ['constructor', 'x'],
      ['constructor', { name: 'x' }],
      ['prototype', { polluted: true }],
    ),
    fc.boolean(),
  )
  .map(([n, [key, value], escaped]) => (r) => {
    const path = pick(objectPlaces(r.review), n);
    const body = serialize(addPairsAt(r.review, path, (pairs) => [...pairs, [key, value]]));
    // The same key written with a JSON escape: JSON.parse makes it __proto__ all the same.
    return {
      kind: 'proto-keys',
      body: escaped ? Buffer.from(body.toString('latin1').replace('"__proto__"', '"\\u005f_proto__"'), 'latin1') : body,
    };
  });

const duplicateKeys: Mutation = fc
  .tuple(fc.nat(), fc.nat(), anyValue, fc.boolean())
  .map(([n, m, value, before]) => (r) => {
    const path = pick(objectPlaces(r.review), n);
    const body = serialize(
      addPairsAt(r.review, path, (pairs) => {
        if (pairs.length === 0)
          return [
            ['k', value],
            ['k', value],
          ];
        const [key] = pick(pairs, m);
        return before ? [[key, value], ...pairs] : [...pairs, [key, value]];
      }),
    );
    return { kind: 'duplicate-keys', body };
  });

const badUtf8: Mutation = fc
  .tuple(fc.array(fc.tuple(fc.nat(), invalidUtf8), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([inserts, inString]) => (r) => {
    if (inString) {
      // Inside a string value: the JSON stays well-formed, only the text is not UTF-8.
      const path = pick(
        places(r.review).filter((p) => p.length > 0),
        inserts[0]?.[0] ?? 0,
      );
      const bytes = Buffer.concat([Buffer.from('"a'), ...inserts.map(([, b]) => b), Buffer.from('z"')]);
      return { kind: 'invalid-utf8', body: serialize(replaceAt(r.review, path, new Raw(bytes))) };
    }
    let body = serialize(r.review);
    for (const [n, bytes] of inserts) {
      const at = n % (body.length + 1);
      body = Buffer.concat([body.subarray(0, at), bytes, body.subarray(at)]);
    }
    return { kind: 'invalid-utf8', body };
  });

const truncated: Mutation = fc.nat().map((n) => (r) => {
  const body = serialize(r.review);
  return { kind: 'truncated', body: body.subarray(0, n % body.length) };
});

const byteFlips: Mutation = fc
  .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
  .map((flips) => (r) => {
    const body = Buffer.from(serialize(r.review));
    for (const [n, b] of flips) body[n % body.length] = b;
    return { kind: 'byte-flips', body };
  });

const garbage: Mutation = fc
  .oneof(
    fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
    fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
    fc
      .constantFrom(
        '',
        ' ',
        'null',
        '[]',
        '{}',
        '"AdmissionReview"',
        '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}',
        '{"request":{}}',
        '\uFEFF{}',
      )
      .map((s) => Buffer.from(s)),
  )
  .map((body) => () => ({ kind: 'garbage', body }));

const mutation: Mutation = fc.oneof(
  { weight: 3, arbitrary: asIs },
  { weight: 4, arbitrary: wrongType },
  { weight: 1, arbitrary: huge },
  { weight: 1, arbitrary: longRun },
  { weight: 1, arbitrary: deepNesting },
  { weight: 2, arbitrary: protoKeys },
  { weight: 2, arbitrary: duplicateKeys },
  { weight: 2, arbitrary: badUtf8 },
  { weight: 2, arbitrary: truncated },
  { weight: 2, arbitrary: byteFlips },
  { weight: 1, arbitrary: garbage },
);

export const fuzzCase: fc.Arbitrary<FuzzCase> = fc
  .tuple(validReview, mutation, contentType, fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 1))
  .map(([r, mutate, contentType, swap]) => {
    const { kind, body } = mutate(r);
    // Now and then the other endpoint: a pod at /validate, a Service at /mutate.
    const path = swap ? (r.path === '/mutate' ? '/validate' : '/mutate') : r.path;
    return {
      kind: contentType === 'application/json' ? kind : `${kind}, content-type ${contentType ?? 'none'}`,
      path,
      contentType,
      body,
    };
  });

/** The values every field is replaced with, one at a time, by `everyFieldWrongType`. */
const wrongValues: unknown[] = [null, true, 0, -1.5, '', 'x', [], {}, deep(10_000, '[', ']')];

/**
 * Every field of a review replaced, one at a time, by a value of each other type: reviews
 * recorded from a real API server, so that every field they have is tried.
 */
export function* everyFieldWrongType(
  reviews: readonly { name: string; review: Record<string, unknown> }[],
): Generator<FuzzCase> {
  for (const { name, review } of reviews) {
    const request = review.request as { kind?: { kind?: unknown } } | undefined;
    const path = request?.kind?.kind === 'Pod' ? '/mutate' : '/validate';
    for (const at of places(review)) {
      for (const value of wrongValues) {
        yield {
          kind: `every-field ${name} ${at.join('.')}`,
          path,
          contentType: 'application/json',
          body: serialize(replaceAt(review, at, value)),
        };
      }
    }
  }
}

/** `count` cases from a seed, generated in batches. The same seed gives the same cases. */
export function* fuzzCases(count: number, seed: number): Generator<FuzzCase> {
  const batch = 500;
  for (let done = 0, i = 0; done < count; i++) {
    const n = Math.min(batch, count - done);
    yield* fc.sample(fuzzCase, { numRuns: n, seed: (seed + i * 7919) | 0 });
    done += n;
  }
}

// ---------------------------------------------------------------------------------------------
// The oracle and the judge.

export type Expected = { status: 200; uid: string; apiVersion: string; object: unknown } | { status: 400 | 413 | 415 };

/** An own `__proto__` key, or a `constructor` object with a `prototype` key, anywhere (iterative: 100 000-deep bodies). */
function poisoned(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (!Array.isArray(v)) {
      if (Object.hasOwn(v, '__proto__')) return true;
      const ctor = (v as Record<string, unknown>).constructor;
      if (
        Object.hasOwn(v, 'constructor') &&
        typeof ctor === 'object' &&
        ctor !== null &&
        Object.hasOwn(ctor, 'prototype')
      )
        return true;
    }
    for (const child of Object.values(v)) stack.push(child);
  }
  return false;
}

/** What the server must answer: a JSON AdmissionReview it can read gets 200 with its uid. */
export function expected(c: FuzzCase): Expected {
  // fastify hands a request with neither body nor content type straight to the route: no review.
  if (c.contentType === undefined && c.body.length === 0) return { status: 400 };
  const media = c.contentType?.split(';')[0]?.trim().toLowerCase();
  if (media !== 'application/json') return { status: 415 };
  if (c.body.length > DEFAULT_BODY_LIMIT) return { status: 413 };
  let text = c.body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { status: 400 };
  }
  if (poisoned(parsed)) return { status: 400 };
  const decoded = decodeReview(parsed);
  if (!decoded.ok) return { status: 400 };
  return {
    status: 200,
    uid: decoded.review.request.uid,
    apiVersion: decoded.review.apiVersion,
    object: decoded.review.request.object,
  };
}

export interface Answer {
  status: number;
  body: string;
}

/** Longer than this is a hang: the event loop was blocked for every other admission meanwhile. */
export const SLOW_MS = 3000;

/** null when the answer is right, else what is wrong with it. */
export function judge(c: FuzzCase, answer: Answer | Error, ms = 0): string | null {
  if (answer instanceof Error) return `no answer: ${answer.message}`;
  if (ms > SLOW_MS) return `answered after ${Math.round(ms)} ms`;
  if (answer.status >= 500) return `${answer.status}: ${answer.body.slice(0, 200)}`;
  const want = expected(c);
  if (want.status !== 200) {
    return answer.status === want.status
      ? null
      : `expected ${want.status}, got ${answer.status}: ${answer.body.slice(0, 200)}`;
  }
  if (answer.status !== 200) return `a valid review got ${answer.status}: ${answer.body.slice(0, 200)}`;
  let review: { apiVersion?: unknown; kind?: unknown; response?: { uid?: unknown; allowed?: unknown } };
  try {
    review = JSON.parse(answer.body) as typeof review;
  } catch {
    return `200 with a body that is not JSON: ${answer.body.slice(0, 200)}`;
  }
  if (review.kind !== 'AdmissionReview' || review.apiVersion !== want.apiVersion)
    return `not an AdmissionReview ${want.apiVersion}: ${answer.body.slice(0, 200)}`;
  if (review.response?.uid !== want.uid)
    return `uid ${JSON.stringify(review.response?.uid)} instead of ${JSON.stringify(want.uid)}`;
  if (typeof review.response.allowed !== 'boolean') return 'no allowed';
  // A policy that throws is a bug, even when the request is allowed (fail-open).
  const thrown = (review.response as { warnings?: unknown }).warnings;
  if (Array.isArray(thrown) && thrown.some((w) => typeof w === 'string' && w.includes('internal error')))
    return `a policy threw: ${JSON.stringify(thrown)}`;
  const { patch, patchType } = review.response as { patch?: unknown; patchType?: unknown };
  if (patch !== undefined) {
    if (patchType !== 'JSONPatch' || typeof patch !== 'string')
      return `patch without patchType JSONPatch: ${answer.body.slice(0, 200)}`;
    // The API server applies it to the object it sent: it must apply cleanly.
    let ops: jsonpatch.Operation[];
    try {
      ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as jsonpatch.Operation[];
    } catch {
      return 'patch is not base64 JSON';
    }
    let error: Error | undefined;
    try {
      error = jsonpatch.validate(ops, structuredClone(want.object));
    } catch (err) {
      // Too deep to copy here (100 000 levels): the server answered, this checker cannot follow.
      if (!(err instanceof RangeError)) throw err;
    }
    if (error) return `patch does not apply: ${error.message}: ${JSON.stringify(ops).slice(0, 300)}`;
  }
  return null;
}

/** Counts of a fuzz run, as `npm run fuzz` prints them. */
export class Tally {
  cases = 0;
  readonly byStatus = new Map<string, number>();
  readonly byKind = new Map<string, number>();
  readonly failures: { kind: string; path: string; reason: string; body: string }[] = [];

  add(c: FuzzCase, answer: Answer | Error, ms = 0): string | null {
    this.cases++;
    const status = answer instanceof Error ? 'no answer' : String(answer.status);
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    const kind = c.kind.split(',')[0] ?? c.kind;
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    const reason = judge(c, answer, ms);
    if (reason !== null) {
      const shown =
        c.body.length > 300
          ? `${c.body.subarray(0, 300).toString('utf8')}… (${c.body.length} bytes)`
          : c.body.toString('utf8');
      this.failures.push({ kind: c.kind, path: c.path, reason, body: shown });
    }
    return reason;
  }

  summary(): string {
    const sorted = (m: Map<string, number>) =>
      [...m.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ');
    return [
      `cases run: ${this.cases}`,
      `by status: ${sorted(this.byStatus)}`,
      ...(this.byKind.size > 0 ? [`by kind: ${sorted(this.byKind)}`] : []),
      `failures: ${this.failures.length}`,
    ].join('\n');
  }
}
