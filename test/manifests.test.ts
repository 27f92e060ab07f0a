// Reading real trees of manifests: what is skipped, what is an error, and where each object is.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { MAX_NODES, parseManifests, readManifests } from '../src/manifests.js';

const pod = (name: string) => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec: {containers: [{name: a}]}\n`;

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-tree-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

t.test('a real tree in one run: what is not a manifest is skipped, every broken manifest listed', async (t) => {
  const dir = tree({
    'deploy/app.yaml': `${pod('a')}---\n${pod('b')}`,
    'deploy/list.json': JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [JSON.parse(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'c' } }))],
    }),
    'chart/Chart.yaml': 'apiVersion: v2\nname: x\nversion: 1.0.0\n',
    'chart/values.yaml': 'replicas: 2\nimage: {tag: "1"}\n',
    'chart/templates/deployment.yaml':
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n',
    'other/template.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  {{- include "labels" . | nindent 2 }}\n',
    '.github/workflows/ci.yml': 'on: [push]\njobs: {test: {runs-on: ubuntu-latest}}\n',
    'package.json': '{"name": "x", "version": "1.0.0"}\n',
    'tsconfig.json': '{\n  // comments are not JSON\n  "compilerOptions": {}\n}\n',
    'kustomization.yaml':
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy/app.yaml]\n',
    'broken/syntax.yaml': `${pod('d')}---\napiVersion: v1\nkind: Pod\nmetadata: {name: [\n`,
    'broken/mixed.yaml': `${pod('e')}---\njust: a map\n`,
    'node_modules/dep/bad.yaml': 'apiVersion: v1\nkind: [\n',
    '.git/x.yaml': pod('git'),
    'README.md': '# not read\n',
  });
  const { manifests, skipped, errors } = await readManifests([dir, join(dir, 'missing')], async () => '');
  t.strictSame(
    manifests.map((m) => m.object.metadata?.name).sort(),
    ['a', 'b', 'c', 'd', 'e'],
    'the objects of every readable document, and no more',
  );
  const rel = (p: string) => p.slice(dir.length + 1);
  t.strictSame(skipped.map((s) => rel(s.source)).sort(), [
    '.github/workflows/ci.yml',
    'chart/Chart.yaml',
    'chart/templates',
    'chart/values.yaml',
    'kustomization.yaml',
    'other/template.yaml',
    'package.json',
    'tsconfig.json',
  ]);
  t.strictSame(
    errors.map((e) => rel(e.message)).sort(),
    [
      'broken/mixed.yaml: document 2: not a Kubernetes object (needs apiVersion and kind)',
      'broken/syntax.yaml: document 2: unexpected end of the stream within a flow collection (line 9)',
      'missing: no such file or directory',
    ].sort(),
    'each error names its file and document; the run went on',
  );
});

t.test('document numbers and lines: separators, leading comments, a leading ---', async (t) => {
  const text = `# comment\n---\n${pod('a')}---\n\n# about b\n${pod('b')}---\n---\n${pod('c')}`;
  const { manifests } = parseManifests(text, 'f.yaml');
  t.strictSame(
    manifests.map((m) => [m.object.metadata?.name, m.document, m.line]),
    [
      ['a', 1, 3],
      ['b', 2, 10],
      ['c', 4, 16],
    ],
  );
  t.equal(text.split('\n')[9], 'apiVersion: v1', 'line 10 is where b starts');
  t.equal(text.split('\n')[15], 'apiVersion: v1', 'line 16 is where c starts');
});

t.test('empty input, and input without objects, yield nothing and no error', async (t) => {
  t.match(parseManifests('', '<stdin>'), { manifests: [], errors: [], skipped: [{ reason: 'empty' }] });
  t.match(parseManifests('just a string\n', '<stdin>'), { manifests: [], errors: [] });
});

t.test('an alias bomb is refused quickly, without expanding it', async (t) => {
  const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 12; i++)
    levels.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(',')}]`,
    );
  const text = `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bomb}\nspec:\n  template:\n    metadata:\n      annotations:\n${levels.map((l) => `        ${l}`).join('\n')}\n`;
  const start = performance.now();
  const { manifests, errors } = parseManifests(text, 'bomb.yaml');
  t.ok(performance.now() - start < 2000, `refused in ${Math.round(performance.now() - start)} ms`);
  t.equal(manifests.length, 0);
  t.match(errors[0]?.message, `bomb.yaml: document 1: more than ${MAX_NODES} nodes once its YAML aliases are expanded`);
  // Aliases that stay small are ordinary YAML.
  const small = parseManifests(`${pod('p')}metadata2: &m {a: 1}\nother: *m\n`, 'ok.yaml');
  t.equal(small.manifests.length, 1);
});
