// The command line as users run it: exit codes, messages, output formats.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../src/paths.js';

const cli = (args: string[], input?: string) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(packageRoot, 'src/cli.ts'), ...args], {
    input,
    encoding: 'utf8',
    cwd: packageRoot,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const faq = join(packageRoot, 'examples/faq');

t.test('check on the FAQ examples reports each pitfall under its policy id and exits 1', async (t) => {
  // examples/faq holds the FAQs' istiod (1.11): check follows that version. Its Services are all
  // among the inputs, which --services-complete says.
  const r = cli(['check', 'examples/faq', '--services-complete']);
  t.equal(r.code, 1, r.err);
  t.match(
    r.out,
    /DestinationRule ns1\/myservice\n {2}deny {3}meshguard destinationrule-placement: .*move it to default or istio-system/,
  );
  // The FAQ's two ExternalName databases collide on Istio < 1.21 only.
  t.match(
    r.out,
    /Service payments\/mysql-b\n {2}warn {3}meshguard externalname-tcp-collision: TCP port 3306 also carries Service shop\/mysql-a/,
  );
  t.match(
    r.out,
    /Deployment shop\/nginx-deployment-basic\n {2}patch {2}meshguard hold-application-until-proxy-starts: .*\n {2}patch {2}meshguard probe-port-exclusion: exclude probe port 8087/,
  );
  t.match(r.out, /\+\s+traffic.sidecar.istio.io\/excludeInboundPorts: '8087'/, 'shows the patch as a diff');
  t.match(r.out, /CronJob shop\/mycronjob\n(.*\n)* {2}patch {2}meshguard job-sidecar-quit: /);
  t.match(r.out, /10 objects checked: 1 denied/);
  // The same manifests on today's Istio (the istiod of 1.11 left out): those traps are closed.
  const today = cli([
    'check',
    '--services-complete',
    ...['databases', 'destinationrule', 'namespaces', 'workloads'].map((f) => join(faq, `${f}.yaml`)),
  ]);
  t.notMatch(today.out, /externalname-tcp-collision|probe-port-exclusion/);
});

t.test('check --output json, from stdin', async (t) => {
  // The FAQ's databases collide on Istio < 1.21 only (ExternalName Services are aliases from 1.21).
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-cli-'));
  writeFileSync(join(dir, 'istio-1.20.yaml'), 'mesh: {istioVersion: "1.20"}\n');
  const config = ['--config', join(dir, 'istio-1.20.yaml')];
  const r = cli(['check', ...config, '--output', 'json', '-'], readFileSync(join(faq, 'databases.yaml'), 'utf8'));
  t.equal(r.code, 0, 'warnings alone do not fail');
  const { reports } = JSON.parse(r.out) as {
    reports: { name: string; findings: { policy: string; action: string }[] }[];
  };
  t.strictSame(
    reports.map((x) => x.name),
    ['mysql-a', 'mysql-b'],
  );
  t.match(reports[1]?.findings, [{ policy: 'externalname-tcp-collision', action: 'warn' }]);
});

t.test('check exit 2: unreadable input names the file and document; bad config names the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-cli-'));
  writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nkind: [\n');
  const bad = cli(['check', join(dir, 'bad.yaml')]);
  t.equal(bad.code, 2);
  t.match(bad.err, /bad\.yaml: document 2: /);
  t.match(bad.out, /1 objects checked/, 'the readable document is still checked');
  const scalar = cli(['check', '-'], 'just a string\n');
  t.equal(scalar.code, 2);
  t.match(scalar.err, /no Kubernetes objects in the input/);
  t.match(
    cli(['check', '-'], ''),
    { code: 2, err: /no Kubernetes objects in the input/ },
    'a failed helm template | does not pass',
  );
  t.match(cli(['check', join(dir, 'missing')]), { code: 2, err: /missing: no such file or directory/ });
  writeFileSync(join(dir, 'config.yaml'), 'policies:\n  probe-port-exclusion: {mode: sometimes}\n');
  const config = cli(['check', '--config', join(dir, 'config.yaml'), faq]);
  t.equal(config.code, 2);
  t.match(config.err, /policies\.probe-port-exclusion\.mode: must be one of enforce, warn, off/);
  t.match(cli(['check']), { code: 2, err: /at least one PATH/ });
  t.match(cli(['check', '--bogus', faq]), { code: 2, err: /bogus/ });
});

