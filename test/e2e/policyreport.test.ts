// `meshguard audit --output policyreport` against a real API server that serves the published
// PolicyReport CRDs: OpenReports' (github.com/openreports/reports-api) and the policy working
// group's wgpolicyk8s.io ones (as Kyverno ships them), both taken from their Go modules. The reports
// are created with strict field validation, as `kubectl apply` sends them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import yaml from 'js-yaml';
import t from 'tap';
import { packageRoot } from '../../src/paths.js';
import { apiRequest, startCluster } from './cluster.js';

// Pinned: the CRDs the reports are checked against.
const OPENREPORTS = 'github.com/openreports/reports-api@v0.2.1';
const KYVERNO = 'github.com/kyverno/kyverno@v1.19.1';

/** The directory of a Go module version, downloaded through the module proxy (cached by Go). */
function moduleDir(module: string): string {
  const r = spawnSync('go', ['mod', 'download', '-json', module], {
    cwd: mkdtempSync(join(tmpdir(), 'meshguard-gomod-')),
    encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=mod', GO111MODULE: 'on' },
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`go mod download ${module}: ${r.stderr || r.stdout}`);
  return (JSON.parse(r.stdout) as { Dir: string }).Dir;
}

const crdFiles = [
  join(moduleDir(OPENREPORTS), 'config/crd/openreports.io_reports.yaml'),
  join(moduleDir(OPENREPORTS), 'config/crd/openreports.io_clusterreports.yaml'),
  join(moduleDir(KYVERNO), 'config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml'),
  join(moduleDir(KYVERNO), 'config/crds/policyreport/wgpolicyk8s.io_clusterpolicyreports.yaml'),
];

const cluster = await startCluster({ waitForControllers: false });
t.teardown(() => cluster.stop());

/** One request to the API server as the admin; an empty body reads as {}. */
async function api(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await apiRequest(cluster, method, path, body);
  return { status: r.status, body: (r.body ?? {}) as Record<string, unknown> };
}

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  results?: unknown[];
}

/** The collection path of an object (plural: lowercase kind + s, as all kinds here are). */
function collection(o: Obj): string {
  const group = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  const plural = o.kind.toLowerCase() + (o.kind.endsWith('s') ? 'es' : 's');
  return `${group}${o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : ''}/${plural}`;
}

async function create(o: Obj): Promise<{ status: number; body: Record<string, unknown> }> {
  return api('POST', `${collection(o)}?fieldValidation=Strict`, o);
}

t.before(async () => {
  for (const file of crdFiles) {
    const crd = yaml.load(readFileSync(file, 'utf8')) as Obj;
    const r = await create(crd);
    if (r.status !== 201) throw new Error(`CRD ${crd.metadata.name}: ${r.status} ${JSON.stringify(r.body)}`);
    for (let i = 0; ; i++) {
      const got = await api('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      const conditions = (got.body.status as { conditions?: { type: string; status: string }[] })?.conditions ?? [];
      if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 100) throw new Error(`CRD ${crd.metadata.name} not Established`);
      await sleep(100);
    }
  }
  // The FAQ examples: a misplaced DestinationRule (a denial) and two colliding ExternalName Services.
  for (const file of ['namespaces.yaml', 'destinationrule.yaml', 'databases.yaml']) {
    for (const o of yaml.loadAll(readFileSync(join(packageRoot, 'examples/faq', file), 'utf8')) as Obj[]) {
      if (o.metadata.namespace && o.metadata.namespace !== 'default' && file !== 'namespaces.yaml')
        await create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: o.metadata.namespace } });
      const r = await create(o);
      if (r.status !== 201 && r.status !== 409) throw new Error(`${o.kind} ${o.metadata.name}: ${r.status}`);
    }
  }
});

/** The FAQs' mesh (Istio 1.11): ExternalName Services still get listeners of their own there. */
const faqConfig = join(mkdtempSync(join(tmpdir(), 'meshguard-audit-')), 'config.yaml');
writeFileSync(faqConfig, 'mesh: {istioVersion: "1.11"}\n');

const audit = (args: string[]) =>
  spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(packageRoot, 'src/cli.ts'),
      'audit',
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--config',
      faqConfig,
      ...args,
    ],
    { encoding: 'utf8', cwd: packageRoot },
  );

interface Result {
  policy: string;
  result: string;
  message?: string;
  resources: { kind: string; namespace?: string; name: string }[];
}
type Summary = Record<'pass' | 'fail' | 'warn' | 'error' | 'skip', number>;

/** The one result of `policy` on an object, from the report of its namespace. */
function resultOf(reports: readonly Obj[], namespace: string, kind: string, name: string, policy: string) {
  const report = reports.find((o) => o.metadata.namespace === namespace);
  const matching = ((report?.results ?? []) as Result[]).filter(
    (r) => r.policy === policy && r.resources.some((o) => o.kind === kind && o.name === name),
  );
  return matching.length === 1 ? matching[0] : undefined;
}

