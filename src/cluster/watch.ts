import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { MemoryClusterView } from './memory.js';
import { namespaceRecord, serviceEntryRecord, serviceRecord } from './records.js';
import { Reflector, type Sink } from './reflector.js';

/** The cluster view the server keeps current from watches. */
export interface LiveCluster {
  view: MemoryClusterView;
  /** null once every resource was listed, else what is still syncing. */
  notReady(): string | null;
  stop(): void;
}

const idOf = (obj: unknown) => {
  const m = (obj as { metadata?: { namespace?: string; name?: string } })?.metadata;
  return { namespace: m?.namespace ?? '', name: m?.name ?? '' };
};

/** A sink that keeps one resource's slim records in the view. */
function sink(add: (obj: unknown) => void, remove: (obj: unknown) => void, clear: () => void): Sink {
  return {
    reset(objects) {
      clear();
      for (const o of objects) add(o);
    },
    upsert: add,
    remove,
  };
}

export function watchCluster(kc: KubeConfig, logger: Logger, opts: { retryMissingMs?: number } = {}): LiveCluster {
  const view = new MemoryClusterView();
  const reflectors = [
    new Reflector(
      kc,
      { name: 'namespaces', kind: 'Namespace', apiVersions: ['v1'], path: () => '/api/v1/namespaces' },
      sink(
        (o) => {
          const ns = namespaceRecord(o);
          if (ns) view.setNamespace(ns.name, ns.labels);
        },
        (o) => view.deleteNamespace(idOf(o).name),
        () => view.clearNamespaces(),
      ),
      logger,
    ),
    new Reflector(
      kc,
      { name: 'services', kind: 'Service', apiVersions: ['v1'], path: () => '/api/v1/services' },
      sink(
        (o) => {
          const svc = serviceRecord(o);
          if (svc) view.setService(svc);
        },
        (o) => view.deleteService(idOf(o).namespace, idOf(o).name),
        () => view.clearServices(),
      ),
      logger,
    ),
    new Reflector(
      kc,
      {
        name: 'serviceentries',
        kind: 'ServiceEntry',
        // Istio serves v1 since 1.22, v1beta1 and v1alpha3 before: the first one served wins.
        apiVersions: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
        path: (v) => `/apis/${v}/serviceentries`,
        optional: true,
      },
      sink(
        (o) => {
          const se = serviceEntryRecord(o);
          if (se) view.setServiceEntry(se);
        },
        (o) => view.deleteServiceEntry(idOf(o).namespace, idOf(o).name),
        () => view.clearServiceEntries(),
      ),
      logger,
      opts,
    ),
  ].map((r) => r.start());
  const names = ['namespaces', 'services', 'serviceentries'];
  return {
    view,
    notReady() {
      const waiting = names.filter((_, i) => !reflectors[i]?.synced);
      return waiting.length === 0 ? null : `cluster caches not synced: ${waiting.join(', ')}`;
    },
    stop() {
      for (const r of reflectors) r.stop();
    },
  };
}
