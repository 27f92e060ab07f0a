import { chart, helmUpgrade, releaseOf } from './chart.js';
import { ok, problem, type Finding } from './model.js';
import { isIstioInjector, isMeshguard, webhookObject, type Webhook } from './webhooks.js';

// Check webhook-order. The API server calls mutating webhook configurations in name order
// (k8s.io/apiserver pkg/admission/configuration/mutating_webhook_manager.go sorts them ByName),
// and Istio's injector reads what meshguard sets (proxy.istio.io/config, traffic.sidecar.istio.io/*)
// when it builds the proxy: meshguard must come first.

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
  // Reinvocation cannot make up for the order: the API server reinvokes only after every mutating
  // webhook ran once, so after Istio's injector, which is not reinvoked itself (Never in Istio's
  // chart) and skips an injected pod. IfNeeded only costs a second call per injected pod.
  for (const w of ours)
    findings.push(
      ok(
        CHECK,
        webhookObject(w),
        w.reinvocationPolicy === 'IfNeeded'
          ? "reinvocationPolicy IfNeeded: called a second time for every pod Istio injects, after Istio's injector, a call that changes nothing Istio reads (the chart installs Never)"
          : 'reinvocationPolicy Never: called once per pod',
      ),
    );
  return findings;
}
