import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Counts kept in a Map on the hot path and added to a prom-client counter when the registry is read
 * (a scrape, a test): prom-client's inc() hashes and validates a labels object on every call, and
 * an admission makes several. Entries stay (at zero) once seen, in the order they first occurred.
 */
class Tally<L extends string> {
  private readonly counts = new Map<string, number>();

  constructor(private readonly names: readonly L[]) {}

  /** One occurrence of these label values, in the order of the names. */
  add(a: string, b: string, c = '', d = ''): void {
    const key = this.names.length === 2 ? `${a}\0${b}` : `${a}\0${b}\0${c}\0${d}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Moves the counts into the counter. */
  fold(counter: Counter<L>): void {
    for (const [key, n] of this.counts) {
      if (n === 0) continue;
      const values = key.split('\0');
      const labels: Partial<Record<L, string>> = {};
      this.names.forEach((name, i) => (labels[name] = values[i] ?? ''));
      counter.inc(labels, n);
      this.counts.set(key, 0);
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
    duration: new Histogram({
      name: 'meshguard_admission_duration_seconds',
      help: 'Time from a decoded review to its answer.',
      labelNames: ['endpoint'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
      registers: [registry],
    }),
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
  };
}
