import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

type Counts = Map<string, Counts | number>;

/**
 * Counts kept on the hot path and added to a prom-client counter when the registry is read (a
 * scrape, a test): prom-client's inc() validates and hashes a labels object on every call, and an
 * admission makes several. Nested Maps keyed by the label values themselves: those are mostly
 * string constants whose hashes V8 keeps, where a joined key would be a new string to hash on
 * every call (8× slower; both cost 5 % of a pod review's CPU together with the histogram).
 * Entries stay (at zero) once seen.
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

const DURATION = { name: 'meshguard_admission_duration_seconds', help: 'Time from a decoded review to its answer.' };

/**
 * The admission duration histogram, counted in arrays: prom-client's observe() validates and
 * hashes a labels object and turns the bucket's bound into a property key on every call (2 % of a
 * pod review's CPU). prom-client registers and prints it; only the values come from here, in the
 * shape its own Histogram gives its registry.
 */
class DurationHistogram extends Histogram<'endpoint'> {
  private readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();

  constructor(
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super({
      name: DURATION.name,
      help: DURATION.help,
      labelNames: ['endpoint'],
      buckets: [...bounds],
      registers: [registry],
    });
  }

  record(endpoint: string, seconds: number): void {
    let series = this.series.get(endpoint);
    if (!series) this.series.set(endpoint, (series = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
    let i = 0;
    while (i < this.bounds.length && seconds > (this.bounds[i] as number)) i++;
    if (i < this.bounds.length) series.buckets[i]! += 1;
    series.sum += seconds;
    series.count += 1;
  }

  // What prom-client's registry reads to print a histogram (and its get() builds on).
  async getForPromString() {
    const { name, help } = DURATION;
    const values: {
      labels: Record<string, string | number>;
      sharedLabels: Record<string, string>;
      value: number;
      metricName: string;
    }[] = [];
    for (const [endpoint, { buckets, sum, count }] of this.series) {
      const sharedLabels = { endpoint };
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += buckets[i] ?? 0;
        values.push({ labels: { le }, sharedLabels, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels, value: count, metricName: `${name}_bucket` });
      values.push({ labels: {}, sharedLabels, value: sum, metricName: `${name}_sum` });
      values.push({ labels: {}, sharedLabels, value: count, metricName: `${name}_count` });
    }
    return { name, help, type: 'histogram', values, aggregator: 'sum' };
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
  const duration = new DurationHistogram(
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
    registry,
  );
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
      duration.record(endpoint, seconds);
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
  };
}
