// The reports of check and audit: one finding model, what is not verified, and each format.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import yaml from 'js-yaml';
import t from 'tap';
import { MemoryClusterView } from '../src/cluster/memory.js';
import { KindScopes } from '../src/kinds.js';
import { parseManifests } from '../src/manifests.js';
import { packageRoot } from '../src/paths.js';
import { policies } from '../src/policies/index.js';
import { formats, judge, render, totals, type ObjectReport } from '../src/report/index.js';
import { reportStream } from '../src/report/stream.js';
import { renderPolicyReports } from '../src/report/policyreport.js';
import { configOf, engineOf } from './support.js';

const faq = (file: string) => readFileSync(join(packageRoot, 'examples/faq', file), 'utf8');

/** check's judging of a YAML text, as `check --namespace NS` (or without) would do it. */
function check(
  text: string,
  opts: { namespace?: string; mode?: 'warn' | 'enforce'; diff?: boolean; mesh?: Record<string, unknown> } = {},
) {
  const { manifests, errors } = parseManifests(text, 'in.yaml');
  if (errors.length > 0) throw errors[0];
  const scopes = new KindScopes().addObjects(manifests.map((m) => m.object));
  const items = manifests.map((m) => ({ ...m, namespace: scopes.namespaceOf(m.object, opts.namespace) }));
  const view = MemoryClusterView.fromObjects(
    items.map(({ object, namespace }) =>
      namespace ? { ...object, metadata: { ...object.metadata, namespace } } : object,
    ),
  );
  // The FAQs' mesh (Istio 1.11): every pod policy has something to report there.
  const config = configOf({ mode: opts.mode ?? 'enforce', mesh: opts.mesh ?? { istioVersion: '1.11' } });
  const engine = engineOf({ policies, config, cluster: view });
  return judge(items, engine, { diff: opts.diff ?? true });
}

const dr = (host: string, ns?: string) =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r${ns ? `, namespace: ${ns}` : ''}}\nspec: {host: ${host}}\n`;

t.test('no namespace is assumed: unknown means nothing is denied, and the findings say why', async (t) => {
  const [unknown] = check(dr('reviews.prod.svc.cluster.local'));
  t.equal(unknown?.namespace, null);
  t.equal(unknown?.denied, false, 'no false denial from an assumed namespace');
  t.match(unknown?.findings, [
    { policy: 'destinationrule-placement', action: 'deny', unverified: /namespace not given/ },
  ]);
  t.match(check(dr('reviews.prod.svc.cluster.local'), { namespace: 'prod' }), [
    { namespace: 'prod', denied: false, findings: [] },
  ]);
  t.match(check(dr('reviews.prod.svc.cluster.local'), { namespace: 'web' }), [{ namespace: 'web', denied: true }]);
  t.match(check(dr('reviews.prod.svc.cluster.local', 'web'), { namespace: 'prod' }), [
    { namespace: 'web', denied: true },
  ]);
  // A short host is in the rule's own namespace, whatever that is.
  t.match(check(dr('reviews')), [{ denied: false, findings: [] }]);
});

t.test('a malformed name is named by what is wrong in the report and its message, never left blank', async (t) => {
  const text =
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: 7, generateName: [x]}\nspec: {host: 5}\n';
  const [report] = check(text, { namespace: 'ns1' });
  t.equal(report?.name, '<metadata.name is a number>');
  t.match(report?.findings, [
    {
      policy: 'destinationrule-placement',
      action: 'deny',
      message: /ns1\/<metadata.name is a number>: spec.host is a number, not a string/,
    },
  ]);
  const [generated] = check(text.replace('name: 7, ', ''), { namespace: 'ns1' });
  t.equal(generated?.name, '<no metadata.name>', 'a generateName that is not a string is not a name either');
  const [noMeta] = check(
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: [r]\nspec: {host: r}\n',
    {
      namespace: 'ns1',
    },
  );
  t.equal(noMeta?.name, '<metadata is an array>');
});

t.test('cluster-scoped objects have no namespace; custom kinds learn theirs from their CRD', async (t) => {
  const crd =
    'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n' +
    'spec: {group: example.com, scope: Cluster, names: {kind: Widget}}\n';
  const reports = check(
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n${crd}---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n`,
    { namespace: 'prod' },
  );
  t.strictSame(
    reports.map((r) => [r.kind, r.namespace]),
    [
      ['Namespace', ''],
      ['CustomResourceDefinition', ''],
      ['Widget', ''],
      ['ConfigMap', 'prod'],
    ],
  );
});

