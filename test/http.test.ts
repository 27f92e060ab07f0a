// The HTTP edge through app.inject: decoding, answers, edge errors, metrics.
import { readFileSync } from 'node:fs';
import jsonpatch from 'fast-json-patch';
import t from 'tap';
import pino from 'pino';
import type { AdmissionReviewResponse, KubeObject } from '../src/admission/types.js';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { ConfigStore } from '../src/config/store.js';
import { Registry } from '../src/engine/registry.js';
import type { Policy } from '../src/engine/types.js';
import { policies } from '../src/policies/index.js';
import { buildApp } from '../src/server/app.js';
import { createMetrics } from '../src/server/metrics.js';
import { configOf } from './support.js';

const review = (name: string) =>
  JSON.parse(readFileSync(new URL(`fixtures/reviews/${name}`, import.meta.url), 'utf8')) as {
    apiVersion: string;
    request: { uid: string; object: KubeObject };
  };

const cluster = MemoryClusterView.fromObjects(
  [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'mysql-a', namespace: 'shop' },
      spec: { type: 'ExternalName', externalName: 'mysql-a.rds.example.com', ports: [{ port: 3306, protocol: 'TCP' }] },
    },
    // Every Service of shop is here, as a live cluster's watches would hold them.
  ],
  true,
);

function app(
  opts: {
    config?: unknown;
    policies?: readonly Policy[];
    notReady?: () => string | null;
    draining?: () => boolean;
    bodyLimit?: number;
    logger?: pino.Logger;
  } = {},
) {
  const metrics = createMetrics();
  // The FAQs' mesh (Istio 1.11) unless a test says otherwise: every guardrail's trap exists there.
  const store = new ConfigStore(configOf({ mesh: { istioVersion: '1.11' }, ...(opts.config as object) }), 'test');
  const built = buildApp({
    store,
    registry: new Registry(opts.policies ?? policies),
    cluster,
    metrics,
    logger: opts.logger ?? pino({ level: 'silent' }),
    notReady: opts.notReady,
    draining: opts.draining,
    bodyLimit: opts.bodyLimit,
  });
  return { app: built, metrics, store };
}

const post = (a: ReturnType<typeof app>['app'], url: string, body: unknown) =>
  a.inject({ method: 'POST', url, payload: body as object });

t.test('a recorded pod review gets one patch with both annotation policies, and its uid back', async (t) => {
  const { app: a } = app();
  const body = review('pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json');
  const res = await post(a, '/mutate', body);
  t.equal(res.statusCode, 200);
  const { response, apiVersion } = res.json<AdmissionReviewResponse>();
  t.equal(apiVersion, 'admission.k8s.io/v1');
  t.equal(response.uid, body.request.uid);
  t.equal(response.allowed, true);
  t.equal(response.patchType, 'JSONPatch');
  const patch = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString()) as jsonpatch.Operation[];
  const patched = jsonpatch.applyPatch(structuredClone(body.request.object), patch, true, false).newDocument;
  t.strictSame(patched.metadata?.annotations, {
    'proxy.istio.io/config': 'terminationDrainDuration: 20s\nholdApplicationUntilProxyStarts: true\n',
    'traffic.sidecar.istio.io/excludeInboundPorts': '8087',
  });
});

t.test('a Job pod gets its command wrapped; the patch applies', async (t) => {
  const { app: a } = app();
  const body = review('pod-create-report-job.mutate.json');
  const { response } = (await post(a, '/mutate', body)).json<AdmissionReviewResponse>();
  const patch = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString()) as jsonpatch.Operation[];
  const patched = jsonpatch.applyPatch(structuredClone(body.request.object), patch, true, false).newDocument as {
    spec: { containers: { command: string[]; args?: string[] }[] };
  };
  const [container] = patched.spec.containers;
  t.equal(container?.command[0], '/bin/sh');
  t.ok(
    [...(container?.command ?? []), ...(container?.args ?? [])].includes(
      'date; echo Hello from the Kubernetes cluster',
    ),
    'the original argument is passed on',
  );
});

t.test('v1beta1 is answered in v1beta1', async (t) => {
  const { app: a } = app();
  const body = {
    ...review('pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json'),
    apiVersion: 'admission.k8s.io/v1beta1',
  };
  const res = (await post(a, '/mutate', body)).json<AdmissionReviewResponse>();
  t.equal(res.apiVersion, 'admission.k8s.io/v1beta1');
  t.equal(res.response.uid, body.request.uid);
});

