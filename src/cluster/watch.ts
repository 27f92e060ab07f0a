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

/** The cluster view and mesh discovery the server keeps current from watches. */
export interface LiveCluster {
  view: MemoryClusterView;
  /** null once every resource of the view was listed, else what is still syncing. */
  notReady(): string | null;
  stop(): void;
}

export interface WatchOptions {
  retryMissingMs?: number;
  /** Where istiod and its ConfigMaps live: watched there only (least privilege). */
  istioNamespace?: string;
  /** Called with Istio's objects (slim copies) whenever they change, for the mesh profile. */
  onIstioObjects?: (objects: unknown[]) => void;
}

const idOf = (obj: unknown) => {
  const m = isRecord(obj) && isRecord(obj.metadata) ? obj.metadata : {};
  return {
    namespace: typeof m.namespace === 'string' ? m.namespace : '',
    name: typeof m.name === 'string' ? m.name : '',
  };
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

/**
 * Istio's objects, each kept only as much as discovery reads, by kind/namespace/name. A change that
 * leaves the slim object as it was (a Node's heartbeat) recomputes nothing.
 */
class IstioObjects {
  private readonly objects = new Map<string, { slim: unknown; text: string }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly onChange: (objects: unknown[]) => void) {}

  sink(kind: string, slim: (o: Record<string, unknown>) => unknown): Sink {
    const key = (o: unknown) => `${kind}/${idOf(o).namespace}/${idOf(o).name}`;
    const put = (o: unknown) => {
      if (!isRecord(o)) return false;
      const s = slim(o);
      const text = JSON.stringify(s);
      if (this.objects.get(key(o))?.text === text) return false;
      this.objects.set(key(o), { slim: s, text });
      return true;
    };
    return {
      reset: (objects) => {
        for (const k of [...this.objects.keys()]) if (k.startsWith(`${kind}/`)) this.objects.delete(k);
        for (const o of objects) put(o);
        this.changed();
      },
      upsert: (o) => {
        if (put(o)) this.changed();
      },
      remove: (o) => {
        if (this.objects.delete(key(o))) this.changed();
      },
    };
  }

  /** Rediscovered once per burst of changes (a list of many Nodes is one). */
  private changed(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.onChange([...this.objects.values()].map((v) => v.slim));
    }, 50);
    this.timer.unref?.();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

const meta = (o: Record<string, unknown>) => {
  const m = isRecord(o.metadata) ? o.metadata : {};
  return { name: m.name, namespace: m.namespace, labels: m.labels };
};
const pick = (o: unknown, keys: readonly string[]) =>
  isRecord(o) ? Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]])) : undefined;

export function watchCluster(kc: KubeConfig, logger: Logger, opts: WatchOptions = {}): LiveCluster {
  const view = new MemoryClusterView();
  const istioNamespace = opts.istioNamespace ?? 'istio-system';
  const istio = opts.onIstioObjects ? new IstioObjects(opts.onIstioObjects) : undefined;
  const ns = (resource: string) => `/api/v1/namespaces/${istioNamespace}/${resource}`;

  // The view's resources: /readyz waits for these.
  const viewed: { spec: ReflectorSpec; sink: Sink }[] = [
    {
      spec: { name: 'namespaces', kind: 'Namespace', apiVersions: ['v1'], path: () => '/api/v1/namespaces' },
      sink: sink(
        (o) => {
          const n = namespaceRecord(o);
          if (n) view.setNamespace(n.name, n.labels);
        },
        (o) => view.deleteNamespace(idOf(o).name),
        () => view.clearNamespaces(),
      ),
    },
    {
      spec: { name: 'services', kind: 'Service', apiVersions: ['v1'], path: () => '/api/v1/services' },
      sink: sink(
        (o) => {
          const svc = serviceRecord(o);
          if (svc) view.setService(svc);
        },
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
        (o) => {
          const se = serviceEntryRecord(o);
          if (se) view.setServiceEntry(se);
        },
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
        (o) => {
          const pa = peerAuthenticationRecord(o);
          if (pa) view.setPeerAuthentication(pa);
        },
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
        (o) => {
          const dr = destinationRuleRecord(o);
          if (dr) view.setDestinationRule(dr);
          // A rule whose host was removed is no longer one the view can index.
          else view.deleteDestinationRule(idOf(o).namespace, idOf(o).name);
        },
        (o) => view.deleteDestinationRule(idOf(o).namespace, idOf(o).name),
        () => view.clearDestinationRules(),
      ),
    },
  ];
  // Istio's own objects, for the mesh profile (src/mesh/discover.ts reads these fields only).
  // Not waited for: until they are read, or when they can't be, the configured profile holds.
  const discovered: { spec: ReflectorSpec; sink: Sink }[] = istio
    ? [
        {
          spec: {
            name: 'mutatingwebhookconfigurations',
            kind: 'MutatingWebhookConfiguration',
            apiVersions: ['admissionregistration.k8s.io/v1'],
            path: (v) => `/apis/${v}/mutatingwebhookconfigurations`,
          },
          sink: istio.sink('MutatingWebhookConfiguration', (o) => ({
            kind: o.kind ?? 'MutatingWebhookConfiguration',
            metadata: meta(o),
            webhooks: Array.isArray(o.webhooks)
              ? o.webhooks.map((w) => pick(w, ['name', 'namespaceSelector', 'objectSelector']))
              : [],
          })),
        },
        {
          spec: {
            name: 'configmaps',
            kind: 'ConfigMap',
            apiVersions: ['v1'],
            namespace: istioNamespace,
            path: () => ns('configmaps'),
          },
          sink: istio.sink('ConfigMap', (o) => ({
            kind: 'ConfigMap',
            metadata: meta(o),
            data: pick(o.data, ['config', 'values', 'mesh']),
          })),
        },
        {
          spec: {
            name: 'deployments',
            kind: 'Deployment',
            apiVersions: ['apps/v1'],
            namespace: istioNamespace,
            path: () => `/apis/apps/v1/namespaces/${istioNamespace}/deployments`,
          },
          sink: istio.sink('Deployment', (o) => {
            const spec = isRecord(o.spec) && isRecord(o.spec.template) ? o.spec.template.spec : undefined;
            const containers = isRecord(spec) && Array.isArray(spec.containers) ? spec.containers : [];
            return {
              kind: 'Deployment',
              metadata: meta(o),
              spec: { template: { spec: { containers: containers.map((c) => pick(c, ['name', 'image', 'env'])) } } },
            };
          }),
        },
        {
          spec: { name: 'nodes', kind: 'Node', apiVersions: ['v1'], path: () => '/api/v1/nodes' },
          sink: istio.sink('Node', (o) => {
            const info = isRecord(o.status) && isRecord(o.status.nodeInfo) ? o.status.nodeInfo : {};
            return {
              kind: 'Node',
              metadata: { name: idOf(o).name },
              status: { nodeInfo: pick(info, ['kubeletVersion']) },
            };
          }),
        },
      ]
    : [];

  const start = ({ spec, sink }: { spec: ReflectorSpec; sink: Sink }) =>
    new Reflector(kc, spec, sink, logger, spec.optional ? opts : {}).start();
  const viewReflectors = viewed.map(start);
  const others = discovered.map(start);
  return {
    view,
    notReady() {
      const waiting = viewed.filter((_, i) => !viewReflectors[i]?.synced).map((r) => r.spec.name);
      return waiting.length === 0 ? null : `cluster caches not synced: ${waiting.join(', ')}`;
    },
    stop() {
      for (const r of [...viewReflectors, ...others]) r.stop();
      istio?.stop();
    },
  };
}
