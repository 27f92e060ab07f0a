// Configuration: schema, defaults, messages that say where and what, the store.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../src/config/parse.js';
import { ConfigStore } from '../src/config/store.js';
import { defaultConfigPath, configSchemaPath, packageRoot } from '../src/paths.js';
import { policies } from '../src/policies/index.js';
import { configOf } from './support.js';

t.test('policies/meshguard.yaml states exactly the schema defaults', async (t) => {
  const file = parseConfig(readFileSync(defaultConfigPath, 'utf8'));
  const empty = parseConfig('');
  t.ok(file.ok && empty.ok);
  if (file.ok && empty.ok) t.strictSame(file.config, empty.config);
});

t.test('one name everywhere: registry, schema, policy folders', async (t) => {
  const schema = JSON.parse(readFileSync(configSchemaPath, 'utf8')) as {
    properties: { policies: { properties: object } };
    definitions: { policyId: { enum: string[] } };
  };
  const ids = policies.map((p) => p.id).sort();
  t.strictSame(Object.keys(schema.properties.policies.properties).sort(), ids);
  t.strictSame([...schema.definitions.policyId.enum].sort(), ids);
  const dirs = readdirSync(join(packageRoot, 'policies'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  t.strictSame(dirs, ids);
  for (const id of ids) {
    t.ok(existsSync(join(packageRoot, 'policies', id, 'README.md')), `${id} has a README`);
    t.ok(existsSync(join(packageRoot, 'src', 'policies', `${id}.ts`)), `${id} has its file`);
  }
});

t.test('YAML 1.2: off is a string, so mode: off works unquoted', async (t) => {
  t.equal(configOf({}).policies['probe-port-exclusion'].mode, 'enforce');
  const parsed = parseConfig('policies:\n  probe-port-exclusion: {mode: off}\n');
  t.ok(parsed.ok && parsed.config.policies['probe-port-exclusion'].mode === 'off');
});

t.test('errors say where and what; unknown keys and policy ids are refused', async (t) => {
  const errors = (text: string) => {
    const p = parseConfig(text);
    return p.ok ? [] : p.errors;
  };
  t.strictSame(errors('policies:\n  probe-port-exclusion: {mode: sometimes}\n'), [
    'policies.probe-port-exclusion.mode: must be one of enforce, warn, off',
  ]);
  t.strictSame(errors('policies:\n  no-such-policy: {mode: warn}\n'), ['policies.no-such-policy: unknown policy']);
  t.strictSame(errors('mode: enforce\nverbose: true\n'), ['verbose: unknown key']);
  t.strictSame(errors('policies:\n  job-sidecar-quit: {readyTimeoutSeconds: -1}\n'), [
    'policies.job-sidecar-quit.readyTimeoutSeconds: must be >= 0',
  ]);
  t.strictSame(errors('overrides:\n  - mode: warn\n'), ['overrides.0.namespaces: is required']);
  t.strictSame(errors('excludeNamespaces: kube-system\n'), ['excludeNamespaces: must be array']);
  t.match(errors('mode: [\n'), [/^not valid YAML: /]);
  t.strictSame(errors('- a\n'), ['config: must be object']);
  t.equal(errors('mode: sometimes\nonError: explode\n').length, 2, 'every problem at once');
});

t.test('the store keeps the last good configuration and counts generations', async (t) => {
  const store = new ConfigStore(configOf(), 'embedded defaults');
  const seen: number[] = [];
  const rejected: string[][] = [];
  store.on('change', (c) => seen.push(c.generation));
  store.on('rejected', (_s, e) => rejected.push(e));
  t.equal(store.current.generation, 1);
  t.strictSame(store.setBase('mode: warn', 'file'), []);
  t.equal(store.current.config.mode, 'warn');
  t.strictSame(store.setOverlay('mode: nope', 'configmap'), ['mode: must be one of enforce, warn']);
  t.equal(store.current.config.mode, 'warn', 'refused: the last good one stays');
  t.strictSame(store.setOverlay('onError: deny', 'configmap'), []);
  t.equal(store.current.config.mode, 'enforce', 'the overlay replaces the base, it does not merge');
  t.strictSame(store.setBase('clusterDomain: mesh.local', 'file'), []);
  t.equal(store.current.config.clusterDomain, 'cluster.local', 'a base change under an overlay waits');
  store.setOverlay(null, 'configmap');
  t.equal(store.current.config.clusterDomain, 'mesh.local', 'overlay gone: back to the (new) base');
  t.strictSame(seen, [2, 3, 4]);
  t.equal(rejected.length, 1);
});
