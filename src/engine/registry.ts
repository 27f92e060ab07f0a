import type { Operation } from '../admission/types.js';
import type { Policy } from './types.js';

const none: readonly Policy[] = [];

/** Policies indexed by API group, kind and operation: a request looks up only what applies. */
export class Registry {
  private readonly index = new Map<string, Policy[]>();
  /**
   * Pod policies, mutating or validating: they judge a Pod at /mutate, as Istio's injector sees it
   * (before it injects), and a workload's pod template at /validate. The engine decides Istio's
   * injection of the pod once for them.
   */
  readonly podPolicies: readonly Policy[];
  private readonly onPods: ReadonlySet<Policy>;

  constructor(readonly policies: readonly Policy[]) {
    for (const policy of policies) {
      for (const t of policy.targets) {
        for (const op of t.operations) {
          const k = `${t.group}/${t.kind}/${op}`;
          this.index.set(k, [...(this.index.get(k) ?? []), policy]);
        }
      }
    }
    this.podPolicies = this.for('', 'Pod', 'CREATE');
    this.onPods = new Set(this.podPolicies);
  }

  isPodPolicy(policy: Policy): boolean {
    return this.onPods.has(policy);
  }

  for(group: string, kind: string, operation: Operation): readonly Policy[] {
    return this.index.get(`${group}/${kind}/${operation}`) ?? none;
  }
}