for (const reportApi of ['openreports.io/v1alpha1', 'wgpolicyk8s.io/v1alpha2']) {
  t.test(`audit --output policyreport --report-api ${reportApi}: accepted by the API server`, async (t) => {
    const r = audit(['--output', 'policyreport', '--report-api', reportApi]);
    t.equal(r.status, 1, `the misplaced DestinationRule would be denied: ${r.stderr}`);
    const reports = yaml.loadAll(r.stdout) as Obj[];
    // The findings the FAQ examples are there to show: an empty or all-pass report fails here.
    const misplaced = resultOf(reports, 'ns1', 'DestinationRule', 'myservice', 'destinationrule-placement');
    t.match(misplaced, { result: 'fail', message: /myservice\.default\.svc\.cluster\.local/ }, 'the DR in ns1: fail');
    for (const [namespace, name, other] of [
      ['shop', 'mysql-a', 'payments/mysql-b'],
      ['payments', 'mysql-b', 'shop/mysql-a'],
    ] as const) {
      t.match(
        resultOf(reports, namespace, 'Service', name, 'externalname-tcp-collision'),
        { result: 'warn', message: new RegExp(`externalname-tcp-collision: .*${other.replace('/', '\\/')}`) },
        `${namespace}/${name}: warns of ${other}, on port 3306`,
      );
    }
    // Each report's summary counts its results: a report that says "pass" while listing a fail fails.
    for (const report of reports) {
      const counted: Summary = { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 };
      for (const res of (report.results ?? []) as Result[]) counted[res.result as keyof Summary]++;
      t.strictSame(
        (report as Obj & { summary?: Summary }).summary,
        counted,
        `${report.kind} ${report.metadata.namespace ?? ''}: summary`,
      );
    }
    for (const report of reports) {
      const created = await create(report);
      t.equal(
        created.status,
        201,
        `${report.kind} ${report.metadata.namespace ?? ''}: ${JSON.stringify(created.body).slice(0, 400)}`,
      );
      const back = await api('GET', `${collection(report)}/${report.metadata.name}`);
      t.strictSame(back.body.results, report.results, 'stored as written: no field pruned');
    }
    // The check can fail: a field the CRD does not have is refused under strict validation.
    const first = reports[0];
    if (first) {
      const bad = await create({
        ...first,
        metadata: { ...first.metadata, name: 'bad' },
        results: [{ policy: 'x', result: 'maybe' }],
      });
      t.equal(bad.status, 422, 'a result outside the enum is refused');
    }
  });
}

t.test('check --kubeconfig: namespace labels and Services the manifests lack come from the cluster', async (t) => {
  const deployment = readFileSync(join(packageRoot, 'examples/faq/workloads.yaml'), 'utf8').split(/^---$/m)[0] ?? '';
  // The FAQs' mesh (Istio 1.11, classic sidecars): the pod policies have findings there.
  const config = join(mkdtempSync(join(tmpdir(), 'meshguard-check-')), 'config.yaml');
  writeFileSync(config, 'mesh: {istioVersion: "1.11"}\n');
  const run = (args: string[]) =>
    spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(packageRoot, 'src/cli.ts'),
        'check',
        '--config',
        config,
        '--output',
        'json',
        ...args,
        '-',
      ],
      {
        encoding: 'utf8',
        cwd: packageRoot,
        input: deployment,
      },
    );
  type Out = { reports: { findings: { policy: string; unverified?: string }[] }[] };
  // A classic sidecar on 1.11 starts after the app, and its tcpSocket probe is not rewritten.
  const expected = ['hold-application-until-proxy-starts', 'probe-port-exclusion'];
  const policiesOf = (found: Out['reports'][number]['findings']) => [...new Set(found.map((f) => f.policy))];
  const alone = JSON.parse(run([]).stdout) as Out;
  const assumed = alone.reports[0]?.findings ?? [];
  t.ok(
    expected.every((p) => policiesOf(assumed).includes(p)),
    `without the cluster: ${policiesOf(assumed).join(', ')}`,
  );
  t.ok(
    assumed.every((f) => f.unverified),
    'without the cluster: not verified',
  );
  const live = run(['--kubeconfig', cluster.kubeconfigPath]);
  t.equal(live.status, 0, live.stderr);
  const found = (JSON.parse(live.stdout) as Out).reports[0]?.findings ?? [];
  t.ok(
    expected.every((p) => policiesOf(found).includes(p)),
    `with the cluster: ${policiesOf(found).join(', ')}`,
  );
  t.notOk(
    found.some((f) => f.unverified),
    'namespace shop and its istio-injection label read from the cluster',
  );
});
