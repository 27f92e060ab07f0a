// Objects crafted to make the webhook slow or its answers huge. Mutating admission sees an object
// before the API server validates it, so anyone who may create a Pod can send any of these. While
// a request blocks the event loop, every other admission waits, times out and, with
// failurePolicy: Ignore, goes through unchecked. Each case below took from seconds to minutes, or
// answered hundreds of MiB, before its fix; the budgets are generous for a loaded CI machine.
import t from 'tap';
import type { KubeObject } from '../src/admission/types.js';
import { answerJson, responseOf } from '../src/admission/respond.js';
import { evaluate } from '../src/engine/evaluate.js';
import { compileScope } from '../src/config/scope.js';
import { MAX_WARNING, MAX_WARNINGS, line, verdictOf } from '../src/engine/verdict.js';
import { appendPorts } from '../src/mesh/ports.js';
import { parseProxyConfig, withProxyConfigKey } from '../src/mesh/proxy-config.js';
import { MAX_PROXY_CONFIG } from '../src/mesh/proxy-config.js';
import { policies } from '../src/policies/index.js';
import { configOf, engineOf, requestFor } from './support.js';

const BUDGET_MS = 3000;
const cluster = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] },
  },
  // Many Services selecting the pod, each with many ports.
  ...Array.from({ length: 500 }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `s${i}`, namespace: 'shop' },
    spec: {
      selector: { app: 'web' },
      ports: Array.from({ length: 20 }, (_, p) => ({ port: 10000 + p, targetPort: `n${i}-${p}` })),
    },
  })),
];
const engine = engineOf({
  policies,
  cluster,
  servicesComplete: true,
  // The FAQs' mesh (Istio 1.11: classic sidecars, tcpSocket probes not rewritten): every pod
  // policy does its heaviest work there.
  config: configOf({
    mesh: { istioVersion: '1.11' },
    policies: { 'job-sidecar-quit': { requireShellCommand: false } },
  }),
});
const job = [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'u', controller: true }];
const pod = (metadata: Record<string, unknown>, containers: unknown[]): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', ...metadata },
  spec: { restartPolicy: 'Never', containers },
});

/** Runs the engine as the server does and returns the answer's size and the time it took. */
function admit(object: KubeObject, stage: 'mutate' | 'validate' = 'mutate') {
  const started = performance.now();
  const decisions = evaluate({ request: requestFor(object, { namespace: 'shop' }), stage }, engine);
  const verdict = verdictOf(decisions, engine.scope.config);
  const answer = answerJson({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: responseOf('u', verdict),
  });
  return { ms: performance.now() - started, bytes: answer.length, verdict, decisions };
}

const spaces = ' '.repeat(200_000);

t.test('a long run of separators at the end of excludeInboundPorts (quadratic regex)', async (t) => {
  const r = admit(
    pod({ annotations: { 'traffic.sidecar.istio.io/excludeInboundPorts': `${spaces}x` } }, [
      { name: 'a', livenessProbe: { tcpSocket: { port: 8087 } } },
    ]),
  );
  t.ok(r.ms < BUDGET_MS, `${Math.round(r.ms)} ms`);
  t.equal(
    appendPorts(`8080${spaces}x , ,\n`, '8087'),
    `8080${spaces}x,8087`,
    'inner text kept, trailing separators dropped',
  );
  t.equal(appendPorts(' , ', '1,2'), '1,2');
  t.equal(appendPorts(undefined, '1'), '1');
});

t.test(
  'long whitespace in a message quoting the user: probe port name, container name, host (quadratic regex)',
  async (t) => {
    const cases: [string, KubeObject, 'mutate' | 'validate'][] = [
      ['probe port name', pod({}, [{ name: 'a', livenessProbe: { tcpSocket: { port: `${spaces}x` } } }]), 'mutate'],
      ['container name', pod({ ownerReferences: job }, [{ name: `${spaces}x` }]), 'mutate'],
      [
        'DestinationRule host',
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'DestinationRule',
          metadata: { name: 'd', namespace: 'ns1' },
          spec: { host: `a.${spaces}.svc.cluster.local` },
        },
        'validate',
      ],
    ];
    for (const [what, object, stage] of cases) {
      const r = admit(object, stage);
      t.ok(r.ms < BUDGET_MS, `${what}: ${Math.round(r.ms)} ms`);
      for (const w of [...r.verdict.warnings, ...r.verdict.denials])
        t.ok(w.length <= MAX_WARNING, `${what}: ${w.length} characters`);
    }
    t.equal(
      line('p', 'a \n\t b  c\r\n'),
      'meshguard p: a b  c ',
      'whitespace runs with a line break become one space, others stay',
    );
    t.equal(line('p', `x${' '.repeat(300)}y`).length, MAX_WARNING);
  },
);

