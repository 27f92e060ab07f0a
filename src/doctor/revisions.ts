import { neverInjectsNamespace } from '../mesh/injection.js';
import { INJECTION, REV, revValues } from '../mesh/revisions.js';
import { compileSelector, type Labels } from '../mesh/selector.js';
import { ok, problem, type Finding } from './model.js';
import type { Webhook } from './webhooks.js';

// Check namespace-revisions: a namespace labelled for injection (istio-injection=enabled, or
// istio.io/rev=<rev> without istio-injection) that no injector webhook's selectors take. Its pods
// are created without a sidecar and nothing says so. Judged on the webhooks in the cluster, as the
// API server matches them (the namespace-injection guardrail warns on the same at admission).

const CHECK = 'namespace-revisions';

/** The `istio.io/rev` values that, alone on a namespace, some injector webhook takes. */
export function servedRevisions(injectors: readonly Webhook[]): string[] {
  const names = new Set<string>();
  for (const w of injectors)
    for (const name of revValues(w.namespaceSelector))
      if (compileSelector(w.namespaceSelector)({ [REV]: name })) names.add(name);
  return [...names].sort();
}

export function checkRevisions(injectors: readonly Webhook[], namespaces: ReadonlyMap<string, Labels>): Finding[] {
  const matchers = injectors.map((w) => ({
    ns: compileSelector(w.namespaceSelector),
    pod: compileSelector(w.objectSelector),
  }));
  const installed = servedRevisions(injectors);
  const findings: Finding[] = [];
  const served: string[] = [];
  for (const [name, labels] of [...namespaces].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const injection = labels[INJECTION];
    const rev = labels[REV];
    const label =
      injection === 'enabled'
        ? `${INJECTION}=enabled`
        : rev !== undefined && injection === undefined
          ? `${REV}=${rev}`
          : undefined;
    // Istio never injects these whatever selects them (pkg/kube/inject/inject.go): not this check's.
    if (label === undefined || neverInjectsNamespace(name)) continue;
    if (matchers.some((m) => m.ns(labels) && m.pod({}))) {
      served.push(name);
      continue;
    }
    const relabel =
      installed[0] === undefined
        ? 'install an Istio revision for it'
        : injection === 'enabled'
          ? `kubectl label namespace ${name} ${INJECTION}- ${REV}=${installed[0]} --overwrite`
          : `kubectl label namespace ${name} ${REV}=${installed[0]} --overwrite`;
    findings.push(
      problem(
        CHECK,
        `Namespace ${name}`,
        `labelled ${label}, which no injector webhook serves (installed: ${installed.join(', ') || 'none'})`,
        'its pods are created without a sidecar and nothing says so: they are outside the mesh (no mTLS, none of its routing; under STRICT PeerAuthentication meshed clients cannot reach them)',
        `${relabel}${installed[0] === undefined || rev === undefined ? '' : `, or install revision ${rev}`}; then restart its workloads (kubectl -n ${name} rollout restart deployment)`,
      ),
    );
  }
  const shown = served.length > 10 ? [...served.slice(0, 10), `and ${served.length - 10} more`] : served;
  if (served.length > 0)
    findings.unshift(
      ok(
        CHECK,
        undefined,
        `${served.length} namespace${served.length === 1 ? '' : 's'} labelled for injection, each served: ${shown.join(', ')}`,
      ),
    );
  else if (findings.length === 0) findings.push(ok(CHECK, undefined, 'no namespace is labelled for injection'));
  return findings;
}
