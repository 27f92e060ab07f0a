import yaml from 'js-yaml';
import { isRecord } from '../guards.js';
import type { DiscoveredMesh, InjectorWebhook, RevisionSettings } from './profile.js';
import { isRelease, parseVersion, showVersion } from './releases.js';
import { parseSelector, type LabelSelector } from './selector.js';
import { istioSourceOf } from './sources.js';

// The mesh profile from Istio's own objects, as the istio-discovery chart installs them
// (manifests/charts/istio-control/istio-discovery/templates: mutatingwebhook.yaml,
// revision-tags-mwc.yaml, istiod-injector-configmap.yaml, configmap.yaml, deployment.yaml):
// read the same way from a cluster's watches and from `meshguard check`'s input files. Pure.

type Obj = Record<string, unknown>;
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const labelsOf = (o: Obj): Obj => (isRecord(o.metadata) && isRecord(o.metadata.labels) ? o.metadata.labels : {});
const nameOf = (o: Obj) => (isRecord(o.metadata) ? (str(o.metadata.name) ?? '') : '');

/** Injector webhooks are named `*.sidecar-injector.istio.io` (rev.namespace., namespace., object., auto.). */
export const INJECTOR_WEBHOOK = /(^|\.)sidecar-injector\.istio\.io$/;
/** meshguard's own webhooks (charts/meshguard/files/webhooks.yaml): `*.meshguard.io`. */
export const MESHGUARD_WEBHOOK = /\.meshguard\.io$/;

/** The revision an object belongs to: its `istio.io/rev` label, else its name's suffix, else `default`. */
function revisionOf(o: Obj, base: string): string {
  const rev = str(labelsOf(o)['istio.io/rev']);
  if (rev) return rev;
  const name = nameOf(o);
  return name.startsWith(`${base}-`) ? name.slice(base.length + 1) : 'default';
}

function parseText(text: unknown, json: boolean): Obj | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const v: unknown = json ? JSON.parse(text) : yaml.load(text, { schema: yaml.CORE_SCHEMA });
    return isRecord(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

const at = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (isRecord(v) ? v[k] : undefined), o);
/** A YAML scalar as its text (`30s`, `true`): how the setting is shown; set at all is what counts. */
const scalar = (v: unknown) =>
  typeof v === 'string' ? v : typeof v === 'boolean' || typeof v === 'number' ? String(v) : undefined;
const bool = (v: unknown) => (typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : undefined);

function selectors(v: unknown, problems: string[], where: string): LabelSelector[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((s) => {
    const parsed = parseSelector(s);
    if (parsed.ok) return [parsed.selector];
    problems.push(`${where}: ${parsed.problem}`);
    return [];
  });
}

