// What `meshguard doctor` reports: a few checks, each a list of findings in a small vocabulary
// (ok, problem, could-not-check), every problem with what is wrong, why it matters and the fix.
// The checks are pure functions of what was listed from the cluster (and of the TLS probes'
// results), so they are tested with objects; src/commands/doctor.ts does the I/O.

export type Status = 'ok' | 'problem' | 'could-not-check';

/** The checks, in the order they are shown; the id is what the JSON output and tests name. */
export const checks = {
  'webhook-order': "meshguard's mutating webhook runs before Istio's injectors",
  'webhook-settings': "meshguard's webhook settings as the chart installs them",
  'serving-certificate': 'the caBundle verifies the certificate meshguard presents, and it is not about to expire',
  'injector-endpoints': "Istio's injector webhooks have somewhere to send pods",
  'namespace-revisions': 'namespaces labelled for injection name a revision some webhook serves',
  'mesh-profile': "the mesh profile meshguard's guardrails follow, and where each setting came from",
} as const;

export type CheckId = keyof typeof checks;

export interface Finding {
  check: CheckId;
  status: Status;
  /** What it is about: "MutatingWebhookConfiguration 0-meshguard, webhook mutate.meshguard.io". */
  object?: string;
  what: string;
  /** Why it matters: set on every problem and could-not-check. */
  why?: string;
  /** A concrete command or field: set on every problem. */
  fix?: string;
}

const rank: Record<Status, number> = { ok: 0, 'could-not-check': 1, problem: 2 };

/** The worst of some statuses: a problem outranks what could not be checked, which outranks ok. */
export function worst(statuses: Iterable<Status>): Status {
  let out: Status = 'ok';
  for (const s of statuses) if (rank[s] > rank[out]) out = s;
  return out;
}

/** 0 healthy, 1 a problem found, 2 something could not be checked (and no problem found). */
export function exitCodeOf(findings: readonly Finding[]): 0 | 1 | 2 {
  const s = worst(findings.map((f) => f.status));
  return s === 'ok' ? 0 : s === 'problem' ? 1 : 2;
}

export const ok = (check: CheckId, object: string | undefined, what: string): Finding => ({
  check,
  status: 'ok',
  ...(object !== undefined && { object }),
  what,
});

export const problem = (
  check: CheckId,
  object: string | undefined,
  what: string,
  why: string,
  fix: string,
): Finding => ({
  check,
  status: 'problem',
  ...(object !== undefined && { object }),
  what,
  why,
  fix,
});

export const couldNotCheck = (check: CheckId, object: string | undefined, what: string, why: string): Finding => ({
  check,
  status: 'could-not-check',
  ...(object !== undefined && { object }),
  what,
  why,
});