t.test('many containers, probes and Service ports (probe ports × Service ports)', async (t) => {
  const containers = Array.from({ length: 30_000 }, (_, i) => ({
    name: `c${i}`,
    ports: [{ containerPort: i + 1, name: `p${i}` }],
    livenessProbe: { tcpSocket: { port: i + 1 } },
  }));
  const r = admit(pod({ labels: { app: 'web' } }, containers));
  t.ok(r.ms < BUDGET_MS, `${Math.round(r.ms)} ms`);
  t.equal(r.verdict.patch.length, 1, 'one annotation');
});

t.test('a Service selecting the pod by port name still keeps that port captured', async (t) => {
  // The index built for speed must find what the scan found: by number, by name, the first Service.
  const r = admit(
    pod({ labels: { app: 'web' } }, [
      {
        name: 'a',
        ports: [
          { containerPort: 8080, name: 'http' },
          { containerPort: 8087, name: 'health' },
        ],
        livenessProbe: { tcpSocket: { port: 'http' } },
        readinessProbe: { tcpSocket: { port: 8087 } },
      },
    ]),
  );
  t.match(r.verdict.warnings, [/probe port 8080 also serves Service web/]);
  t.match(JSON.stringify(r.verdict.patch), /"8087"/);
});

t.test('thousands of Job containers: one warning, no patch', async (t) => {
  const many = admit(
    pod(
      { ownerReferences: job },
      Array.from({ length: 50_000 }, (_, i) => ({ name: `c${i}`, command: ['sh'] })),
    ),
  );
  t.ok(many.ms < BUDGET_MS, `${Math.round(many.ms)} ms`);
  t.ok(many.bytes < 64 * 1024, `answer of ${many.bytes} bytes`);
  t.match(many.verdict.warnings, [
    /job-sidecar-quit: 50000 app containers: the first to finish would stop istio-proxy/,
  ]);
  t.notOk(
    many.verdict.patch.some((op) => op.path.startsWith('/spec/containers/')),
    'none wrapped',
  );
  const one = admit(pod({ ownerReferences: job }, [{ name: 'c', command: ['sh'] }]));
  t.equal(
    one.verdict.patch.filter((op) => op.path.startsWith('/spec/containers/')).length,
    2,
    'one app container is wrapped as usual',
  );
});

t.test('thousands of warnings: at most MAX_WARNINGS come back', async (t) => {
  const r = admit(
    pod(
      {},
      Array.from({ length: 30_000 }, (_, i) => ({ name: `c${i}`, livenessProbe: { tcpSocket: { port: `n${i}` } } })),
    ),
  );
  t.ok(r.ms < BUDGET_MS, `${Math.round(r.ms)} ms`);
  t.equal(r.verdict.warnings.length, MAX_WARNINGS);
  // 30 000 probe warnings, and termination-drain's: Istio 1.11 has no EXIT_ON_ZERO_ACTIVE_CONNECTIONS.
  t.equal(r.verdict.warnings.at(-1), `meshguard: ${30_001 - MAX_WARNINGS + 1} more warnings not shown`);
});

