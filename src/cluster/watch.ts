import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isRecord } from '../guards.js';
import { MemoryClusterView } from './memory.js';
import {
  destinationRuleRecord,
  namespaceRecord,
  peerAuthenticationRecord,
  serviceEntryRecord,
  serviceRecord,
} from './records.js';
import { Reflector, type ReflectorSpec, type Sink } from './reflector.js';

/** The cluster view the server keeps current from watches (Istio's objects: src/mesh/cluster.ts). */
export interface LiveCluster {
  view: MemoryClusterView;
  /** null once every resource of the view was listed, else what is still syncing. */
  notReady(): string | null;
  stop(): void;
}

export interface WatchOptions {
  retryMissingMs?: number;
}

/** An object's namespace and name ('' when it has none). */
export const idOf = (obj: unknown) => {
  const m = isRecord(obj) && isRecord(obj.metadata) ? obj.metadata : {};
  return {
    namespace: typeof m.namespace === 'string' ? m.namespace : '',
    name: typeof m.name === 'string' ? m.name : '',
  };
};

/**
 * A sink that keeps one resource's slim records in the view. An object that changed into one the
 * view cannot record (a DestinationRule whose host was removed) is no longer what it held: dropped.
 */
function sink<R>(
  record: (obj: unknown) => R | undefined,
  set: (r: R) => void,
  remove: (obj: unknown) => void,
  clear: () => void,
): Sink<R> {
  return {
    keep: record,
    reset(kept) {
      clear();
      for (const r of kept) set(r);
    },
    upsert(obj) {
      const r = record(obj);
      if (r) set(r);
      else remove(obj);
    },
    remove,
  };
}

export function watchCluster(kc: KubeConfig, logger: Logger, opts: WatchOptions = {}): LiveCluster {
  const view = new MemoryClusterView();

  // The view's resources: /readyz waits for these.
  const viewed: { spec: ReflectorSpec; sink: Sink }[] = [
    {
      spec: { name: 'namespaces', kind: 'Namespace', apiVersions: ['v1'], path: () => '/api/v1/namespaces' },
      sink: sink(
        namespaceRecord,
        (n) => view.setNamespace(n.name, n.labels),
        (o) => view.deleteNamespace(idOf(o).name),
        () => view.clearNamespaces(),
      ),
    },
    {
      spec: { name: 'services', kind: 'Service', apiVersions: ['v1'], path: () => '/api/v1/services' },
      sink: sink(
        serviceRecord,
        (svc) => view.setService(svc),
        (o) => view.deleteService(idOf(o).namespace, idOf(o).name),
        () => view.clearServices(),
      ),
    },
    {
      spec: {
        name: 'serviceentries',
        kind: 'ServiceEntry',
        // Istio serves v1 since 1.22, v1beta1 and v1alpha3 before: the first one served wins.
        apiVersions: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
        path: (v) => `/apis/${v}/serviceentries`,
        optional: true,
      },
      sink: sink(
        serviceEntryRecord,
        (se) => view.setServiceEntry(se),
        (o) => view.deleteServiceEntry(idOf(o).namespace, idOf(o).name),
        () => view.clearServiceEntries(),
      ),
    },
    {
      spec: {
        name: 'peerauthentications',
        kind: 'PeerAuthentication',
        // v1 from Istio 1.22, v1beta1 before.
        apiVersions: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
        path: (v) => `/apis/${v}/peerauthentications`,
        optional: true,
      },
      sink: sink(
        peerAuthenticationRecord,
        (pa) => view.setPeerAuthentication(pa),
        (o) => view.deletePeerAuthentication(idOf(o).namespace, idOf(o).name),
        () => view.clearPeerAuthentications(),
      ),
    },
    {
      spec: {
        name: 'destinationrules',
        kind: 'DestinationRule',
        apiVersions: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
        path: (v) => `/apis/${v}/destinationrules`,
        optional: true,
      },
      sink: sink(
        destinationRuleRecord,
        (dr) => view.setDestinationRule(dr),
        (o) => view.deleteDestinationRule(idOf(o).namespace, idOf(o).name),
        () => view.clearDestinationRules(),
      ),
    },
  ];
  const start = ({ spec, sink }: { spec: ReflectorSpec; sink: Sink }) =>
    new Reflector(kc, spec, sink, logger, spec.optional ? opts : {}).start();
  const viewReflectors = viewed.map(start);
  return {
    view,
    notReady() {
      const waiting = viewed.filter((_, i) => !viewReflectors[i]?.synced).map((r) => r.spec.name);
      return waiting.length === 0 ? null : `cluster caches not synced: ${waiting.join(', ')}`;
    },
    stop() {
      for (const r of viewReflectors) r.stop();
    },
  };
}
