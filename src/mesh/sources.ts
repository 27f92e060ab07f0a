import { isRecord } from '../guards.js';

// The Istio objects meshguard reads for the mesh profile, in one list: the server's watches, the
// one-off listings (audit, check --kubeconfig, meshguard mesh) and discovery (discover.ts) all
// follow it. Each keeps only the fields discovery reads (test/mesh-sources.test.ts holds the two
// to each other), so a Node's heartbeat or a chart's relabelling changes nothing that is kept.

/** A field path; `*` is every element of a list. */
type Path = readonly string[];

export interface IstioSource {
  kind: string;
  apiVersion: string;
  /** The API's plural name, for the watch's URL. */
  resource: string;
  /** Read in Istio's namespace only (least privilege: the chart's Role there), else cluster-wide. */
  inIstioNamespace: boolean;
  /** Which objects of the kind are Istio's, by name; the others are not read. */
  names?: RegExp;
  /** Text every name `names` accepts begins with: `meshguard check` parses such documents only when they hold it. */
  nameText?: string;
  /** What discovery reads of them; the rest is dropped. */
  fields: readonly Path[];
}

const REV: Path = ['metadata', 'labels', 'istio.io/rev'];
const CONTAINER = ['spec', 'template', 'spec', 'containers', '*'];

export const istioSources: readonly IstioSource[] = [
  {
    // Istio's injector webhooks (mutatingwebhook.yaml, revision-tags-mwc.yaml), and meshguard's own.
    kind: 'MutatingWebhookConfiguration',
    apiVersion: 'admissionregistration.k8s.io/v1',
    resource: 'mutatingwebhookconfigurations',
    inIstioNamespace: false,
    fields: [
      ['metadata', 'name'],
      REV,
      ['webhooks', '*', 'name'],
      ['webhooks', '*', 'namespaceSelector'],
      ['webhooks', '*', 'objectSelector'],
    ],
  },
  {
    // istio[-<rev>] (mesh config) and istio-sidecar-injector[-<rev>] (injector config and values).
    kind: 'ConfigMap',
    apiVersion: 'v1',
    resource: 'configmaps',
    inIstioNamespace: true,
    names: /^istio(-.+)?$/,
    nameText: 'istio',
    fields: [['metadata', 'name'], REV, ['data', 'config'], ['data', 'values'], ['data', 'mesh']],
  },
  {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    resource: 'deployments',
    inIstioNamespace: true,
    names: /^istiod(-.+)?$/,
    nameText: 'istiod',
    fields: [
      ['metadata', 'name'],
      REV,
      ['metadata', 'labels', 'app.kubernetes.io/version'],
      [...CONTAINER, 'name'],
      [...CONTAINER, 'image'],
      [...CONTAINER, 'env', '*', 'name'],
      [...CONTAINER, 'env', '*', 'value'],
    ],
  },
  {
    // The kubelets' versions: native sidecars under `auto`.
    kind: 'Node',
    apiVersion: 'v1',
    resource: 'nodes',
    inIstioNamespace: false,
    fields: [
      ['metadata', 'name'],
      ['status', 'nodeInfo', 'kubeletVersion'],
    ],
  },
];

const nameOf = (o: Record<string, unknown>) =>
  isRecord(o.metadata) && typeof o.metadata.name === 'string' ? o.metadata.name : '';

/** The source an object comes from, or undefined when it is none of Istio's objects meshguard reads. */
export function istioSourceOf(o: unknown): IstioSource | undefined {
  if (!isRecord(o)) return undefined;
  const source = istioSources.find((s) => s.kind === o.kind);
  return source && isOf(source, o) ? source : undefined;
}

/**
 * An object listed or watched as `source`'s kind is one discovery reads (its name counts). Items of
 * a list carry no kind of their own (the list does), so the kind is the source's, not the object's.
 */
export function isOf(source: IstioSource, o: unknown): boolean {
  return isRecord(o) && (!source.names || source.names.test(nameOf(o)));
}

/**
 * What is kept of `v` along `paths`: records keep only the named keys (never inherited ones), lists
 * are kept element by element under `*`, and a path through anything else keeps nothing of it.
 */
function keep(v: unknown, paths: readonly Path[]): unknown {
  if (paths.some((p) => p.length === 0)) return v;
  if (Array.isArray(v)) {
    const inner = paths.filter((p) => p[0] === '*').map((p) => p.slice(1));
    return inner.length > 0 ? v.map((e) => keep(e, inner)) : undefined;
  }
  if (!isRecord(v)) return undefined;
  const out: Record<string, unknown> = {};
  for (const key of new Set(paths.map((p) => p[0] ?? ''))) {
    if (key === '*' || !Object.hasOwn(v, key)) continue;
    const kept = keep(
      v[key],
      paths.filter((p) => p[0] === key).map((p) => p.slice(1)),
    );
    if (kept !== undefined) out[key] = kept;
  }
  return out;
}

/** The slim copy of an object of `source` that is kept: its kind (lists leave it out) and its `fields`. */
export function trimIstioObject(source: IstioSource, o: unknown): Record<string, unknown> {
  const kept = keep(o, source.fields);
  return { ...(isRecord(kept) ? kept : {}), kind: source.kind };
}