t.test('YAML aliases in proxy.istio.io/config: a "billion laughs" of a few hundred bytes', async (t) => {
  const lines = ['l0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 40; i++)
    lines.push(
      `l${i}: &l${i} [${Array(10)
        .fill(`*l${i - 1}`)
        .join(', ')}]`,
    );
  for (const text of [lines.join('\n'), `{${lines.join(', ')}}`]) {
    const r = admit(pod({ annotations: { 'proxy.istio.io/config': text } }, [{ name: 'a' }]));
    t.ok(r.ms < BUDGET_MS, `${text.length} bytes: ${Math.round(r.ms)} ms`);
    t.ok(r.bytes < 64 * 1024, `answer of ${r.bytes} bytes`);
    t.equal(r.verdict.patch.length, 1, 'patched');
  }
  // Cycles and shared nodes compare as YAML means them.
  for (const text of ['a: &a [*a]', 'a: &a {b: 1}\nc: *a', '{a: &a [1], b: *a}']) {
    const parsed = parseProxyConfig(text);
    t.ok(parsed.ok, text);
    if (!parsed.ok) continue;
    const out = withProxyConfigKey(text, parsed.value, 'holdApplicationUntilProxyStarts', true);
    const again = parseProxyConfig(out);
    t.ok(
      again.ok &&
        again.value.holdApplicationUntilProxyStarts === true &&
        Object.keys(again.value).length === Object.keys(parsed.value).length + 1,
      `${JSON.stringify(text)} → ${JSON.stringify(out)}`,
    );
  }
});

t.test('a proxy.istio.io/config larger than a ProxyConfig needs is left alone', async (t) => {
  const big = `{a: [${Array(MAX_PROXY_CONFIG / 4)
    .fill('[]')
    .join(', ')}]}`;
  const r = admit(pod({ annotations: { 'proxy.istio.io/config': big } }, [{ name: 'a' }]));
  t.ok(r.ms < BUDGET_MS, `${Math.round(r.ms)} ms`);
  t.equal(r.verdict.patch.length, 0);
  t.match(r.verdict.warnings, [
    /hold-application-until-proxy-starts: proxy.istio.io\/config is larger than 16 KiB, more than a ProxyConfig needs; left unchanged/,
  ]);
  const justUnder = `a: [${Array(Math.floor((MAX_PROXY_CONFIG - 10) / 3))
    .fill('{}')
    .join(',')}]`;
  t.ok(justUnder.length <= MAX_PROXY_CONFIG);
  const u = admit(pod({ annotations: { 'proxy.istio.io/config': justUnder } }, [{ name: 'a' }]));
  t.ok(u.ms < BUDGET_MS, `${Math.round(u.ms)} ms`);
  t.equal(u.verdict.patch.length, 1, 'under the limit: patched');
});

t.test('metadata or annotations that are not maps: no policy throws, no patch that cannot apply', async (t) => {
  // The API server never sends these; anyone else who reaches the webhook can. setAnnotation used
  // `key in annotations`, which throws on a string, and an add under a non-object cannot apply.
  const containers = [{ name: 'a', command: ['sh', '-c', 'true'], livenessProbe: { tcpSocket: { port: 8087 } } }];
  for (const metadata of [
    -1,
    true,
    'x',
    null,
    [],
    { annotations: 'a string' },
    { annotations: 7 },
    { annotations: ['a'] },
    { annotations: true },
  ]) {
    const object = { apiVersion: 'v1', kind: 'Pod', metadata, spec: { containers } } as unknown as KubeObject;
    const r = admit(object);
    t.strictSame(
      r.decisions.filter((d) => d.outcome.result === 'error').map((d) => d.policy),
      [],
      `${JSON.stringify(metadata)}: no policy threw`,
    );
    t.strictSame(
      r.verdict.patch.filter((op) => op.path.startsWith('/metadata')),
      [],
      `${JSON.stringify(metadata)}: no annotation patch`,
    );
  }
});

t.test('a DestinationRule whose name is a deeply nested list: judged, not a stack overflow', async (t) => {
  // `${name}` turned the list into text recursively: the policy threw and the request was allowed.
  const name = JSON.parse('['.repeat(10_000) + ']'.repeat(10_000)) as unknown;
  const object = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: 'ns1' },
    spec: { host: 'reviews.default.svc.cluster.local' },
  } as unknown as KubeObject;
  const r = admit(object, 'validate');
  t.strictSame(
    r.decisions.filter((d) => d.policy === 'destinationrule-placement').map((d) => d.outcome.result),
    ['fail'],
    'denied as any misplaced rule',
  );
  t.notOk(
    r.decisions.some((d) => d.outcome.result === 'error'),
    'no policy threw (mtls-conflict skips a rule it cannot read)',
  );
  t.equal(r.verdict.allowed, false);
});

t.test('a namespace longer than any namespace name, against globs with several stars', async (t) => {
  // Only a caller other than the API server sends one. picomatch's regex for `*-*-*-tmp`
  // backtracks cubically (11 s on 4 000 dashes), and each name stayed in the override cache.
  const scope = compileScope(
    configOf({
      excludeNamespaces: ['kube-system', '*-*-*-tmp'],
      overrides: [{ namespaces: ['team-*-*-*'], mode: 'warn' }],
    }),
  );
  const started = performance.now();
  for (const ns of ['-'.repeat(100_000) + '/', `team-${'-'.repeat(100_000)}/`]) {
    t.equal(scope.excluded(ns), false, 'not excluded');
    t.equal(scope.modeOf('destinationrule-placement', ns), 'enforce', 'no override');
  }
  t.ok(performance.now() - started < BUDGET_MS, `${Math.round(performance.now() - started)} ms`);
  t.equal(scope.excluded('a-b-c-tmp'), true, 'real names still match');
  t.equal(scope.modeOf('destinationrule-placement', 'team-a-b-c'), 'warn');
});
