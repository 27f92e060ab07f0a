import type { Connection } from '../cluster/connect.js';
import { ClusterError, listKind, type KindSpec } from '../cluster/list.js';
import { CONFIG_KEY } from '../config/configmap.js';
import { isRecord } from '../guards.js';
import type { Labels } from '../mesh/selector.js';
import { parseService, parseSlice, serviceKey, type ServiceRead } from './endpoints.js';
import type { ServiceRef } from './webhooks.js';

// What doctor reads from the cluster, get and list only (the chart's RBAC grants exactly this to
// meshguard's ServiceAccount, so doctor also runs in meshguard's pod): webhook configurations,
// namespaces, the Services the webhooks call and their EndpointSlices, meshguard's ConfigMap.

const admission = ['admissionregistration.k8s.io/v1'];
export const mutatingSpec: KindSpec = { kind: 'MutatingWebhookConfiguration', apiVersions: admission };
export const validatingSpec: KindSpec = { kind: 'ValidatingWebhookConfiguration', apiVersions: admission };
export const namespaceSpec: KindSpec = { kind: 'Namespace', apiVersions: ['v1'] };

const statusOf = (err: unknown) => {
  const e = err as { code?: unknown };
  return typeof e?.code === 'number' ? e.code : undefined;
};
/** The first line of a client error, with the API server's own message when it sent one. */
function reasonOf(err: unknown): string {
  const e = err as { body?: unknown; message?: unknown };
  let body: unknown = e.body;
  try {
    body = typeof body === 'string' ? JSON.parse(body) : body;
  } catch {
    // not JSON: the error's own message says it
  }
  const message = isRecord(body) && typeof body.message === 'string' ? body.message : String(e.message ?? err);
  return message.split('\n')[0] ?? '';
}

/** A listing, or why it failed (the checks that need it say they could not check). */
export type Listed<T> = { items: T } | { error: string };

export async function listOrError(connection: Connection, spec: KindSpec): Promise<Listed<unknown[]>> {
  try {
    return { items: await listKind(connection, spec) };
  } catch (err) {
    if (err instanceof ClusterError) return { error: err.message };
    throw err;
  }
}

/** Each namespace's labels, by name; a namespace being deleted takes no new pods and is left out. */
export function namespaceLabels(namespaces: readonly unknown[]): Map<string, Labels> {
  const out = new Map<string, Labels>();
  for (const ns of namespaces) {
    if (!isRecord(ns) || !isRecord(ns.metadata) || typeof ns.metadata.name !== 'string') continue;
    if (isRecord(ns.status) && ns.status.phase === 'Terminating') continue;
    out.set(ns.metadata.name, (isRecord(ns.metadata.labels) ? ns.metadata.labels : {}) as Labels);
  }
  return out;
}

/** A Service and its EndpointSlices (label kubernetes.io/service-name), each read once. */
export async function readServices(
  connection: Connection,
  refs: readonly Pick<ServiceRef, 'namespace' | 'name'>[],
): Promise<Map<string, ServiceRead>> {
  const { CoreV1Api, DiscoveryV1Api } = await import('@kubernetes/client-node');
  const core = connection.kc.makeApiClient(CoreV1Api);
  const discovery = connection.kc.makeApiClient(DiscoveryV1Api);
  const out = new Map<string, ServiceRead>();
  const read = async ({ namespace, name }: Pick<ServiceRef, 'namespace' | 'name'>): Promise<ServiceRead> => {
    let service;
    try {
      service = parseService(await core.readNamespacedService({ name, namespace }));
    } catch (err) {
      return statusOf(err) === 404
        ? { absent: true }
        : { error: `reading Service ${namespace}/${name}: ${reasonOf(err)}` };
    }
    if (!service) return { error: `Service ${namespace}/${name} could not be read` };
    try {
      const slices = await discovery.listNamespacedEndpointSlice({
        namespace,
        labelSelector: `kubernetes.io/service-name=${name}`,
      });
      return { service, slices: slices.items.flatMap((s) => parseSlice(s) ?? []) };
    } catch (err) {
      return { error: `listing the EndpointSlices of Service ${namespace}/${name}: ${reasonOf(err)}` };
    }
  };
  const keys = new Map(refs.map((r) => [serviceKey(r), r]));
  await Promise.all([...keys].map(async ([key, ref]) => out.set(key, await read(ref))));
  return out;
}

/**
 * The configuration text meshguard serves with: its ConfigMap (named after the release, beside
 * its Service), key config.yaml. Undefined when there is none, with why.
 */
export async function readConfigMap(
  connection: Connection,
  namespace: string,
  name: string,
): Promise<{ text: string } | { missing: string }> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  try {
    const cm = await connection.kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name, namespace });
    const text = cm.data?.[CONFIG_KEY];
    return text === undefined ? { missing: `ConfigMap ${namespace}/${name} has no ${CONFIG_KEY}` } : { text };
  } catch (err) {
    return { missing: `ConfigMap ${namespace}/${name}: ${statusOf(err) === 404 ? 'not found' : reasonOf(err)}` };
  }
}
