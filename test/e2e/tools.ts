// The command-line tools of the e2e tests (kubectl, helm), run as a user runs them, and the
// versions test/e2e/components/*/go.mod pin.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { e2eBinDir } from './cluster.js';

const components = join(packageRoot, 'test/e2e/components');

/** The version `module` is required at in test/e2e/components/<component>/go.mod. */
export function pinnedVersion(component: string, module: string): string {
  const goMod = readFileSync(join(components, component, 'go.mod'), 'utf8');
  const escaped = module.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const m = new RegExp(`^(?:require\\s+|\\t)${escaped}\\s+(v\\S+)`, 'm').exec(goMod);
  if (m?.[1] === undefined) throw new Error(`${module} is not required in ${component}/go.mod`);
  return m[1];
}

export const KUBE_VERSION = pinnedVersion('kubernetes', 'k8s.io/kubernetes');
export const HELM_VERSION = pinnedVersion('helm', 'helm.sh/helm/v4');
export const ISTIO_VERSION = pinnedVersion('istio', 'istio.io/istio');

/** Istio's own charts, copied from the pinned istio.io/istio module by provision.sh. */
export const istioCharts = (): string => join(e2eBinDir(), 'istio-charts');

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a provisioned binary with an argument array (never a shell); never throws on exit status. */
export function run(
  name: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      join(e2eBinDir(), name),
      args,
      { env: { ...process.env, ...opts.env }, cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') return reject(err);
        resolve({ status: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** kubectl against a cluster's admin kubeconfig. */
export const kubectl = (kubeconfig: string, args: readonly string[], input?: string): Promise<Run> =>
  run('kubectl', ['--kubeconfig', kubeconfig, ...args], input === undefined ? {} : { input });

/** helm, with its cache, config and data under `home` (a test's temp dir), against `kubeconfig` if given. */
export const helm = (home: string, args: readonly string[], kubeconfig?: string): Promise<Run> =>
  run('helm', [...(kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig]), ...args], {
    env: {
      HELM_CACHE_HOME: join(home, 'helm/cache'),
      HELM_CONFIG_HOME: join(home, 'helm/config'),
      HELM_DATA_HOME: join(home, 'helm/data'),
    },
  });
