import type { AdmissionRequest, KubeObject, Operation } from './types.js';

/** The request the API server would send for an object (used by `check` and tests). */
export function requestFor(
  object: KubeObject,
  opts: { operation?: Operation; namespace?: string; oldObject?: KubeObject | null; uid?: string } = {},
): AdmissionRequest {
  const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : 'v1';
  const slash = apiVersion.lastIndexOf('/');
  const name = object.metadata?.name;
  return {
    uid: opts.uid ?? '00000000-0000-0000-0000-000000000000',
    kind: {
      group: slash < 0 ? '' : apiVersion.slice(0, slash),
      version: apiVersion.slice(slash + 1),
      kind: typeof object.kind === 'string' ? object.kind : '',
    },
    operation: opts.operation ?? 'CREATE',
    namespace: opts.namespace ?? object.metadata?.namespace ?? 'default',
    ...(typeof name === 'string' && { name }),
    object,
    oldObject: opts.oldObject ?? null,
  };
}
