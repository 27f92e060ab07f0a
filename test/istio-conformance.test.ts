// The Istio conformance runner (test/istio/) on a small made-up folder: it must see agreement,
// disagreement, known differences and bad input, or it could pass on anything.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../src/paths.js';
import { conformance, judgeRows, type Known } from './istio/conformance.js';

const mini = join(packageRoot, 'test/fixtures/istio-mini');
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(packageRoot, 'test/istio/run.ts'), ...args], {
    encoding: 'utf8',
    cwd: packageRoot,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const known = (entries: Known[]) => {
  const file = join(mkdtempSync(join(tmpdir(), 'istio-known-')), 'known.yaml');
  writeFileSync(file, JSON.stringify(entries));
  return file;
};
const wrongHold = 'Deployment hello: hold: meshguard no, Istio yes';
const wrongPod = 'IST0103 Pod quiet/elsewhere: Istio reports it, meshguard does not';

t.test(
  'each injector case is compared on proxy, probe rewrite and hold; each analyzer case on its IST codes',
  async (t) => {
    const { rows } = await conformance(mini);
    const byId = new Map(rows.map((r) => [r.id, r]));
    t.same(
      rows.map((r) => r.id),
      [
        'inject TestInjection [00] held',
        'inject TestInjection [01] plain',
        'inject TestInjection [02] wrong',
        'inject TestInjection [03] rejected',
        'inject TestInjection [04] own settings',
        'analyze TestAnalyzers [0] missing proxy',
        'analyze TestAnalyzers [1] wrong',
      ],
      'the analyzer outside meshguard’s domain has no row',
    );
    // Classic and held by the chart value, probes rewritten: what meshguard predicts from those settings.
    t.match(byId.get('inject TestInjection [00] held'), {
      detail: /proxy classic, rewrite yes, hold yes \| Istio proxy classic, rewrite yes, hold yes/,
      differences: [],
    });
    t.match(byId.get('inject TestInjection [01] plain'), {
      detail: /proxy classic, rewrite no, hold no \| Istio proxy classic, rewrite no, hold no/,
      differences: [],
    });
    t.same(byId.get('inject TestInjection [02] wrong')?.differences, [wrongHold]);
    // Istio's injector refused it (an invalid annotation): sidecar-annotations denies it too.
    t.match(byId.get('inject TestInjection [03] rejected'), {
      compared: true,
      differences: [],
      note: /Istio rejects the pod .*sidecar-annotations denies it/,
    });
    // The pod's own annotations, read by the code the policies run: rewriteAppHTTPProbers "f" is false
    // to Go's ParseBool, and hold_application_until_proxy_starts (the proto name) holds.
    t.match(byId.get('inject TestInjection [04] own settings'), {
      detail: /proxy classic, rewrite no, hold yes \| Istio proxy classic, rewrite no, hold yes/,
      differences: [],
    });
    t.match(byId.get('analyze TestAnalyzers [0] missing proxy'), {
      differences: [],
      note: /not compared \(no meshguard counterpart\): IST0102 Namespace quiet/,
    });
    t.same(byId.get('analyze TestAnalyzers [1] wrong')?.differences, [wrongPod]);

    const listed = judgeRows(rows, [
      { case: 'inject TestInjection [02] wrong', differences: [wrongHold], reason: 'made up' },
      { case: 'inject TestInjection [01] plain', differences: ['gone'], reason: 'made up' },
    ]);
    t.same(
      listed.verdicts.map((v) => v.status),
      ['agree', 'agree', 'known', 'agree', 'agree', 'agree', 'disagree'],
    );
    t.same(listed.stale, ['inject TestInjection [01] plain: gone']);
  },
);

t.test('the command fails on an unlisted disagreement and passes when each is listed with its reason', async (t) => {
  const bare = run(mini, '--known', known([]));
  t.equal(bare.code, 1, bare.err);
  t.match(bare.out, /^DISAGREE inject TestInjection \[02\] wrong$/m);
  t.match(bare.out, /injector cases: 5: 4 agree, 0 known differences, 1 disagree, 0 not compared/);
  t.match(bare.out, /analyzer cases: 2: 1 agree, 0 known differences, 1 disagree, 0 not compared/);

  const both = known([
    { case: 'inject TestInjection [02] wrong', differences: [wrongHold], reason: 'made up' },
    { case: 'analyze TestAnalyzers [1] wrong', differences: [wrongPod], reason: 'made up' },
  ]);
  const ok = run(mini, '--known', both);
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out, /^known {4}inject TestInjection \[02\] wrong$/m);
  t.match(ok.out, /analyzer cases: 2: 1 agree, 1 known differences, 0 disagree/);
});

t.test('a missing or malformed folder, or a bad known-differences file, is exit 2 with one line', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'istio-empty-'));
  const broken = mkdtempSync(join(tmpdir(), 'istio-broken-'));
  mkdirSync(join(broken, 'inject'));
  writeFileSync(join(broken, 'inject/INDEX.yaml'), 'cases: [unclosed');
  const badKnown = join(empty, 'known.yaml');
  writeFileSync(badKnown, '- case: x\n');
  for (const [args, message] of [
    [[], /usage: npm run test:istio -- DIR/],
    [[join(empty, 'nope')], /nope: not a directory/],
    [[empty], /inject\/INDEX\.yaml: ENOENT/],
    [[broken], /inject\/INDEX\.yaml: /],
    [[mini, '--known', badKnown], /known\.yaml: not a list of \{case, differences/],
  ] as const) {
    const r = run(...args);
    t.equal(r.code, 2, `${args.join(' ')}: ${r.out}`);
    t.match(r.err, message);
    t.equal(r.err.trim().split('\n').length, 1, 'one line');
    t.equal(r.out, '');
  }
});
