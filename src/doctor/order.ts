import { chart, helmUpgrade, releaseOf } from './chart.js';
import { ok, problem, type Finding } from './model.js';
import { isIstioInjector, isMeshguard, patchCommand, webhookObject, type Webhook } from './webhooks.js';

// Check webhook-order. The API server calls mutating webhook configurations in name order
// (k8s.io/apiserver pkg/admission/configuration/mutating_webhook_manager.go sorts them ByName),
// and Istio's injector reads what meshguard sets (proxy.istio.io/config, traffic.sidecar.istio.io/*)
// when it builds the proxy: meshguard must come first. It is called again after later webhooks
// changed the pod only with reinvocationPolicy IfNeeded.

const CHECK = 'webhook-order';
const unique = (names: Iterable<string>) => [...new Set(names)].sort();

export function checkOrder(mutating: readonly Webhook[]): Finding[] {
  const ours = mutating.filter(isMeshguard);
  const injectors = unique(mutating.filter(isIstioInjector).map((w) => w.configuration));
  if (ours.length === 0)
    return [
      problem(
        CHECK,
        undefined,
        'no MutatingWebhookConfiguration holds a meshguard webhook (*.meshguard.io)',
        'meshguard changes no pod: hold-application-until-proxy-starts, termination-drain, probe-port-exclusion and job-sidecar-quit never act',
        'install or upgrade the chart: helm upgrade --install meshguard charts/meshguard -n meshguard (README, Install)',
      ),
    ];
  const findings: Finding[] = [];
  for (const configuration of unique(ours.map((w) => w.configuration))) {
    const object = `MutatingWebhookConfiguration ${configuration}`;
    const before = injectors.filter((i) => i < configuration);
    if (injectors.length === 0)
      findings.push(
        ok(
          CHECK,
          object,
          'no Istio injector webhook found (*.sidecar-injector.istio.io, or calling /inject): nothing to run before',
        ),
      );
    else if (before.length === 0)
      findings.push(
        ok(CHECK, object, `sorts before ${injectors.join(', ')}: Istio's injector sees meshguard's changes`),
      );
    else
      findings.push(
        problem(
          CHECK,
          object,
          `sorts after ${before.join(', ')}: the API server calls Istio's injector first`,
          "the API server calls mutating configurations in name order; Istio's injector builds the proxy from the annotations meshguard sets (proxy.istio.io/config, traffic.sidecar.istio.io/excludeInboundPorts), so meshguard's hold, drain and probe changes land after the proxy was built without them",
          `give it a name that sorts before ${before[0]} (the chart's is ${chart.mutatingConfiguration}): ${helmUpgrade(releaseOf(ours))} restores it; by hand, kubectl get mutatingwebhookconfiguration ${configuration} -o yaml > mwc.yaml, set metadata.name: ${chart.mutatingConfiguration} and remove metadata.resourceVersion and uid, kubectl create -f mwc.yaml, then kubectl delete mutatingwebhookconfiguration ${configuration}`,
        ),
      );
  }
  for (const w of ours) {
    if (w.reinvocationPolicy === 'IfNeeded') {
      findings.push(
        ok(CHECK, webhookObject(w), 'reinvocationPolicy IfNeeded: called again when a later webhook changes the pod'),
      );
      continue;
    }
    findings.push(
      problem(
        CHECK,
        webhookObject(w),
        `reinvocationPolicy ${w.reinvocationPolicy ?? 'unset (Never)'}; the chart installs IfNeeded`,
        "a mutating webhook called after meshguard's (another injector, a policy engine) can change or drop what meshguard set, or add containers meshguard never judged; the API server calls meshguard again after such a change only with IfNeeded",
        patchCommand(w, 'reinvocationPolicy', 'IfNeeded'),
      ),
    );
  }
  return findings;
}
