import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

type Counts = Map<string, Counts | number>;

/**
 * Counts kept on the hot path and added to a prom-client counter when the registry is read (a
 * scrape, a test): prom-client's inc() validates and hashes a labels object on every call, and an
 * admission makes several. Nested Maps keyed by the label values themselves: those are mostly
 * string constants whose hashes V8 keeps, where a joined key would be a new string to hash on
 * every call (cost and equivalence test: the ledger in bench/RESULTS.md). Entries stay (at zero)
 * once seen.
 */
class Tally<L extends string> {
  private readonly counts: Counts = new Map();

  constructor(private readonly names: readonly L[]) {}

  /** One occurrence of these label values, in the order of the names. */
  add(...values: string[]): void {
    let level = this.counts;
    const last = this.names.length - 1;
    for (let i = 0; i < last; i++) {
      const value = values[i] ?? '';
      let next = level.get(value);
      if (!(next instanceof Map)) level.set(value, (next = new Map()));
      level = next;
    }
    const leaf = values[last] ?? '';
    level.set(leaf, ((level.get(leaf) as number | undefined) ?? 0) + 1);
  }

  /** Moves the counts into the counter. */
  fold(counter: Counter<L>, level = this.counts, labels: Partial<Record<L, string>> = {}, depth = 0): void {
    const name = this.names[depth] as L;
    for (const [value, entry] of level) {
      labels[name] = value;
      if (entry instanceof Map) {
        this.fold(counter, entry, labels, depth + 1);
      } else if (entry > 0) {
        counter.inc({ ...labels }, entry);
        level.set(value, 0);
      }
    }
  }
}

/** A registry per server (not prom-client's global), so tests can build many apps. */
export function createMetrics(opts: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  const requestCounts = new Tally(['endpoint', 'kind', 'operation', 'outcome'] as const);
  const policyCounts = new Tally(['policy', 'result'] as const);
  const requests = new Counter({
    name: 'meshguard_admission_requests_total',
    help: 'Admission requests by endpoint, kind, operation and outcome (allowed, patched, denied, invalid).',
    labelNames: ['endpoint', 'kind', 'operation', 'outcome'] as const,
    registers: [registry],
    collect() {
      requestCounts.fold(this);
    },
  });
  const policyResults = new Counter({
    name: 'meshguard_policy_results_total',
    help: 'Policy results by policy and result (pass, fail, warn, mutate, skip, error).',
    labelNames: ['policy', 'result'] as const,
    registers: [registry],
    collect() {
      policyCounts.fold(this);
    },
  });
  const duration = new Histogram({
    name: 'meshguard_admission_duration_seconds',
    help: 'Time from a decoded review to its answer.',
    labelNames: ['endpoint'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
    registers: [registry],
  });
  const warnings = new Counter({
    name: 'meshguard_admission_warnings_total',
    help: 'Warnings sent in admission answers, by endpoint (at most 20 per answer, the last saying how many more).',
    labelNames: ['endpoint'] as const,
    registers: [registry],
  });
  const meshChanges = new Counter({
    name: 'meshguard_mesh_profile_changes_total',
    help: 'Changes of the mesh profile in force (the Istio the guardrails follow), from discovery or configuration.',
    registers: [registry],
  });
  const meshInfo = new Gauge({
    name: 'meshguard_mesh_profile_info',
    help: 'The mesh profile in force: 1, labelled with its Istio version and root namespace.',
    labelNames: ['istio_version', 'root_namespace'] as const,
    registers: [registry],
  });
  let lastProfile: string | undefined;
  return {
    registry,
    requests,
    policyResults,
    /** An admission answered (outcome: allowed, patched, denied or invalid); the hot path's way to count one. */
    countRequest(endpoint: string, kind: string, operation: string, outcome: string): void {
      requestCounts.add(endpoint, kind, operation, outcome);
    },
    /** One policy's result for a request. */
    countPolicyResult(policy: string, result: string): void {
      policyCounts.add(policy, result);
    },
    /** How long an admission took, from its decoded review to its answer. */
    observeDuration(endpoint: string, seconds: number): void {
      duration.observe({ endpoint }, seconds);
    },
    configReloads: new Counter({
      name: 'meshguard_config_reloads_total',
      help: 'Configuration changes by result (success, failure).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    configGeneration: new Gauge({
      name: 'meshguard_config_generation',
      help: 'Generation of the configuration in force; increases with every change that takes effect.',
      registers: [registry],
    }),
    /** Warnings an answer carries, the ones the person applying reads. */
    countWarnings(endpoint: string, n: number): void {
      warnings.inc({ endpoint }, n);
    },
    /**
     * The mesh profile in force (as `summarize` gives it): its version and root namespace as an
     * info metric, and a change counted when it differs from the one before. The store announces
     * every rediscovery, most of which change nothing.
     */
    setMeshProfile(summary: { istioVersion: string; rootNamespace: string }): void {
      const fingerprint = JSON.stringify(summary);
      if (fingerprint === lastProfile) return;
      if (lastProfile !== undefined) meshChanges.inc();
      lastProfile = fingerprint;
      meshInfo.reset();
      meshInfo.set({ istio_version: summary.istioVersion, root_namespace: summary.rootNamespace }, 1);
    },
  };
}