export function discoverMesh(objects: Iterable<unknown>): DiscoveredMesh {
  const webhooks: InjectorWebhook[] = [];
  const revisions = new Map<string, RevisionSettings>();
  const problems: string[] = [];
  const meshguardConfigurations: string[] = [];
  let oldestKubeletMinor: number | undefined;
  const settings = (rev: string) => {
    let s = revisions.get(rev);
    if (!s) revisions.set(rev, (s = {}));
    return s;
  };

  for (const o of objects) {
    // What is read, of which objects, is sources.ts's list: the watches keep just that.
    if (!isRecord(o) || !istioSourceOf(o)) continue;
    const name = nameOf(o);
    switch (o.kind) {
      case 'MutatingWebhookConfiguration': {
        if (!Array.isArray(o.webhooks)) break;
        // A tag's configuration carries the tagged revision in istio.io/rev (revision-tags-mwc.yaml).
        const revision = str(labelsOf(o)['istio.io/rev']) ?? 'default';
        if (o.webhooks.some((w) => isRecord(w) && MESHGUARD_WEBHOOK.test(str(w.name) ?? '')))
          meshguardConfigurations.push(name);
        for (const w of o.webhooks) {
          if (!isRecord(w) || !INJECTOR_WEBHOOK.test(str(w.name) ?? '')) continue;
          const ns = parseSelector(w.namespaceSelector);
          const obj = parseSelector(w.objectSelector);
          if (!ns.ok || !obj.ok) {
            problems.push(`${name}/${String(w.name)}: ${ns.ok ? '' : ns.problem}${obj.ok ? '' : obj.problem}`);
            continue;
          }
          webhooks.push({
            configuration: name,
            name: String(w.name),
            revision,
            namespaceSelector: ns.selector,
            objectSelector: obj.selector,
          });
        }
        break;
      }
      case 'ConfigMap': {
        const data = isRecord(o.data) ? o.data : {};
        if (/^istio-sidecar-injector(-.+)?$/.test(name)) {
          const s = settings(revisionOf(o, 'istio-sidecar-injector'));
          const config = parseText(data.config, false);
          const values = parseText(data.values, true);
          if (data.config !== undefined && !config) problems.push(`ConfigMap ${name}: key config is not YAML`);
          if (data.values !== undefined && !values) problems.push(`ConfigMap ${name}: key values is not JSON`);
          const policy = str(config?.policy);
          if (policy === 'enabled' || policy === 'disabled') s.policy = policy;
          s.neverInjectSelector = selectors(config?.neverInjectSelector, problems, name);
          s.alwaysInjectSelector = selectors(config?.alwaysInjectSelector, problems, name);
          s.rewriteProbes ??= bool(at(values, 'sidecarInjectorWebhook', 'rewriteAppHTTPProbe'));
          const hold = bool(at(values, 'global', 'proxy', 'holdApplicationUntilProxyStarts'));
          if (hold) s.holdApplicationUntilProxyStarts = true;
          // Both CNI keys as rendered; the profile reads the one the revision's template reads.
          s.istioCniEnabled ??= bool(at(values, 'istio_cni', 'enabled'));
          s.pilotCniEnabled ??= bool(at(values, 'pilot', 'cni', 'enabled'));
          // The template writes a non-empty global.proxy.lifecycle in place of its own (injection-template.yaml).
          const lifecycle = at(values, 'global', 'proxy', 'lifecycle');
          if (isRecord(lifecycle) && Object.keys(lifecycle).length > 0) s.proxyPreStop = isRecord(lifecycle.preStop);
        } else if (/^istio(-.+)?$/.test(name) && data.mesh !== undefined) {
          // istio[-<rev>] holds the mesh config (istio-ca-root-cert and the like have no `mesh` key).
          const s = settings(revisionOf(o, 'istio'));
          const mesh = parseText(data.mesh, false);
          if (data.mesh !== undefined && !mesh) problems.push(`ConfigMap ${name}: key mesh is not YAML`);
          s.rootNamespace ??= str(mesh?.rootNamespace);
          // The template holds when either the mesh's defaultConfig or the chart value says so.
          if (bool(at(mesh, 'defaultConfig', 'holdApplicationUntilProxyStarts')))
            s.holdApplicationUntilProxyStarts = true;
          const capture = bool(at(mesh, 'defaultConfig', 'proxyMetadata', 'ISTIO_META_DNS_CAPTURE'));
          if (capture !== undefined) s.dnsCapture = capture;
          // Istio reads the mesh config with protojson (pkg/config/mesh ApplyMeshConfig): either spelling.
          const proxy = at(mesh, 'defaultConfig');
          const drain = scalar(at(proxy, 'terminationDrainDuration') ?? at(proxy, 'termination_drain_duration'));
          if (drain !== undefined) s.terminationDrainDuration = drain;
          const metadata = at(proxy, 'proxyMetadata') ?? at(proxy, 'proxy_metadata');
          const exit = scalar(at(metadata, 'EXIT_ON_ZERO_ACTIVE_CONNECTIONS'));
          if (exit !== undefined) s.exitOnZeroActiveConnections = exit;
        }
        break;
      }
      case 'Deployment': {
        const s = settings(revisionOf(o, 'istiod'));
        const containers = at(o, 'spec', 'template', 'spec', 'containers');
        const discovery = Array.isArray(containers)
          ? containers.find((c) => isRecord(c) && c.name === 'discovery')
          : undefined;
        const image = str(at(discovery as Obj | undefined, 'image'))?.split('@')[0];
        // The chart's app.kubernetes.io/version, else the image tag. A chart built from Istio's
        // source says 1.0.0 and a dev image "latest": such a version is no release meshguard
        // knows (the oldest is 1.11), so it is said, not believed, unless the other one is one.
        const candidates = [
          parseVersion(str(labelsOf(o)['app.kubernetes.io/version'])),
          parseVersion(image?.slice(image.lastIndexOf(':') + 1)),
        ].filter((v) => v !== undefined);
        const version = candidates.find((v) => isRelease(v));
        if (version) s.version ??= version;
        else if (candidates[0])
          problems.push(
            `Deployment ${name}: version ${showVersion(candidates[0])} is no Istio release; set mesh.istioVersion`,
          );
        const env = at(discovery as Obj | undefined, 'env');
        for (const e of Array.isArray(env) ? env : []) {
          if (!isRecord(e) || e.name !== 'ENABLE_NATIVE_SIDECARS' || typeof e.value !== 'string') continue;
          // pilot/pkg/features/pilot.go: "true", "false", "auto"; anything else is false.
          s.nativeSidecars = e.value === 'true' ? 'enabled' : e.value === 'auto' ? 'auto' : 'disabled';
        }
        break;
      }
      case 'Node': {
        const v = parseVersion(str(at(o, 'status', 'nodeInfo', 'kubeletVersion')));
        if (v && (oldestKubeletMinor === undefined || v.minor < oldestKubeletMinor)) oldestKubeletMinor = v.minor;
        break;
      }
    }
  }
  return {
    webhooks,
    revisions,
    problems,
    meshguardConfigurations,
    ...(oldestKubeletMinor !== undefined && { oldestKubeletMinor }),
  };
}
