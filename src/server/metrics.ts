import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

/** A registry per server (not prom-client's global), so tests can build many apps. */
export function createMetrics(opts: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'meshguard_admission_requests_total',
      help: 'Admission requests by endpoint, kind, operation and outcome (allowed, patched, denied, invalid).',
      labelNames: ['endpoint', 'kind', 'operation', 'outcome'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'meshguard_admission_duration_seconds',
      help: 'Time from a decoded review to its answer.',
      labelNames: ['endpoint'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
      registers: [registry],
    }),
    policyResults: new Counter({
      name: 'meshguard_policy_results_total',
      help: 'Policy results by policy and result (pass, fail, warn, mutate, skip, error).',
      labelNames: ['policy', 'result'] as const,
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