t.test('a misplaced DestinationRule is denied with a 403 status naming the fix', async (t) => {
  const { app: a } = app();
  const { response } = (
    await post(a, '/validate', review('destinationrule-create-myservice.validate.json'))
  ).json<AdmissionReviewResponse>();
  t.equal(response.allowed, false);
  t.equal(response.status?.code, 403);
  t.match(
    response.status?.message,
    /^meshguard destinationrule-placement: DestinationRule ns1\/myservice .* move it to default or istio-system/,
  );
  t.equal(response.patch, undefined);
});

t.test('dry-run mode: the denial becomes a warning, the mutation a "would" warning without patch', async (t) => {
  const { app: a, metrics } = app({ config: { mode: 'warn' } });
  const dr = (
    await post(a, '/validate', review('destinationrule-create-myservice.validate.json'))
  ).json<AdmissionReviewResponse>();
  t.equal(dr.response.allowed, true);
  t.match(dr.response.warnings, [/destinationrule-placement: DestinationRule ns1\/myservice/]);
  const pod = (
    await post(a, '/mutate', review('pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json'))
  ).json<AdmissionReviewResponse>();
  t.equal(pod.response.patch, undefined);
  t.match(pod.response.warnings, [
    /hold-application-until-proxy-starts: would set/,
    /probe-port-exclusion: would exclude probe port 8087/,
  ]);
  // The warnings the person applying reads are counted, per endpoint.
  const text = await metrics.registry.metrics();
  t.match(text, /meshguard_admission_warnings_total\{endpoint="validate"\} 1\n/);
  t.match(
    text,
    new RegExp(`meshguard_admission_warnings_total\\{endpoint="mutate"\\} ${pod.response.warnings?.length}\n`),
  );
});

t.test(
  'Istio 1.20: a second ExternalName Service on the same TCP port gets a warning (default mode warn)',
  async (t) => {
    // From Istio 1.21 ExternalName Services are aliases without listeners of their own: no collision.
    const { app: a } = app({ config: { mesh: { istioVersion: '1.20' } } });
    const { response } = (
      await post(a, '/validate', review('service-create-mysql-b.validate.json'))
    ).json<AdmissionReviewResponse>();
    t.equal(response.allowed, true);
    t.match(response.warnings, [
      /^meshguard externalname-tcp-collision: TCP port 3306 also carries Service shop\/mysql-a/,
    ]);
  },
);

t.test('workloads at /validate: pod policies on the template, never a patch or denial', async (t) => {
  const { app: a } = app({ config: { mode: 'warn' } });
  const { response } = (
    await post(a, '/validate', review('deployment-create-nginx-deployment-basic.mutate.json'))
  ).json<AdmissionReviewResponse>();
  t.equal(response.allowed, true);
  t.equal(response.patch, undefined);
  t.match(response.warnings, [/would set holdApplicationUntilProxyStarts/, /would exclude probe port 8087/]);
  const cron = (
    await post(a, '/validate', review('cronjob-create-mycronjob.mutate.json'))
  ).json<AdmissionReviewResponse>();
  t.match(cron.response.warnings, [/hold-application/, /job-sidecar-quit: would wrap/]);
});

t.test('workloads at /validate in enforce mode: a warning per change their pods will get', async (t) => {
  const { app: a } = app({ config: { mode: 'enforce' } });
  const cron = (
    await post(a, '/validate', review('cronjob-create-mycronjob.mutate.json'))
  ).json<AdmissionReviewResponse>();
  t.equal(cron.response.allowed, true);
  t.equal(cron.response.patch, undefined, 'the pods are patched when created, never the workload');
  t.match(cron.response.warnings, [
    /^meshguard hold-application-until-proxy-starts: when its pods are created, meshguard will set holdApplicationUntilProxyStarts: true/,
    /^meshguard job-sidecar-quit: when its pods are created, meshguard will wrap the command of container mycronjob-1/,
  ]);
});

t.test('DELETE and objects no policy cares about are allowed untouched', async (t) => {
  const { app: a } = app();
  const { response } = (
    await post(a, '/validate', review('service-delete-mysql-b.validate.json'))
  ).json<AdmissionReviewResponse>();
  t.strictSame(response, { uid: review('service-delete-mysql-b.validate.json').request.uid, allowed: true });
});

