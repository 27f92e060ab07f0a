import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

type Level<L extends string> = Map<string, Level<L> | Entry<L>>;
interface Entry<L extends string> {
  labels: Partial<Record<L, string>>;
  n: number;
}

/**
 * Counts kept in nested Maps on the hot path (one level per label, so no key is built per count)
 * and added to a prom-client counter when the registry is read (a scrape, a test): prom-client's
 * inc() hashes and validates its labels object on every call, and an admission makes several.
 * Entries stay (at zero) once seen, so this holds the label sets the counter holds, and they
 * appear in the output in the order they first occurred.
 */
class Tally<L extends string> {
  private readonly root: Level<L> = new Map();
  private readonly entries: Entry<L>[] = [];

  constructor(private readonly names: readonly [L, L] | readonly [L, L, L, L]) {}

  /** One occurrence of these label values, in the order of the names. */
  add(a: string, b: string, c = '', d = ''): void {
    const depth = this.names.length;
    let level = this.root;
    for (let i = 0; i < depth - 1; i++) {
      const value = i === 0 ? a : i === 1 ? b : c;
      let next = level.get(value) as Level<L> | undefined;
      if (!next) level.set(value, (next = new Map()));
      level = next;
    }
    const last = depth === 2 ? b : d;
    const entry = level.get(last) as Entry<L> | undefined;
    if (entry) {
      entry.n++;
      return;
    }
    const values = [a, b, c, d];
    const labels: Partial<Record<L, string>> = {};
    this.names.forEach((name, i) => (labels[name] = values[i] ?? ''));
    const created = { labels, n: 1 };
    level.set(last, created);
    this.entries.push(created);
  }

  /** Moves the counts into the counter. */
  fold(counter: Counter<L>): void {
    for (const entry of this.entries) {
      if (entry.n === 0) continue;
      counter.inc(entry.labels, entry.n);
      entry.n = 0;
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
