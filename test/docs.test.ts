// What the READMEs promise a newcomer: every chart value documented, no bare `npx meshguard`, the
// dev server's real address, plain manifests for registering by hand.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import t from 'tap';
import { packageRoot } from '../src/paths.js';

const read = (path: string) => readFileSync(join(packageRoot, path), 'utf8');

/** Dotted paths of the chart's values, down to what the README documents as one value. */
function valuePaths(node: unknown, prefix: string, out: string[]): string[] {
  const whole = new Set([
    'resources',
    'config.policies',
    'config.overrides',
    'certManager.issuerRef',
    'grafanaDashboard.labels',
  ]);
  if (
    typeof node !== 'object' ||
    node === null ||
    Array.isArray(node) ||
    Object.keys(node).length === 0 ||
    whole.has(prefix)
  ) {
    out.push(prefix);
    return out;
  }
  for (const [k, v] of Object.entries(node)) valuePaths(v, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

t.test('the chart README documents every value', async (t) => {
  const readme = read('charts/meshguard/README.md');
  const paths = valuePaths(yaml.load(read('charts/meshguard/values.yaml')), '', []);
  t.ok(paths.length > 20, `${paths.length} values`);
  for (const p of paths) t.match(readme, `| \`${p}\` |`, p);
});

t.test('the README never sends a newcomer to a bare npx meshguard', async (t) => {
  for (const file of ['README.md', 'charts/meshguard/README.md'])
    t.notMatch(read(file), /^\s*(\$ )?npx meshguard/m, file);
});

t.test('registering by hand points at plain manifests, and they are the chart rendered', async (t) => {
  const readme = read('README.md');
  t.match(readme, /deploy\/meshguard\.yaml/);
  const docs = yaml.loadAll(read('deploy/meshguard.yaml')) as { kind: string; metadata: { name: string } }[];
  t.strictSame(
    docs.map((d) => d.kind).sort(),
    [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'MutatingWebhookConfiguration',
      'Namespace',
      'PodDisruptionBudget',
      'Role', // in the release namespace
      'Role', // in istio-system: Istio's objects, for the mesh profile
      'RoleBinding',
      'RoleBinding',
      'Service',
      'ServiceAccount',
      'ValidatingWebhookConfiguration',
    ].sort(),
  );
});
