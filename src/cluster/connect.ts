import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Cluster credentials, and where they came from (for the log and for messages). */
export interface Connection {
  kc: KubeConfig;
  from: string;
  inCluster: boolean;
}

/**
 * Credentials for cluster lookups, or undefined when there are none (`--cluster auto` then runs
 * with lookups off). An explicit --kubeconfig that cannot be loaded is an error.
 */
export async function kubeConfigFor(
  kubeconfig: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<Connection | undefined> {
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync(SA_TOKEN);
  const defaultFile = env.KUBECONFIG ?? join(homedir(), '.kube', 'config');
  if (!kubeconfig && !inCluster && !existsSync(defaultFile.split(':')[0] ?? '')) return undefined;
  // Loaded only when there is a cluster: it is the heaviest import of the server.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (kubeconfig) {
    kc.loadFromFile(kubeconfig);
    return { kc, from: kubeconfig, inCluster: false };
  }
  if (inCluster) {
    kc.loadFromCluster();
    return { kc, from: 'in-cluster service account', inCluster: true };
  }
  kc.loadFromDefault();
  return { kc, from: defaultFile, inCluster: false };
}
