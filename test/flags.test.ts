// Flags and their environment variables: MESHGUARD_NAMESPACE, which the chart sets in meshguard's
// pod for serve, is read by serve only; check and certs have variables of their own.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { certsHelp } from '../src/commands/certs.js';
import { checkHelp } from '../src/commands/check.js';
import { serveHelp } from '../src/commands/serve.js';
import { packageRoot } from '../src/paths.js';

t.test('--help names each --namespace its own variable', async (t) => {
  t.match(serveHelp, /--namespace NS .*env MESHGUARD_NAMESPACE\)/);
  t.match(checkHelp, /--namespace NS .*env MESHGUARD_CHECK_NAMESPACE\)/);
  t.match(certsHelp, /--namespace NS .*env MESHGUARD_CERTS_NAMESPACE\)/);
});

t.test("check in meshguard's pod: MESHGUARD_NAMESPACE is not where namespace-less objects go", async (t) => {
  const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: app, image: nginx}]}\n';
  const namespaceOf = (env: NodeJS.ProcessEnv) => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(packageRoot, 'src/cli.ts'), 'check', '--output', 'json', '-'],
      {
        input: pod,
        encoding: 'utf8',
        cwd: packageRoot,
        env: { ...process.env, MESHGUARD_NAMESPACE: 'meshguard', ...env },
      },
    );
    t.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { reports: { namespace: unknown }[] }).reports[0]?.namespace;
  };
  t.equal(namespaceOf({}), null, 'unknown, as without the variable');
  t.equal(namespaceOf({ MESHGUARD_CHECK_NAMESPACE: 'shop' }), 'shop', "check's own variable");
});
