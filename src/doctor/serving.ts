import type { X509Certificate } from 'node:crypto';
import { couldNotCheck, ok, problem, type Finding } from './model.js';
import { notReadyHint, readyAddresses, serviceKey, showAddress, type Address, type ServiceRead } from './endpoints.js';
import { helmUpgrade, releaseOf } from './chart.js';
import { bundleCertificates, nameOf, verifyChain } from './tls.js';
import { patchCommand, targetOf, type ClientConfig, type Webhook } from './webhooks.js';

// Check serving-certificate: meshguard's webhooks grouped by where they call and the caBundle
// they trust; for each, the addresses the API server would connect to (a Service's ready
// endpoints, or the URL's host), then whether the certificate served there verifies against the
// caBundle for the name the API server checks (<service>.<namespace>.svc, or the URL's host:
// k8s.io/apiserver pkg/util/webhook/client.go) and how long until it expires. Pure: the
// connections are probe.ts's.

const CHECK = 'serving-certificate';
const DAY = 86_400_000;
const MAX_ENDPOINTS = 20;

export interface ServingGroup {
  webhooks: Webhook[];
  clientConfig: ClientConfig;
  serverName: string;
}

export type Plan = { group: ServingGroup; addresses: Address[] } | { group: ServingGroup; finding: Finding };

/** What a TLS connection to an address gave: the chain served (leaf first), or why there is none. */
export type Probe = { chain: X509Certificate[] } | { error: string };

export const probeKey = (serverName: string, a: Address) => `${serverName}@${showAddress(a)}`;

const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/** meshguard's webhooks by target and caBundle: the chart's four share one. */
export function servingGroups(ours: readonly Webhook[]): ServingGroup[] {
  const groups = new Map<string, ServingGroup>();
  for (const w of ours) {
    const cc = w.clientConfig;
    const key = `${targetOf(cc)} ${cc.caBundle}`;
    let serverName = '';
    if (cc.service) serverName = `${cc.service.name}.${cc.service.namespace}.svc`;
    else if (cc.url !== undefined && URL.canParse(cc.url)) serverName = hostOf(new URL(cc.url));
    const g = groups.get(key) ?? { webhooks: [], clientConfig: cc, serverName };
    g.webhooks.push(w);
    groups.set(key, g);
  }
  return [...groups.values()];
}

const names = (g: ServingGroup) => g.webhooks.map((w) => `${w.configuration}/${w.name}`).join(', ');
const objectOf = (g: ServingGroup) => `${targetOf(g.clientConfig)}, called by ${names(g)}`;

/** What a failed call costs, per webhook of the group: fail-open ones lose meshguard, Fail ones refuse. */
function consequence(g: ServingGroup): string {
  const refused = g.webhooks.filter((w) => (w.failurePolicy ?? 'Fail') === 'Fail').map((w) => w.name);
  const mutating = g.webhooks.some((w) => w.kind === 'MutatingWebhookConfiguration');
  const parts = [
    ...(mutating ? ["pods are admitted without meshguard's changes"] : []),
    ...(g.webhooks.some((w) => w.kind === 'ValidatingWebhookConfiguration' && w.failurePolicy === 'Ignore')
      ? ['objects are admitted unchecked']
      : []),
    ...(refused.length > 0 ? [`what ${refused.join(', ')} selects is refused (failurePolicy Fail)`] : []),
  ];
  return parts.join('; ');
}

/** Where to connect for each group: the addresses, or a finding when there is nowhere to. */
export function planServing(groups: readonly ServingGroup[], reads: ReadonlyMap<string, ServiceRead>): Plan[] {
  return groups.map((group): Plan => {
    const cc = group.clientConfig;
    const object = objectOf(group);
    if (cc.url !== undefined) {
      if (!URL.canParse(cc.url))
        return {
          group,
          finding: problem(
            CHECK,
            object,
            `url ${cc.url} cannot be parsed`,
            'the API server cannot call it',
            'set clientConfig.url to https://HOST:PORT/PATH',
          ),
        };
      const url = new URL(cc.url);
      return { group, addresses: [{ host: hostOf(url), port: Number(url.port || 443) }] };
    }
    if (!cc.service)
      return {
        group,
        finding: problem(
          CHECK,
          object,
          'clientConfig has neither service nor url',
          'the API server cannot call it',
          helmUpgrade(releaseOf(group.webhooks)),
        ),
      };
    const read = reads.get(serviceKey(cc.service));
    if (!read || 'error' in read)
      return {
        group,
        finding: couldNotCheck(
          CHECK,
          object,
          `Service ${serviceKey(cc.service)} could not be read${read ? `: ${read.error}` : ''}`,
          'its endpoints are where the certificate is served',
        ),
      };
    const why = `every call fails: ${consequence(group)}`;
    if ('absent' in read)
      return {
        group,
        finding: problem(
          CHECK,
          object,
          `Service ${serviceKey(cc.service)} does not exist`,
          why,
          `${helmUpgrade(releaseOf(group.webhooks))} (the chart creates the Service)`,
        ),
      };
    const ready = readyAddresses(read.service, read.slices, cc.service.port);
    if ('reason' in ready)
      return {
        group,
        finding: problem(
          CHECK,
          object,
          ready.reason,
          why,
          `kubectl -n ${cc.service.namespace} get service ${cc.service.name} -o yaml: its port ${cc.service.port} must lead to meshguard's https port`,
        ),
      };
    if (ready.addresses.length === 0)
      return {
        group,
        finding: problem(
          CHECK,
          object,
          `Service ${serviceKey(cc.service)} has no ready endpoints: meshguard is not running or not ready`,
          why,
          notReadyHint(read.service),
        ),
      };
    // Each endpoint is connected to: a replica with another certificate is found. A bound keeps it short.
    return { group, addresses: ready.addresses.slice(0, MAX_ENDPOINTS) };
  });
}