t.test('check with a config in warn mode: nothing denied, exit 0', async (t) => {
  const r = cli(['check', faq], undefined);
  t.equal(r.code, 1);
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-cli-'));
  writeFileSync(join(dir, 'c.yaml'), 'mode: warn\n');
  const warn = cli(['check', '--config', join(dir, 'c.yaml'), faq]);
  t.equal(warn.code, 0);
  t.match(warn.out, /warn {3}meshguard hold-application-until-proxy-starts: would set/);
  t.notMatch(warn.out, /patch|@@/, 'in warn mode nothing is patched: no patch, no diff');
});

t.test('serve refuses an invalid configuration file with exit 2 naming the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-cli-'));
  writeFileSync(join(dir, 'c.yaml'), 'overrides: [{namespaces: [a], policies: {no-such-policy: {mode: off}}}]\n');
  const r = cli(['serve', '--config', join(dir, 'c.yaml'), '--port', '0', '--metrics-port', '0', '--cluster', 'off']);
  t.equal(r.code, 2);
  t.match(r.err, /overrides\.0\.policies\.no-such-policy: unknown policy/);
  t.match(cli(['serve', '--port', 'x']), { code: 2, err: /--port: expected a whole number/ });
});

t.test('serve --cluster-state that holds no cluster: exit 2, one line naming it', async (t) => {
  const serve = (path: string) => cli(['serve', '--cluster-state', path, '--port', '0', '--metrics-port', '0']);
  t.match(serve('/no/such/state'), {
    code: 2,
    err: /^meshguard: --cluster-state: \/no\/such\/state: no such file or directory\n$/,
  });
  t.match(serve(join(packageRoot, 'README.md')), {
    code: 2,
    err: /^meshguard: --cluster-state: no Kubernetes objects in .*README\.md\n$/,
  });
});

t.test('--help on every command; environment variables for flags', async (t) => {
  for (const cmd of ['serve', 'check', 'audit', 'certs']) {
    const r = cli([cmd, '--help']);
    t.equal(r.code, 0);
    t.match(r.out, new RegExp(`^Usage: meshguard ${cmd}`));
  }
  t.match(cli(['serve', '--help']).out, /--metrics-port N .*env MESHGUARD_METRICS_PORT, default 9090/);
  t.match(cli(['--help']), { code: 0, out: /Commands:/ });
  t.match(cli(['frobnicate']), { code: 2, err: /unknown command "frobnicate"/ });
});

