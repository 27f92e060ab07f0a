// `meshguard doctor` against the real stack: Istio's injector webhooks installed by real Helm from
// Istio's istio-discovery chart, with istiod answering them; meshguard installed by its chart
// (release.ts: its webhooks call the release's Service, whose EndpointSlice leads to the local
// meshguard serve). Healthy after the install, with the admin's credentials and with the chart's
// own RBAC; then each problem made on purpose, found with its fix (exit 1), and where the fix is
// one kubectl command, that command run as printed and the cluster healthy again.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { AdmissionregistrationV1Api, CoreV1Api, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import t from 'tap';
import { packageRoot } from '../../src/paths.js';
import { generateCa, generateServing } from '../../src/tls/generate.js';
import { freePorts, startCluster } from './cluster.js';
import { installIstioBase, installIstiod, ISTIO_NS } from './istiod.js';
import { installRelease, RELEASE } from './release.js';
import { helm, istioCharts, kubectl } from './tools.js';

const execFileAsync = promisify(execFile);
const NS = 'meshguard-system';
/** A subtest's `t` (the last overload of t.test takes just the callback). */
type Sub = Parameters<Parameters<typeof t.test>[0]>[0];

const cluster = await startCluster({ istioCrds: false });
t.teardown(() => cluster.stop());
const kc = cluster.kubeConfig;
const core = kc.makeApiClient(CoreV1Api);
const admission = kc.makeApiClient(AdmissionregistrationV1Api);

await installIstioBase(cluster);
const istiod = await installIstiod(cluster, '', { ENABLE_NATIVE_SIDECARS: 'false' });
// istiod built from source says version 1.0.0 (chart and image): the configuration declares which
// Istio it is, as the README says for such a mesh (doctor finds the undeclared case, below).
const release = await installRelease(cluster, NS, ['--set-string', 'config.mesh.istioVersion=1.31']);
t.teardown(() => release.served.proc.kill('SIGKILL'));
for (const [name, labels] of [
  ['shop', { 'istio-injection': 'enabled' }],
  ['payments', { 'istio.io/rev': 'default' }],
] as const)
  await core.createNamespace({ body: { metadata: { name, labels } } });

