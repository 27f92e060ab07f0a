import yaml from 'js-yaml';
import type { Finding, ObjectReport } from './model.js';

// PolicyReports (https://openreports.io; formerly wgpolicyk8s.io of the Kubernetes policy working
// group): one per namespace and one for cluster-scoped objects, for `kubectl apply -f -`.
export const reportApis = ['openreports.io/v1alpha1', 'wgpolicyk8s.io/v1alpha2'] as const;
export type ReportApi = (typeof reportApis)[number];

const kinds: Record<ReportApi, { namespaced: string; cluster: string }> = {
  'openreports.io/v1alpha1': { namespaced: 'Report', cluster: 'ClusterReport' },
  'wgpolicyk8s.io/v1alpha2': { namespaced: 'PolicyReport', cluster: 'ClusterPolicyReport' },
};

type Outcome = 'pass' | 'fail' | 'warn' | 'error' | 'skip';

interface ReportResult {
  source: 'meshguard';
  policy: string;
  result: Outcome;
  scored: true;
  severity: 'high' | 'medium' | 'low' | 'info';
  category: string;
  message?: string;
  timestamp: { seconds: number; nanos: number };
  resources: { apiVersion: string; kind: string; namespace?: string; name: string }[];
  properties?: Record<string, string>;
}

/** What one policy found on one object, as one result. */
function outcome(found: readonly Finding[]): { result: Outcome; severity: ReportResult['severity'] } {
  if (found.some((f) => f.action === 'error')) return { result: 'error', severity: 'medium' };
  if (found.some((f) => f.action === 'deny' && f.unverified === undefined)) return { result: 'fail', severity: 'high' };
  if (found.length > 0) return { result: 'warn', severity: found.some((f) => f.action === 'deny') ? 'medium' : 'low' };
  return { result: 'pass', severity: 'info' };
}

export function renderPolicyReports(
  reports: readonly ObjectReport[],
  api: string = reportApis[0],
  now = new Date(),
): string {
  const { namespaced, cluster } = kinds[api as ReportApi] ?? kinds[reportApis[0]];
  const timestamp = { seconds: Math.floor(now.getTime() / 1000), nanos: 0 };
  const byNamespace = new Map<string, ReportResult[]>();
  for (const r of reports) {
    if (r.namespace === null) continue; // a report lives in its objects' namespace
    const resource = {
      apiVersion: r.apiVersion,
      kind: r.kind,
      ...(r.namespace && { namespace: r.namespace }),
      name: r.name,
    };
    for (const policy of r.policies) {
      const found = r.findings.filter((f) => f.policy === policy);
      const { result, severity } = outcome(found);
      const unverified = found.find((f) => f.unverified)?.unverified;
      const entry: ReportResult = {
        source: 'meshguard',
        policy,
        result,
        scored: true,
        severity,
        category: 'Istio',
        timestamp,
        resources: [resource],
        ...(found.length > 0 && {
          message: found
            .map((f) => f.message)
            .join('; ')
            .slice(0, 1024),
        }),
        ...((found.length > 0 || unverified) && {
          properties: {
            ...(found.length > 0 && { actions: [...new Set(found.map((f) => f.action))].join(',') }),
            ...(unverified && { unverified }),
          },
        }),
      };
      const list = byNamespace.get(r.namespace) ?? [];
      list.push(entry);
      byNamespace.set(r.namespace, list);
    }
  }
  const docs = [...byNamespace.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([namespace, results]) => {
      const summary = { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 };
      for (const r of results) summary[r.result]++;
      return {
        apiVersion: api,
        kind: namespace === '' ? cluster : namespaced,
        metadata: {
          name: 'meshguard',
          ...(namespace && { namespace }),
          labels: { 'app.kubernetes.io/managed-by': 'meshguard' },
        },
        // wgpolicyk8s.io has no report-level source; a strict apply refuses unknown fields.
        ...(api === 'openreports.io/v1alpha1' && { source: 'meshguard' }),
        summary,
        results,
      };
    });
  return docs.map((d) => '---\n' + yaml.dump(d, { noRefs: true, lineWidth: -1 })).join('');
}