t.test('edge errors: 415, 400 with a reason, 413; the server keeps serving', async (t) => {
  const { app: a, metrics } = app({ bodyLimit: 1024 * 1024 });
  const plain = await a.inject({
    method: 'POST',
    url: '/mutate',
    headers: { 'content-type': 'text/plain' },
    payload: 'hello',
  });
  t.equal(plain.statusCode, 415);
  const broken = await a.inject({
    method: 'POST',
    url: '/mutate',
    headers: { 'content-type': 'application/json' },
    payload: '{"apiVersion": "admission.k8s.io/v1", "kind": ',
  });
  t.equal(broken.statusCode, 400);
  const wrong = await post(a, '/validate', {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 7, kind: {}, operation: 'CREATE' },
  });
  t.equal(wrong.statusCode, 400);
  t.match(wrong.json(), { message: /^not an AdmissionReview: request\.uid must be string/ });
  const proto = await a.inject({
    method: 'POST',
    url: '/mutate',
    headers: { 'content-type': 'application/json' },
    payload: '{"__proto__": {"polluted": true}}',
  });
  t.equal(proto.statusCode, 400);
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  const big = await a.inject({
    method: 'POST',
    url: '/mutate',
    headers: { 'content-type': 'application/json' },
    payload: `{"x":"${'a'.repeat(2 * 1024 * 1024)}"}`,
  });
  t.equal(big.statusCode, 413);
  const ok = await post(a, '/mutate', review('pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json'));
  t.equal(ok.statusCode, 200);
  const text = await metrics.registry.metrics();
  t.match(text, /meshguard_admission_requests_total\{endpoint="validate",kind="",operation="",outcome="invalid"\} 1/);
  t.match(
    text,
    /meshguard_admission_requests_total\{endpoint="mutate",kind="Pod",operation="CREATE",outcome="patched"\} 1/,
  );
  t.match(text, /meshguard_policy_results_total\{policy="hold-application-until-proxy-starts",result="mutate"\} 1/);
});

t.test('the default body limit takes a 3 MiB object with its oldObject', async (t) => {
  const { app: a } = app();
  const body = review('pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json');
  const fat = {
    ...body.request.object,
    metadata: { ...body.request.object.metadata, annotations: { big: 'x'.repeat(3 * 1024 * 1024) } },
  };
  const res = await post(a, '/validate', {
    ...body,
    request: { ...body.request, operation: 'UPDATE', object: fat, oldObject: fat },
  });
  t.equal(res.statusCode, 200);
});

t.test('a throwing policy: allowed with a warning, or denied with onError: deny', async (t) => {
  const broken: Policy = {
    id: 'destinationrule-placement',
    action: 'validate',
    targets: [{ group: 'networking.istio.io', kind: 'DestinationRule', operations: ['CREATE'] }],
    explain: () => ({ exists: true, why: 'test' }),
    evaluate() {
      throw new Error('boom');
    },
  };
  const body = review('destinationrule-create-myservice.validate.json');
  const lines: string[] = [];
  const logger = pino({ level: 'info', base: null }, { write: (line: string) => void lines.push(line) });
  const open = (await post(app({ policies: [broken], logger }).app, '/validate', body)).json<AdmissionReviewResponse>();
  t.equal(open.response.allowed, true);
  const { request } = body as unknown as {
    request: { uid: string; namespace: string; object: { metadata: { name: string } } };
  };
  t.match(
    lines.map((l) => JSON.parse(l) as unknown),
    [
      {
        level: 50,
        msg: 'policy error',
        uid: request.uid,
        kind: 'DestinationRule',
        namespace: request.namespace,
        name: request.object.metadata.name,
        operation: 'CREATE',
        policy: 'destinationrule-placement',
        result: 'error',
        err: { message: 'boom' },
      },
    ],
    'logged at error with its id and the request',
  );
  t.match(open.response.warnings, [/destinationrule-placement: internal error \(boom\); request allowed/]);
  const closed = (
    await post(app({ policies: [broken], config: { onError: 'deny' } }).app, '/validate', body)
  ).json<AdmissionReviewResponse>();
  t.equal(closed.response.allowed, false);
  t.match(closed.response.status?.message, /internal error \(boom\); denied by onError: deny/);
});

