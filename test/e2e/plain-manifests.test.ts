// deploy/meshguard.yaml is the chart rendered by real Helm: rendering it again must give the same
// file, so the plain manifests never drift from the chart.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../../src/paths.js';
import { e2eBinDir } from './cluster.js';

// The Helm the e2e provisioning builds (HELM overrides it).
const helm = process.env.HELM ?? join(e2eBinDir(), 'helm');

t.test('deploy/meshguard.yaml is what scripts/plain-manifests.sh renders from the chart now', async (t) => {
  t.ok(existsSync(helm), `helm at ${helm}`);
  const out = join(mkdtempSync(join(tmpdir(), 'meshguard-plain-')), 'meshguard.yaml');
  const r = spawnSync('bash', [join(packageRoot, 'scripts/plain-manifests.sh'), out], {
    encoding: 'utf8',
    env: {
      ...process.env,
      HELM: helm,
      HELM_CACHE_HOME: join(tmpdir(), 'helm-cache'),
      HELM_CONFIG_HOME: join(tmpdir(), 'helm-config'),
    },
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(
    readFileSync(join(packageRoot, 'deploy/meshguard.yaml'), 'utf8'),
    readFileSync(out, 'utf8'),
    'in sync; after changing the chart run HELM=<helm> scripts/plain-manifests.sh',
  );
});