interface Finding {
  status: 'ok' | 'problem' | 'could-not-check';
  object?: string;
  what: string;
  why?: string;
  fix?: string;
}
interface Json {
  result: string;
  counts: Record<string, number>;
  checks: { id: string; status: string; title: string; findings: Finding[] }[];
  meshProfile: { discoveredFrom: string; profile: { istioVersion: string; origins: Record<string, string> } };
}
interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** meshguard doctor as a user runs it (the compiled CLI), never throwing on its exit code. */
async function doctor(args: string[], kubeconfig = cluster.kubeconfigPath): Promise<Run> {
  const argv = [join(packageRoot, 'dist/src/cli.js'), 'doctor', '--kubeconfig', kubeconfig, ...args];
  try {
    const r = await execFileAsync(process.execPath, argv, { encoding: 'utf8', env: { PATH: process.env.PATH } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function report(): Promise<{ code: number; json: Json; stderr: string }> {
  const r = await doctor(['--output', 'json']);
  return { code: r.code, json: JSON.parse(r.stdout) as Json, stderr: r.stderr };
}

const problems = (json: Json, id: string) =>
  json.checks.find((c) => c.id === id)?.findings.filter((f) => f.status === 'problem') ?? [];

/** The one problem doctor reports, which must be of check `id`. */
async function theProblem(t: Sub, id: string): Promise<Finding> {
  const { code, json } = await report();
  t.equal(code, 1, 'exit 1: a problem found');
  const all = json.checks.flatMap((c) =>
    c.findings.filter((f) => f.status === 'problem').map((f) => ({ id: c.id, f })),
  );
  t.strictSame(
    all.map((p) => p.id),
    [id],
    `one problem, in ${id}: ${all.map((p) => `${p.f.object}: ${p.f.what}`).join(' | ')}`,
  );
  const found = problems(json, id)[0] ?? { status: 'ok', what: '' };
  t.ok(found.why && found.fix, 'it says why it matters and the fix');
  return found;
}

async function healthy(t: Sub, what: string): Promise<void> {
  const { code, json } = await report();
  const left = json.checks.flatMap((c) => c.findings.filter((f) => f.status !== 'ok'));
  t.equal(code, 0, `${what}: healthy (${left.map((f) => `${f.object}: ${f.what}`).join(' | ')})`);
}

/**
 * The words of a fix's first command as a POSIX shell splits them ('…' quoted, nothing else
 * special in what doctor prints): up to the prose that follows it ("(the chart's selector)", ", or …").
 */
function firstCommand(fix: string): string[] {
  const words: string[] = [];
  for (const m of fix.matchAll(/'([^']*)'|(\S+)/g)) {
    const [, quoted, plain] = m;
    if (quoted !== undefined) {
      words.push(quoted);
      continue;
    }
    if (plain === undefined || plain.startsWith('(') || plain === '&&') break;
    const end = /[,;]$/.test(plain);
    words.push(end ? plain.slice(0, -1) : plain);
    if (end) break;
  }
  return words;
}

/** Runs a fix's kubectl command(s) (joined by &&) as printed. */
async function runFix(t: Sub, fix: string): Promise<void> {
  for (const part of fix.split(' && ')) {
    const [tool, ...args] = firstCommand(part);
    t.equal(tool, 'kubectl', `the fix is a kubectl command: ${part.slice(0, 120)}`);
    const r = await kubectl(cluster.kubeconfigPath, args);
    t.equal(r.status, 0, `kubectl ${args.slice(0, 3).join(' ')}…: ${r.stderr}`);
  }
}

t.test('healthy after helm install beside Istio', async (t) => {
  const text = await doctor([]);
  t.equal(text.code, 0, `exit 0:\n${text.stdout}${text.stderr}`);
  t.equal(text.stderr, '');
  t.match(text.stdout, /^meshguard doctor: cluster https:\/\/127\.0\.0\.1:\d+/);
  t.match(text.stdout, /\nhealthy: \d+ ok, 0 problems, 0 could not be checked\n$/);
  t.match(text.stdout, /sorts before istio-sidecar-injector: Istio's injector sees meshguard's changes/);
  t.match(text.stdout, /the caBundle verifies the certificate served for meshguard\.meshguard-system\.svc/);
  // The profile as meshguard mesh prints it, with where each setting came from.
  t.match(text.stdout, /\n {4}mesh profile, discovered from the cluster/);
  t.match(text.stdout, /Istio 1\.31 \(configured\)/);
  t.comment(text.stdout);

  const { json } = await report();
  t.equal(json.result, 'healthy');
  t.strictSame(
    json.checks.map((c) => [c.id, c.status]),
    [
      ['webhook-order', 'ok'],
      ['webhook-settings', 'ok'],
      ['serving-certificate', 'ok'],
      ['injector-endpoints', 'ok'],
      ['namespace-revisions', 'ok'],
      ['mesh-profile', 'ok'],
    ],
  );
  t.match(json.checks[3]?.findings[0]?.what, /answers TLS at 127\.0\.0\.1:\d+/, "istiod's injection URL");
  t.match(json.checks[4]?.findings[0]?.what, /2 namespaces labelled for injection, each served: payments, shop/);
  t.equal(json.meshProfile.profile.origins.istioVersion, 'configured');
});

t.test("healthy with the chart's RBAC: doctor reads only what the chart grants meshguard", async (t) => {
  const r = await doctor([], join(cluster.logDir, 'meshguard.kubeconfig'));
  t.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  t.match(r.stdout, /credentials: .*meshguard\.kubeconfig/);
});

// --- each problem, made on purpose -------------------------------------------------------------

const bare = (o: V1MutatingWebhookConfiguration): V1MutatingWebhookConfiguration => ({
  ...o,
  metadata: { name: o.metadata?.name, labels: o.metadata?.labels, annotations: o.metadata?.annotations },
});

t.test("meshguard's mutating configuration renamed to sort after Istio's injector", async (t) => {
  const original = bare(await admission.readMutatingWebhookConfiguration({ name: '0-meshguard' }));
  await admission.createMutatingWebhookConfiguration({
    body: { ...original, metadata: { ...original.metadata, name: 'zz-meshguard' } },
  });
  await admission.deleteMutatingWebhookConfiguration({ name: '0-meshguard' });
  const p = await theProblem(t, 'webhook-order');
  t.equal(p.object, 'MutatingWebhookConfiguration zz-meshguard');
  t.match(p.what, "sorts after istio-sidecar-injector: the API server calls Istio's injector first");
  t.match(p.why, 'name order');
  t.match(p.fix, `helm upgrade ${RELEASE} charts/meshguard -n ${NS} --reuse-values restores it`);
  t.match(p.fix, 'set metadata.name: 0-meshguard');
  await admission.createMutatingWebhookConfiguration({ body: original });
  await admission.deleteMutatingWebhookConfiguration({ name: 'zz-meshguard' });
  await healthy(t, 'the chart name back');
});

/** Applies a JSON patch to one of meshguard's configurations with kubectl, as a user would. */
async function patch(t: Sub, resource: string, name: string, ops: unknown[]): Promise<void> {
  const r = await kubectl(cluster.kubeconfigPath, [
    'patch',
    resource,
    name,
    '--type',
    'json',
    '-p',
    JSON.stringify(ops),
  ]);
  t.equal(r.status, 0, r.stderr);
}

/**
 * A problem made with a JSON patch to one of meshguard's configurations: doctor finds it (only it,
 * in `check`, as `expected` says), and its printed fix, run as printed, makes the cluster healthy.
 */
async function foundAndFixed(
  t: Sub,
  [resource, name]: [string, string],
  ops: unknown[],
  check: string,
  expected: Partial<Record<keyof Finding, string | RegExp>>,
): Promise<void> {
  await patch(t, resource, name, ops);
  const p = await theProblem(t, check);
  t.match(p, expected);
  await runFix(t, p.fix ?? '');
  await healthy(t, 'after the printed fix');
}
const MUTATING: [string, string] = ['mutatingwebhookconfiguration', '0-meshguard'];
const VALIDATING: [string, string] = ['validatingwebhookconfiguration', 'meshguard'];
const set = (path: string, value: unknown) => [{ op: 'replace', path: `/webhooks/${path}`, value }];

t.test("failurePolicy Fail on meshguard's mutating webhook", (t) =>
  foundAndFixed(t, MUTATING, set('0/failurePolicy', 'Fail'), 'webhook-settings', {
    what: 'failurePolicy Fail; the chart installs Ignore',
    why: /would refuse every pod/,
  }),
);

// Called once (Never), 30 s and Istio's 10 s stay under the request timeout; reinvoked, they do not.
t.test('a timeout that outlasts the request: pod creates would time out instead of failing open', (t) =>
  foundAndFixed(
    t,
    MUTATING,
    [...set('0/timeoutSeconds', 30), ...set('0/reinvocationPolicy', 'IfNeeded')],
    'webhook-settings',
    {
      what: "timeoutSeconds 30: a pod create can wait 2×30 s for meshguard and 10 s for Istio's injector",
    },
  ),
);

t.test('kube-system not excluded at the API server', (t) =>
  foundAndFixed(
    t,
    VALIDATING,
    set('0/namespaceSelector', {
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NS] }],
    }),
    'webhook-settings',
    {
      object: 'ValidatingWebhookConfiguration meshguard, webhook validate.meshguard.io',
      what: "namespaceSelector sends kube-system's objects to meshguard",
      fix: /\(the chart's selector\)$/,
    },
  ),
);

t.test("meshguard's own namespace not excluded either", async (t) => {
  await patch(t, 'mutatingwebhookconfiguration', '0-meshguard', [
    { op: 'remove', path: '/webhooks/0/namespaceSelector/matchExpressions/0' },
  ]);
  const { code, json } = await report();
  t.equal(code, 1);
  const found = problems(json, 'webhook-settings');
  t.strictSame(
    found.map((f) => f.what),
    [
      "namespaceSelector sends kube-system's objects to meshguard",
      `namespaceSelector sends meshguard's own namespace ${NS} to meshguard`,
    ],
  );
  t.match(found[1]?.why, 'never comes back');
  await runFix(t, found[0]?.fix ?? '');
  await healthy(t, 'after the printed fix');
});

t.test('a caBundle that does not verify the certificate meshguard serves', async (t) => {
  const other = await generateCa('some other CA', 1);
  // The fix copies the caBundle of meshguard's other webhooks, which verifies the same Service.
  await foundAndFixed(
    t,
    VALIDATING,
    set('1/clientConfig/caBundle', Buffer.from(other.cert).toString('base64')),
    'serving-certificate',
    {
      object: new RegExp(
        `^Service ${NS}/meshguard:443 at [\\d.]+:\\d+, called by meshguard/namespaces\\.meshguard\\.io$`,
      ),
      what: /^the caBundle does not verify the certificate served for meshguard\.meshguard-system\.svc: it is signed by CN=meshguard CA for meshguard\.meshguard-system, and the caBundle holds CN=some other CA$/,
      why: /objects are admitted unchecked/,
      fix: /^kubectl patch validatingwebhookconfiguration meshguard --type json -p '\[\{"op":"add","path":"\/webhooks\/1\/clientConfig\/caBundle"/,
    },
  );
});

t.test('a serving certificate about to expire', async (t) => {
  const dir = release.served.dir;
  const saved = { cert: readFileSync(join(dir, 'tls.crt'), 'utf8'), key: readFileSync(join(dir, 'tls.key'), 'utf8') };
  const soon = await generateServing(
    release.served.ca,
    [release.serverName, `${release.serverName}.cluster.local`],
    10,
  );
  // The key first: meshguard keeps the old pair until the two match (a rotation half written).
  writeFileSync(join(dir, 'tls.key'), soon.key);
  writeFileSync(join(dir, 'tls.crt'), soon.cert);
  let p: Finding | undefined;
  for (let i = 0; i < 50 && !p; i++) {
    const { json } = await report();
    p = problems(json, 'serving-certificate')[0];
    if (!p) await sleep(200);
  }
  t.match(
    p?.what,
    /the certificate served for meshguard\.meshguard-system\.svc verifies, but it expires on \S+, in 9 days \(--min-cert-days 30\)/,
  );
  t.match(p?.fix, `meshguard certs --service meshguard --namespace ${NS} --out DIR --force`);
  const lower = await doctor(['--min-cert-days', '7', '--output', 'json']);
  t.equal(lower.code, 0, '--min-cert-days 7: no problem');
  writeFileSync(join(dir, 'tls.key'), saved.key);
  writeFileSync(join(dir, 'tls.crt'), saved.cert);
  for (let i = 0; i < 50 && problems((await report()).json, 'serving-certificate').length > 0; i++) await sleep(200);
  await healthy(t, 'the certificate back');
});

t.test("an injector whose Service has no ready endpoints, failurePolicy Fail (the FAQs' first section)", async (t) => {
  // Istio's chart as a plain in-cluster install of revision "broken": its webhooks call Service
  // istiod-broken, whose pods never run here.
  const home = join(cluster.logDir, '..');
  const chart = join(istioCharts(), 'istio-control/istio-discovery');
  const install = await helm(
    home,
    ['install', 'istiod-broken', chart, '-n', ISTIO_NS, '--set', 'revision=broken'],
    cluster.kubeconfigPath,
  );
  t.equal(install.status, 0, install.stderr);
  await core.createNamespace({ body: { metadata: { name: 'orders', labels: { 'istio.io/rev': 'broken' } } } });

  const p = await theProblem(t, 'injector-endpoints');
  t.match(
    p.object,
    /^MutatingWebhookConfiguration istio-sidecar-injector-broken \(rev\.namespace\.sidecar-injector\.istio\.io, rev\.object\.sidecar-injector\.istio\.io\) → Service istio-system\/istiod-broken:443$/,
  );
  t.equal(p.what, 'Service istio-system/istiod-broken has no ready endpoints: no istiod answers these webhooks');
  t.match(
    p.why,
    'failurePolicy Fail: the API server refuses every pod created in orders, and every pod whose own labels select it elsewhere',
  );
  t.match(p.fix, 'kubectl -n istio-system get pods -l app=istiod,istio.io/rev=broken');
  t.match(p.fix, 'kubectl delete mutatingwebhookconfiguration istio-sidecar-injector-broken');

  // As people read it: the problem, then why and the fix on lines of their own.
  const text = await doctor([]);
  t.equal(text.code, 1);
  t.match(text.stdout, '\ninjector-endpoints [PROBLEM]: ');
  t.match(text.stdout, `\n  PROBLEM   ${p.object}: ${p.what}\n            why: ${p.why}\n            fix: ${p.fix}\n`);
  t.match(text.stdout, /\nproblems: \d+ ok, 1 problem, 0 could not be checked\n$/);
  t.comment(text.stdout);

  // What the problem says happens, happens: the API server refuses a pod there.
  const refused = await core
    .createNamespacedPod({
      namespace: 'orders',
      body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'example.invalid/app:1' }] } },
    })
    .then(
      () => '',
      (err: unknown) => String((err as { body?: unknown }).body ?? err),
    );
  t.match(
    refused,
    /failed calling webhook \\"rev\.namespace\.sidecar-injector\.istio\.io\\": .*no endpoints available for service \\"istiod-broken\\"/,
    'the pod is refused, as the problem says',
  );
  t.match(
    p.why,
    'failed calling webhook "rev.namespace.sidecar-injector.istio.io": … no endpoints available for service "istiod-broken"',
  );

  const uninstall = await helm(home, ['uninstall', 'istiod-broken', '-n', ISTIO_NS], cluster.kubeconfigPath);
  t.equal(uninstall.status, 0, uninstall.stderr);
  await core.deleteNamespace({ name: 'orders' });
  await healthy(t, 'the revision uninstalled');
});

