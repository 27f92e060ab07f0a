import type { KubeObject, ObjectMeta } from '../admission/types.js';

// Workloads whose pods the pod policies judge at /validate, and where each keeps its template.
const templatePaths: Record<string, readonly string[]> = {
  'apps/Deployment': ['spec', 'template'],
  'apps/StatefulSet': ['spec', 'template'],
  'apps/DaemonSet': ['spec', 'template'],
  'apps/ReplicaSet': ['spec', 'template'],
  'batch/Job': ['spec', 'template'],
  'batch/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
};

export function templatePath(group: string, kind: string): readonly string[] | undefined {
  return templatePaths[`${group}/${kind}`];
}

export const workloadKinds = Object.keys(templatePaths).map((gk) => {
  const [group = '', kind = ''] = gk.split('/');
  return { group, kind };
});

/**
 * The Pod a workload's controller would create from its template, sharing the template's
 * metadata and spec objects (no copy): policies only read it. A Job's pods are owned by a Job.
 */
export function podFromTemplate(object: KubeObject, path: readonly string[], kind: string): KubeObject | undefined {
  let node: unknown = object;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  if (typeof node !== 'object' || node === null) return undefined;
  const template = node as { metadata?: unknown; spec?: unknown };
  const metadata: ObjectMeta =
    typeof template.metadata === 'object' && template.metadata !== null ? { ...(template.metadata as ObjectMeta) } : {};
  if (kind === 'Job' || kind === 'CronJob') {
    metadata.ownerReferences = [
      { apiVersion: 'batch/v1', kind: 'Job', name: object.metadata?.name ?? '', controller: true },
    ];
  }
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: template.spec };
}