t.test('pods in a namespace whose labels are unknown: what they get if Istio injects it, not verified', async (t) => {
  const deployment = faq('workloads.yaml').split(/^---$/m)[0] ?? '';
  const [unlabelled] = check(deployment);
  t.match(unlabelled, { denied: false, patch: Array, diff: /proxy\.istio\.io\/config/ });
  t.ok(unlabelled?.findings.length, 'the pod findings are there');
  for (const f of unlabelled?.findings ?? [])
    t.match(f.unverified, /assumes Istio injects namespace shop: its labels are unknown/);
  const [labelled] = check(`${faq('namespaces.yaml')}\n---\n${deployment}`).filter((r) => r.kind === 'Deployment');
  t.ok(labelled?.findings.length);
  t.notOk(
    labelled?.findings.some((f) => f.unverified),
    'verified once the Namespace is among the inputs',
  );
  const [off] = check(
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio-injection: disabled}}\n---\n${deployment}`,
  ).filter((r) => r.kind === 'Deployment');
  t.strictSame(off?.findings, [], 'a namespace known not to be injected: nothing');
});

t.test('unknown namespace labels with only a canary revision: judged as canary injects the pod', async (t) => {
  // A default install of canary has no istio-injection=enabled webhook: the pod's own
  // istio.io/rev label opts it in, in a namespace without injection labels (SELECTORS.yaml).
  const job = (labels: string) =>
    `apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {${labels}}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: app, image: busybox, command: [sh, -c, 'echo hi']}]\n`;
  const mesh = { istioVersion: '1.20', revisions: ['canary'] };
  const [canary] = check(job('istio.io/rev: canary'), { mesh });
  t.same(
    canary?.findings.map((f) => f.policy),
    ['hold-application-until-proxy-starts', 'job-sidecar-quit', 'termination-drain'],
    "canary's injection brings the hold, the Job wrapper and the drain (grace period unset: 30 s)",
  );
  for (const f of canary?.findings ?? []) t.match(f.unverified, /assumes Istio injects namespace shop/);
  const [optedOut] = check(job('istio.io/rev: canary, sidecar.istio.io/inject: "false"'), { mesh });
  t.strictSame(optedOut?.findings, [], 'a pod that opts out is out in any namespace');
});

t.test('warn mode says what would happen and nothing else; --no-diff; diffs are bounded', async (t) => {
  const all = `${faq('namespaces.yaml')}\n---\n${faq('workloads.yaml')}`;
  const warn = check(all, { mode: 'warn' });
  t.notOk(warn.some((r) => r.patch || r.diff || r.denied));
  t.ok(warn.some((r) => r.findings.some((f) => f.action === 'warn' && /: would /.test(f.message))));
  t.notMatch(await render(warn, 'text'), /would be patched|@@/);
  t.notOk(
    check(all, { diff: false }).some((r) => r.diff),
    '--no-diff',
  );
  const cron = check(all).find((r) => r.kind === 'CronJob');
  t.ok(cron?.patch, 'the patch is kept');
  t.ok((cron?.diff?.split('\n').length ?? 0) <= 62, 'the wrapper script does not flood the report');
  t.match(cron?.diff, /^\+ …$/m, 'the wrapper script cut after its first lines');
  t.ok((cron?.diff?.split('\n').length ?? 0) < 40, `${cron?.diff?.split('\n').length} lines`);
});

t.test('json: the reports as before, plus totals', async (t) => {
  const reports = check(
    `${faq('namespaces.yaml')}\n---\n${faq('destinationrule.yaml')}\n---\n${faq('databases.yaml')}`,
  );
  const json = JSON.parse(await render(reports, 'json')) as { reports: ObjectReport[]; totals: unknown };
  t.strictSame(json.totals, totals(reports));
  t.match(json.totals, { objects: reports.length, denied: 1, withWarnings: 2 });
  t.match(json.reports[0], { source: 'in.yaml', document: 1, line: 2, kind: 'Namespace', namespace: '', name: 'shop' });
});

const sarifSchema = JSON.parse(
  readFileSync(
    join(
      dirname(createRequire(import.meta.url).resolve('@microsoft/sarif-multitool-linux/package.json')),
      'sarif-2.1.0.json',
    ),
    'utf8',
  ),
) as object;

t.test('written as judged: each format streamed is what render writes for all the reports at once', async (t) => {
  const reports = check(
    faq('destinationrule.yaml') + '---\n' + faq('databases.yaml') + '---\n' + faq('workloads.yaml'),
    {
      namespace: 'shop',
    },
  );
  t.ok(reports.some((r) => r.findings.length === 0) && reports.some((r) => r.diff !== undefined), 'a mixed set');
  for (const format of formats)
    for (const set of [reports, [], reports.slice(0, 1)]) {
      const stream = reportStream(format);
      let text = '';
      for (const r of set) text += stream.add(r);
      text += await stream.end();
      t.equal(text, await render(set, format), `${format}, ${set.length} reports`);
      t.strictSame(stream.totals, totals(set));
    }
});

t.test("sarif: valid SARIF 2.1.0 by its JSON schema and by Microsoft's validator", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-sarif-'));
  const text = `${faq('namespaces.yaml')}\n---\n${faq('destinationrule.yaml')}\n---\n${faq('workloads.yaml')}\n---\n${dr('x.prod.svc.cluster.local')}`;
  const sarif = await render(check(text), 'sarif');
  const log = JSON.parse(sarif) as {
    version: string;
    runs: {
      tool: { driver: { rules: { id: string; help: { markdown: string } }[] } };
      results: {
        ruleId: string;
        level: string;
        locations: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } } }[];
      }[];
    }[];
  };
  t.equal(log.version, '2.1.0');
  const run = log.runs[0];
  t.strictSame(run?.tool.driver.rules.map((r) => r.id).sort(), policies.map((p) => p.id).sort(), 'one rule per policy');
  t.match(run?.tool.driver.rules[0]?.help.markdown, /^# /, "the policy's README as help");
  const denial = run?.results.find((r) => r.level === 'error');
  t.match(denial, {
    ruleId: 'destinationrule-placement',
    locations: [{ physicalLocation: { artifactLocation: { uri: 'in.yaml' } } }],
  });
  const line = denial?.locations[0]?.physicalLocation.region.startLine ?? 0;
  t.match(
    text
      .split('\n')
      .slice(line - 1, line + 1)
      .join('\n'),
    /^apiVersion: networking.istio.io\/v1\w*\nkind: DestinationRule/,
    "the line of the object's document",
  );

  // Formats (uri, date-time) are left to Microsoft's validator below.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(sarifSchema);
  t.ok(validate(log), JSON.stringify(validate.errors?.slice(0, 3)));
  const broken = structuredClone(log) as unknown as { runs: { results: { level: string }[] }[] };
  if (broken.runs[0]?.results[0]) broken.runs[0].results[0].level = 'fatal';
  t.notOk(validate(broken), 'the schema check can fail');

  // Microsoft's validator: schema and rules; its errors (not its warnings or notes) fail the log.
  const file = join(dir, 'meshguard.sarif');
  writeFileSync(file, sarif);
  const multitool = createRequire(import.meta.url)('@microsoft/sarif-multitool') as string;
  const out = join(dir, 'validation.sarif');
  const r = spawnSync(multitool, ['validate', file, '--output', out, '--log', 'ForceOverwrite'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout + r.stderr);
  const findings =
    (
      JSON.parse(readFileSync(out, 'utf8')) as {
        runs: { results?: { level?: string; ruleId: string; message: unknown }[] }[];
      }
    ).runs[0]?.results ?? [];
  t.strictSame(
    findings.filter((f) => f.level === 'error'),
    [],
    'no errors from the SARIF validator',
  );
  writeFileSync(file, sarif.replace('"version": "2.1.0"', '"version": "2.0.0"'));
  const bad = spawnSync(multitool, ['validate', file, '--output', out, '--log', 'ForceOverwrite'], {
    encoding: 'utf8',
  });
  const badFindings =
    (JSON.parse(readFileSync(out, 'utf8')) as { runs: { results?: { level?: string }[] }[] }).runs[0]?.results ?? [];
  t.equal(bad.status, 0, 'the validator reports errors in its log, not in its exit code');
  t.ok(
    badFindings.some((f) => f.level === 'error'),
    'the validator can fail',
  );
});

t.test('junit: a test case per object and policy; verified denials fail', async (t) => {
  const reports = check(
    `${faq('namespaces.yaml')}\n---\n${faq('destinationrule.yaml')}\n---\n${faq('workloads.yaml')}\n---\n${dr('x.prod.svc.cluster.local')}`,
  );
  const xml = await render(reports, 'junit');
  const cases = xml.match(/<testcase /g)?.length ?? 0;
  t.equal(
    cases,
    reports.reduce((n, r) => n + r.policies.length, 0),
  );
  t.ok(cases > 0);
  t.equal(xml.match(/<failure /g)?.length, 1, 'the one verified denial; the unverified one passes with output');
  t.match(
    xml,
    /<testcase classname="in.yaml#\d+ DestinationRule ns1\/myservice" name="destinationrule-placement"[^>]*>\s*<failure message="meshguard destinationrule-placement: /,
  );
});

t.test('PolicyReports: one per namespace, a cluster report for cluster-scoped objects', async (t) => {
  const reports = check(
    `${faq('namespaces.yaml')}\n---\n${faq('destinationrule.yaml')}\n---\n${faq('databases.yaml')}`,
  );
  // Make one cluster-scoped object judged by a policy to see the cluster report.
  const withCluster: ObjectReport[] = [
    ...reports,
    { ...reports[0]!, kind: 'Widget', namespace: '', name: 'w', policies: ['destinationrule-placement'], findings: [] },
  ];
  for (const api of ['openreports.io/v1alpha1', 'wgpolicyk8s.io/v1alpha2']) {
    const docs = yaml.loadAll(renderPolicyReports(withCluster, api, new Date(0))) as {
      apiVersion: string;
      kind: string;
      metadata: { name: string; namespace?: string };
      summary: Record<string, number>;
      results: { policy: string; result: string; resources: { kind: string; name: string; namespace?: string }[] }[];
    }[];
    t.ok(docs.every((d) => d.apiVersion === api));
    const open = api.startsWith('openreports');
    t.strictSame(
      docs.map((d) => [d.kind, d.metadata.namespace]),
      [
        [open ? 'ClusterReport' : 'ClusterPolicyReport', undefined],
        [open ? 'Report' : 'PolicyReport', 'default'],
        [open ? 'Report' : 'PolicyReport', 'ns1'],
        [open ? 'Report' : 'PolicyReport', 'payments'],
        [open ? 'Report' : 'PolicyReport', 'shop'],
      ],
    );
    const ns1 = docs.find((d) => d.metadata.namespace === 'ns1');
    // mtls-conflict passes the same rule: it sets no tls.
    t.match(ns1, {
      summary: { fail: 1, pass: 1 },
      results: [
        {
          policy: 'destinationrule-placement',
          result: 'fail',
          resources: [{ kind: 'DestinationRule', name: 'myservice', namespace: 'ns1' }],
        },
      ],
    });
    t.match(
      docs.find((d) => d.metadata.namespace === 'shop'),
      { summary: { warn: 1 } },
    );
  }
});