t.test('a namespace labelled for a revision no webhook serves', async (t) => {
  await core.createNamespace({ body: { metadata: { name: 'legacy', labels: { 'istio.io/rev': '1-20' } } } });
  const p = await theProblem(t, 'namespace-revisions');
  t.equal(p.object, 'Namespace legacy');
  t.equal(p.what, 'labelled istio.io/rev=1-20, which no injector webhook serves (installed: default)');
  t.match(p.why, 'created without a sidecar');
  await runFix(t, p.fix ?? '');
  t.equal((await core.readNamespace({ name: 'legacy' })).metadata?.labels?.['istio.io/rev'], 'default');
  await healthy(t, 'after the printed fix');
});

t.test("a mesh profile meshguard cannot tell: istiod's version undeclared", async (t) => {
  const r = await doctor(['--output', 'json', '--config', join(packageRoot, 'policies/meshguard.yaml')]);
  t.equal(r.code, 1);
  const json = JSON.parse(r.stdout) as Json;
  const [p] = problems(json, 'mesh-profile');
  t.equal(p?.what, 'Deployment istiod: version 1.0 is no Istio release; set mesh.istioVersion');
  t.match(
    p?.fix,
    `helm upgrade ${RELEASE} charts/meshguard -n ${NS} --reuse-values --set-string config.mesh.istioVersion=VALUE`,
  );
  t.match(
    json.checks.find((c) => c.id === 'mesh-profile')?.findings[0]?.what,
    /^configuration from policies\/meshguard\.yaml|configuration from .*meshguard\.yaml/,
  );
});

t.test("istiod's injection URL not answering: could not check from here, exit 2", async (t) => {
  await istiod.proc.stop();
  const r = await report();
  t.equal(r.code, 2, 'exit 2: istiod at its URL could not be reached, nothing else wrong');
  t.match(
    r.stderr,
    /^meshguard: doctor could not check 1 thing \(no problem found otherwise\): MutatingWebhookConfiguration istio-sidecar-injector/,
  );
  t.equal(r.stderr.split('\n').length, 2, 'one line');
});

t.test('an unreachable cluster: exit 2, one line', async (t) => {
  const [port] = await freePorts(1);
  const file = join(cluster.logDir, 'unreachable.kubeconfig');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 'x' } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  );
  const r = await doctor([], file);
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.match(
    r.stderr,
    new RegExp(
      `^meshguard: cluster https://127\\.0\\.0\\.1:${port}: listing MutatingWebhookConfiguration: .*ECONNREFUSED.*\\n$`,
    ),
  );
});