t.test("a server error is answered with a 500 and logged at error by meshguard's logger", async (t) => {
  const lines: string[] = [];
  const logger = pino({ level: 'info', base: null }, { write: (line: string) => void lines.push(line) });
  const { app: a } = app({ logger });
  // Any route of the app goes through its error handler; this one fails as a bug would.
  a.get('/broken', async () => {
    throw new Error('boom');
  });
  const res = await a.inject({ method: 'GET', url: '/broken' });
  t.equal(res.statusCode, 500);
  t.match(res.json(), { statusCode: 500, error: 'Internal Server Error', message: 'boom' });
  t.match(
    lines.map((l) => JSON.parse(l) as unknown),
    [{ level: 50, msg: 'request failed', method: 'GET', url: '/broken', err: { message: 'boom' } }],
  );
});

t.test('a configuration change applies to the next request', async (t) => {
  const { app: a, store } = app();
  const body = review('destinationrule-create-myservice.validate.json');
  t.equal((await post(a, '/validate', body)).json<AdmissionReviewResponse>().response.allowed, false);
  t.strictSame(store.setOverlay('mode: warn', 'test overlay'), []);
  t.equal((await post(a, '/validate', body)).json<AdmissionReviewResponse>().response.allowed, true);
  t.match(store.setOverlay('mode: loud', 'bad overlay'), ['mode: must be one of enforce, warn']);
  t.equal(
    (await post(a, '/validate', body)).json<AdmissionReviewResponse>().response.allowed,
    true,
    'last good configuration stays',
  );
  store.setOverlay(null, 'gone');
  t.equal(
    (await post(a, '/validate', body)).json<AdmissionReviewResponse>().response.allowed,
    false,
    'back to the base',
  );
});

t.test('health and readiness', async (t) => {
  let reason: string | null = 'caches not synced';
  const { app: a } = app({ notReady: () => reason });
  t.equal((await a.inject('/healthz')).statusCode, 200);
  const notReady = await a.inject('/readyz');
  t.equal(notReady.statusCode, 503);
  t.match(notReady.json(), { reason: 'caches not synced' });
  reason = null;
  t.match((await a.inject('/readyz')).json(), { status: 'ready', configGeneration: 1 });
});

t.test('while draining, every answer asks the client to close its keep-alive connection', async (t) => {
  let draining = false;
  const { app: a } = app({ draining: () => draining });
  const pod = review('pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json');
  const answers = () =>
    Promise.all([
      post(a, '/mutate', pod),
      post(a, '/validate', review('destinationrule-create-myservice.validate.json')),
      post(a, '/mutate', { kind: 'NotAReview' }),
      a.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'text/plain' }, payload: 'x' }),
      a.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: '{' }),
      a.inject({ method: 'GET', url: '/readyz' }),
      a.inject({ method: 'GET', url: '/healthz' }),
      a.inject({ method: 'GET', url: '/nowhere' }),
    ]);
  // fastify closes the connection after a body its parser refused (it may hold more data), draining or not.
  for (const [i, res] of (await answers()).entries())
    if (i !== 4) t.not(res.headers.connection, 'close', `${res.statusCode}: kept alive before the drain`);
  draining = true;
  const during = await answers();
  t.strictSame(
    during.map((r) => r.statusCode),
    [200, 200, 400, 415, 400, 503, 200, 404],
  );
  for (const res of during)
    t.equal(res.headers.connection, 'close', `${res.statusCode}: connection: close while draining`);
});

