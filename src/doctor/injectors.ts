import { compileSelector, type Labels } from '../mesh/selector.js';
import { notReadyHint, readyAddresses, serviceKey, showAddress, type Address, type ServiceRead } from './endpoints.js';
import { couldNotCheck, ok, problem, type Finding } from './model.js';
import { probeKey, type Probe } from './serving.js';
import { targetOf, type Webhook } from './webhooks.js';

// Check injector-endpoints: every Istio injector webhook has somewhere to send pods. One whose
// Service has no ready endpoint fails every call: with failurePolicy Fail (Istio's chart default,
// istio-discovery templates/mutatingwebhook.yaml) the API server refuses every pod the webhook
// selects — the FAQs' first section, "pods are not created". Pure.

const CHECK = 'injector-endpoints';

export interface InjectorGroup {
  configuration: string;
  webhooks: Webhook[];
}

/** Istio's injector webhooks by configuration and target (a configuration's webhooks share one). */
export function injectorGroups(injectors: readonly Webhook[]): InjectorGroup[] {
  const groups = new Map<string, InjectorGroup>();
  for (const w of injectors) {
    const key = `${w.configuration} ${targetOf(w.clientConfig)}`;
    const g = groups.get(key) ?? { configuration: w.configuration, webhooks: [] };
    g.webhooks.push(w);
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** The URLs injectors call, for the edge to connect to (a Service's endpoints are read instead). */
export function urlTargets(groups: readonly InjectorGroup[]): { serverName: string; address: Address }[] {
  return groups.flatMap((g) => {
    const url = g.webhooks[0]?.clientConfig.url;
    if (url === undefined || !URL.canParse(url)) return [];
    const u = new URL(url);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    return [{ serverName: host, address: { host, port: Number(u.port || 443) } }];
  });
}

/** Which pods a failing injector holds up: the namespaces where a plain pod selects it, and labelled pods elsewhere. */
function reach(webhooks: readonly Webhook[], namespaces: ReadonlyMap<string, Labels>): string {
  const plain = [...namespaces]
    .filter(([, labels]) =>
      webhooks.some((w) => compileSelector(w.namespaceSelector)(labels) && compileSelector(w.objectSelector)({})),
    )
    .map(([name]) => name)
    .sort();
  const shown = plain.length > 8 ? [...plain.slice(0, 8), `and ${plain.length - 8} more`] : plain;
  const byLabel = webhooks.some((w) => !compileSelector(w.objectSelector)({}));
  const where = plain.length > 0 ? `every pod created in ${shown.join(', ')}` : 'no namespace today';
  return byLabel ? `${where}, and every pod whose own labels select it elsewhere` : where;
}

/** What a failing call costs; `error` is what the API server then says, after the webhook's name. */
function consequence(g: InjectorGroup, namespaces: ReadonlyMap<string, Labels>, error = ''): string {
  const failing = g.webhooks.filter((w) => (w.failurePolicy ?? 'Fail') === 'Fail');
  if (failing.length > 0)
    return `failurePolicy Fail: the API server refuses ${reach(failing, namespaces)} (Internal error occurred: failed calling webhook "${failing[0]?.name}"${error}): Deployments and Jobs get no new pods until it answers`;
  return `failurePolicy Ignore: ${reach(g.webhooks, namespaces)} is created without a sidecar, after waiting for the call to fail`;
}

export interface InjectorInput {
  groups: readonly InjectorGroup[];
  reads: ReadonlyMap<string, ServiceRead>;
  /** TLS connections to URL injectors, by probeKey. */
  probes: ReadonlyMap<string, Probe>;
  namespaces: ReadonlyMap<string, Labels>;
}

export function checkInjectors({ groups, reads, probes, namespaces }: InjectorInput): Finding[] {
  if (groups.length === 0)
    return [ok(CHECK, undefined, 'no Istio injector webhook found (*.sidecar-injector.istio.io, or calling /inject)')];
  return groups.map((g) => {
    const cc = g.webhooks[0]?.clientConfig ?? { caBundle: '' };
    const object = `MutatingWebhookConfiguration ${g.configuration} (${g.webhooks.map((w) => w.name).join(', ')}) → ${targetOf(cc)}`;
    const retire = `if its revision is retired, label its namespaces for an installed one and kubectl delete mutatingwebhookconfiguration ${g.configuration}`;
    if (cc.url !== undefined) {
      const [target] = urlTargets([g]);
      const probe = target && probes.get(probeKey(target.serverName, target.address));
      if (probe && 'chain' in probe)
        return ok(CHECK, object, `answers TLS at ${showAddress(target.address)} (a URL: no Service to read)`);
      return couldNotCheck(
        CHECK,
        object,
        `could not connect from here${probe ? `: ${probe.error}` : ''}`,
        'the API server may reach this URL where this machine cannot',
      );
    }
    if (!cc.service)
      return couldNotCheck(CHECK, object, 'clientConfig has neither service nor url', 'nothing to look at');
    const svc = serviceKey(cc.service);
    const read = reads.get(svc);
    if (!read || 'error' in read)
      return couldNotCheck(
        CHECK,
        object,
        `Service ${svc} could not be read${read ? `: ${read.error}` : ''}`,
        'its EndpointSlices say whether istiod is there',
      );
    if ('absent' in read)
      return problem(
        CHECK,
        object,
        `Service ${svc} does not exist`,
        consequence(g, namespaces),
        `install istiod for this revision (its chart creates the Service); ${retire}`,
      );
    const ready = readyAddresses(read.service, read.slices, cc.service.port);
    if ('reason' in ready) return problem(CHECK, object, ready.reason, consequence(g, namespaces), retire);
    if (ready.addresses.length > 0)
      return ok(
        CHECK,
        object,
        `${ready.addresses.length} ready endpoint${ready.addresses.length === 1 ? '' : 's'} (${ready.addresses.map(showAddress).join(', ')})`,
      );
    return problem(
      CHECK,
      object,
      `Service ${svc} has no ready endpoints: no istiod answers these webhooks`,
      consequence(g, namespaces, `: … no endpoints available for service "${cc.service.name}"`),
      `bring istiod back (${notReadyHint(read.service)}); ${retire}`,
    );
  });
}