export interface ServingOptions {
  now: Date;
  minDays: number;
  /** What the API server trusts when a caBundle is empty: its system roots (approximated by Node's). */
  systemRoots: readonly X509Certificate[];
}

export function checkServing(
  plans: readonly Plan[],
  probes: ReadonlyMap<string, Probe>,
  opts: ServingOptions,
): Finding[] {
  // A caBundle that verifies what a target serves: the fix for a webhook whose own does not.
  const good = new Map<string, string>();
  const results = plans.map((plan) => {
    if ('finding' in plan) return [plan.finding];
    return plan.addresses.map((a) => {
      const judged = judge(plan.group, a, probes.get(probeKey(plan.group.serverName, a)), opts);
      if (judged.verified) good.set(targetOf(plan.group.clientConfig), plan.group.clientConfig.caBundle);
      return judged;
    });
  });
  return results.flat().map((r) => ('check' in r ? r : r.finding(good)));
}

interface Judged {
  verified: boolean;
  finding(good: ReadonlyMap<string, string>): Finding;
}

function judge(g: ServingGroup, a: Address, probe: Probe | undefined, opts: ServingOptions): Judged {
  const object = `${targetOf(g.clientConfig)} at ${showAddress(a)}, called by ${names(g)}`;
  const fixed = (f: Finding): Judged => ({ verified: false, finding: () => f });
  if (!probe || 'error' in probe)
    return fixed(
      couldNotCheck(
        CHECK,
        object,
        `could not connect from here${probe ? `: ${probe.error}` : ''}`,
        "the API server may reach addresses this machine cannot (pod IPs): run doctor where it can, e.g. in meshguard's pod: kubectl -n NAMESPACE exec deploy/meshguard -- node /app/dist/src/cli.js doctor",
      ),
    );
  const cc = g.clientConfig;
  const bundle = cc.caBundle === '' ? { certs: [...opts.systemRoots] } : bundleCertificates(cc.caBundle);
  const why = `the API server checks the certificate against the caBundle on every call, so every call fails: ${consequence(g)}`;
  if ('problem' in bundle) return fixed(problem(CHECK, object, bundle.problem, why, caFix(g, undefined)));
  const v = verifyChain(probe.chain, bundle.certs, g.serverName, opts.now);
  if (!v.ok) {
    const what = `the ${cc.caBundle === '' ? 'system roots (the caBundle is empty)' : 'caBundle'} do${cc.caBundle === '' ? '' : 'es'} not verify the certificate served for ${g.serverName}: ${v.reason}`;
    return { verified: false, finding: (good) => problem(CHECK, object, what, why, caFix(g, good.get(targetOf(cc)))) };
  }
  const days = Math.floor((v.expires.getTime() - opts.now.getTime()) / DAY);
  const which = v.expiring === v.leaf ? 'it' : `its issuer ${nameOf(v.expiring.subject)}`;
  if (days < opts.minDays)
    return {
      verified: true,
      finding: () =>
        problem(
          CHECK,
          object,
          `the certificate served for ${g.serverName} verifies, but ${which} expires on ${v.expires.toISOString()}, in ${days} days (--min-cert-days ${opts.minDays})`,
          `from then on the API server rejects it and every call fails: ${consequence(g)}`,
          renewFix(g),
        ),
    };
  return {
    verified: true,
    finding: () =>
      ok(
        CHECK,
        object,
        `the caBundle verifies the certificate served for ${g.serverName} (issuer ${nameOf(v.leaf.issuer)}); ${which} expires on ${v.expires.toISOString()}, in ${days} days`,
      ),
  };
}

const INJECT_CA = 'cert-manager.io/inject-ca-from';

/** The caBundle's fix: another webhook's bundle that verifies this target, cert-manager's injector, or the chart value. */
function caFix(g: ServingGroup, good: string | undefined): string {
  if (good !== undefined) return g.webhooks.map((w) => patchCommand(w, 'clientConfig/caBundle', good)).join(' && ');
  const injected = g.webhooks.find((w) => w.annotations[INJECT_CA])?.annotations[INJECT_CA];
  if (injected)
    return `cert-manager's cainjector writes this caBundle from Certificate ${injected} (annotation ${INJECT_CA}): check that it runs (kubectl -n cert-manager logs deploy/cert-manager-cainjector) and that the Certificate is Ready (kubectl -n ${injected.split('/')[0]} get certificate ${injected.split('/')[1]})`;
  return `put the CA that signed meshguard's certificate in the caBundle: ${helmUpgrade(releaseOf(g.webhooks), '--set tls.caBundle="$(base64 -w0 ca.crt)"')}`;
}

function renewFix(g: ServingGroup): string {
  const injected = g.webhooks.find((w) => w.annotations[INJECT_CA])?.annotations[INJECT_CA];
  if (injected)
    return `cert-manager renews it certManager.renewBefore ahead: check Certificate ${injected} (kubectl -n ${injected.split('/')[0]} describe certificate ${injected.split('/')[1]})`;
  const svc = g.clientConfig.service;
  const names = svc ? `--service ${svc.name} --namespace ${svc.namespace}` : '--service NAME --namespace NAMESPACE';
  return `meshguard certs ${names} --out DIR --force, then replace the tls.existingSecret Secret with DIR/tls.crt and tls.key (kubectl create secret tls … --dry-run=client -o yaml | kubectl apply -f -; meshguard reloads it) and the caBundle with what certs printed (${helmUpgrade(releaseOf(g.webhooks), '--set tls.caBundle=…')}), together`;
}