t.test('decision lines: one per decision that is not a pass, with the request and decision fields', async (t) => {
  const lines = (level: string) => {
    const out: string[] = [];
    return { out, logger: pino({ level, base: null }, { write: (line: string) => void out.push(line) }) };
  };
  const pod = review('pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json');
  const info = lines('info');
  await post(app({ logger: info.logger }).app, '/mutate', pod);
  const entries = info.out.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.strictSame(
    entries.map((e) => [e.policy, e.result]),
    [
      ['hold-application-until-proxy-starts', 'mutate'],
      ['probe-port-exclusion', 'mutate'],
    ],
  );
  for (const [i, e] of entries.entries()) {
    t.match(e, {
      level: 30,
      msg: 'decision',
      uid: pod.request.uid,
      kind: 'Pod',
      namespace: 'shop',
      name: 'nginx-deployment-basic-5bc5489d6c-',
      operation: 'CREATE',
      dryRun: false,
      mode: 'enforce',
      subject: 'object',
    });
    t.equal(info.out[i]?.match(/"name":/g)?.length, 1, 'no key twice in a line');
  }
  const debug = lines('debug');
  await post(app({ logger: debug.logger }).app, '/mutate', pod);
  const parsed = debug.out.map((l) => JSON.parse(l) as { result: string; reason?: string });
  const results = parsed.map((l) => l.result);
  t.ok(
    results.includes('skip') && results.filter((r) => r === 'mutate').length === 2,
    'passes and skips too, at debug',
  );
  t.ok(
    parsed.filter((l) => l.result === 'skip').every((l) => typeof l.reason === 'string' && l.reason.length > 0),
    'every skip says why',
  );
  const warn = lines('warn');
  await post(app({ logger: warn.logger }).app, '/mutate', pod);
  t.strictSame(warn.out, [], 'nothing at warn');

  // The request's fields are written as JSON text by hand: escapes, a field left out, a name that is not a string.
  for (const name of ['a"b\\c\nü\u0001\ud800', 7]) {
    const odd = structuredClone(pod) as unknown as {
      request: { dryRun?: boolean; object: { metadata: { name?: unknown; generateName?: string } } };
    };
    delete odd.request.dryRun;
    delete odd.request.object.metadata.generateName;
    odd.request.object.metadata.name = name;
    const out = lines('info');
    await post(app({ logger: out.logger }).app, '/mutate', odd);
    t.equal(out.out.length, 2, `${JSON.stringify(name)}: two lines`);
    for (const line of out.out) {
      const e = JSON.parse(line) as Record<string, unknown>;
      t.strictSame(
        Object.keys(e),
        [
          'level',
          'time',
          'uid',
          'kind',
          'namespace',
          'name',
          'operation',
          'policy',
          'result',
          'mode',
          'subject',
          'msg',
        ],
        'no dryRun when the review has none',
      );
      t.equal(e.name, name, `${JSON.stringify(name)}: the name as it was`);
    }
  }
});

t.test('the duration histogram: every answered review observed once, buckets cumulative', async (t) => {
  const { app: a, metrics } = app();
  for (let i = 0; i < 3; i++)
    await post(a, '/mutate', review('pod-create-nginx-deployment-basic-5bc5489d6c.mutate.json'));
  await post(a, '/validate', review('destinationrule-create-myservice.validate.json'));
  const text = await metrics.registry.metrics();
  t.match(text, /# TYPE meshguard_admission_duration_seconds histogram/);
  for (const [endpoint, n] of [
    ['mutate', 3],
    ['validate', 1],
  ] as const) {
    const buckets = [
      ...text.matchAll(
        new RegExp(`meshguard_admission_duration_seconds_bucket\\{le="([^"]+)",endpoint="${endpoint}"\\} (\\d+)`, 'g'),
      ),
    ].map((m) => [m[1], Number(m[2])] as const);
    t.strictSame(
      buckets.map(([le]) => le),
      ['0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.1', '1', '+Inf'],
    );
    t.ok(
      buckets.every(([, c], i) => i === 0 || c >= (buckets[i - 1]?.[1] ?? 0)),
      `${endpoint}: cumulative`,
    );
    t.equal(buckets.at(-1)?.[1], n, `${endpoint}: +Inf is the count`);
    t.match(text, new RegExp(`meshguard_admission_duration_seconds_count\\{endpoint="${endpoint}"\\} ${n}\\n`));
    const sum = Number(
      new RegExp(`meshguard_admission_duration_seconds_sum\\{endpoint="${endpoint}"\\} ([0-9.e-]+)`).exec(text)?.[1],
    );
    t.ok(sum > 0 && sum < n, `${endpoint}: sum of ${n} durations in seconds (${sum})`);
  }
  const json = await metrics.registry.getMetricsAsJSON();
  t.ok(
    json.some((m) => m.name === 'meshguard_admission_duration_seconds' && m.values.length === 2 * 13),
    'JSON form too',
  );
});

t.test('the duration histogram puts a duration in the first bucket whose bound is not below it', async (t) => {
  const metrics = createMetrics();
  for (const seconds of [0.0003, 0.0005, 2]) metrics.observeDuration('mutate', seconds);
  const text = await metrics.registry.metrics();
  const count = (le: string) =>
    Number(new RegExp(`_bucket\\{le="${le.replace('+', '\\+')}",endpoint="mutate"\\} (\\d+)`).exec(text)?.[1]);
  t.strictSame(['0.00025', '0.0005', '0.001', '1', '+Inf'].map(count), [0, 2, 2, 2, 3]);
  t.match(text, /_sum\{endpoint="mutate"\} 2\.0008/);
});