t.test("--output policyreport on check says it is audit's, and audit's help names the reports it writes", async (t) => {
  t.match(cli(['check', '--output', 'policyreport', 'examples/faq']), {
    code: 2,
    err: /^meshguard: --output policyreport is meshguard audit's: PolicyReports describe objects in a cluster/,
  });
  t.match(cli(['check', '--help']).out, /PolicyReports are audit's/);
  // The default API is OpenReports': Report and ClusterReport, not the working group's kinds.
  t.match(cli(['audit', '--help']).out, /OpenReports Reports \(one per namespace\) and a ClusterReport/);
});

t.test('certs writes a CA and a serving certificate for the Service, and prints the caBundle', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-certs-'));
  const r = cli(['certs', '--service', 'meshguard', '--namespace', 'mesh-system', '--out', dir, '--days', '30']);
  t.equal(r.code, 0, r.err);
  const caPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const ca = new X509Certificate(caPem);
  const serving = new X509Certificate(readFileSync(join(dir, 'tls.crt')));
  t.equal(Buffer.from(r.out.trim(), 'base64').toString(), readFileSync(join(dir, 'ca.crt'), 'utf8'));
  t.ok(serving.verify(ca.publicKey), 'signed by the CA');
  t.match(serving.subjectAltName, /DNS:meshguard\.mesh-system\.svc, DNS:meshguard\.mesh-system\.svc\.cluster\.local/);
  t.equal(serving.publicKey.asymmetricKeyType, 'ec');
  t.match(cli(['certs', '--service', 'Bad_Name', '--namespace', 'x', '--out', dir]), { code: 2 });
  // Never a silent new CA: an installed caBundle would stop matching.
  const again = cli(['certs', '--service', 'meshguard', '--namespace', 'mesh-system', '--out', dir]);
  t.equal(again.code, 2);
  t.match(again.err, /ca\.key exists; --force replaces it/);
  t.equal(readFileSync(join(dir, 'ca.crt'), 'utf8'), caPem, 'the CA is untouched');
  const forced = cli(['certs', '--service', 'meshguard', '--namespace', 'mesh-system', '--out', dir, '--force']);
  t.equal(forced.code, 0, forced.err);
  t.not(readFileSync(join(dir, 'ca.crt'), 'utf8'), caPem, '--force replaces it');
  t.match(cli(['certs', '--service', 'meshguard', '--namespace', 'x']), { code: 2, err: /--out DIR is required/ });
});

t.test('every failure is exit 2 with one line on stderr', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-cli-'));
  const oneLine = (r: { err: string }) => t.equal(r.err.trimEnd().split('\n').length, 1, r.err);
  const missing = cli(['audit', '--kubeconfig', join(dir, 'nope')]);
  t.equal(missing.code, 2);
  t.match(missing.err, /nope/);
  oneLine(missing);
  // A cluster that does not answer: a closed port on loopback.
  writeFileSync(
    join(dir, 'kubeconfig'),
    'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n' +
      'users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n',
  );
  for (const args of [
    ['audit', '--kubeconfig', join(dir, 'kubeconfig')],
    ['check', '--kubeconfig', join(dir, 'kubeconfig'), join(faq, 'databases.yaml')],
  ]) {
    const unreachable = cli(args);
    t.equal(unreachable.code, 2, args.join(' '));
    t.match(unreachable.err, /^meshguard: cluster https:\/\/127\.0\.0\.1:1: listing Namespace: .*ECONNREFUSED/);
    oneLine(unreachable);
  }
  writeFileSync(join(dir, 'c.yaml'), 'mode: sometimes\nclusterDomain: 3\n');
  const config = cli(['check', '--config', join(dir, 'c.yaml'), faq]);
  t.equal(config.code, 2);
  t.match(config.err, /mode: must be one of.*; clusterDomain/);
  oneLine(config);
  const usage = cli(['check', '--output', 'xml', faq]);
  t.match(usage, { code: 2, err: /--output: expected one of text, json, sarif, junit/ });
  oneLine(usage);
  t.match(cli(['check', '--namespace', 'Not_A_Namespace', faq]), { code: 2, err: /--namespace/ });
});

t.test('--version', async (t) => {
  const { version } = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  t.match(cli(['--version']), { code: 0, out: `meshguard ${version}\n` });
});

t.test('serve exits 2 with nothing left listening when a port cannot be opened', async (t) => {
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = (blocker.address() as { port: number }).port;
  const free = createServer();
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
  const port = (free.address() as { port: number }).port;
  await new Promise((resolve) => free.close(resolve));
  const r = cli([
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--metrics-port',
    String(taken),
    '--cluster',
    'off',
  ]);
  blocker.close();
  t.equal(r.code, 2, 'the process ended by itself with 2 (spawnSync returned: nothing kept it alive)');
  t.match(r.err, `meshguard: cannot listen on 127.0.0.1:${taken} (metrics): address already in use`);
  t.notMatch(r.err, /\n\s+at /, 'no stack');
});
