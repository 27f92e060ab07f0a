// The chart's Grafana dashboard (charts/meshguard/dashboards/meshguard.json) asks only for what
// meshguard exports: every metric in every query, its label names, and the documented values of
// outcome and result, checked against the registry serve builds (src/server/metrics.ts). A renamed
// metric or label fails here, not as an empty panel in someone's Grafana. The README lists them all.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Histogram } from 'prom-client';
import t from 'tap';
import { isRecord } from '../src/guards.js';
import { packageRoot } from '../src/paths.js';
import { createMetrics } from '../src/server/metrics.js';

interface Exported {
  labels: Set<string>;
  help: string;
}

/** Series names as Prometheus stores them (a histogram's _bucket, _sum, _count) with their labels. */
function exported(): Map<string, Exported> {
  const out = new Map<string, Exported>();
  for (const m of createMetrics({ processMetrics: true }).registry.getMetricsAsArray()) {
    const names = 'labelNames' in m && Array.isArray(m.labelNames) ? m.labelNames : [];
    const labels = new Set(names.filter((l): l is string => typeof l === 'string'));
    const series = m instanceof Histogram ? ['_bucket', '_sum', '_count'].map((s) => m.name + s) : [m.name];
    for (const name of series)
      out.set(name, { labels: name.endsWith('_bucket') ? new Set([...labels, 'le']) : labels, help: m.help });
  }
  return out;
}

// What Prometheus adds to every series it scrapes (the Prometheus Operator's ServiceMonitor targets).
const TARGET_LABELS = new Set(['job', 'instance', 'namespace', 'service', 'pod', 'container', 'endpoint']);
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
]);

interface Selector {
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}

/** The metric selectors of a PromQL expression, and the labels it groups by. */
export function parsePromQL(expr: string): { selectors: Selector[]; grouping: string[] } {
  // String literals first, so that no bracket or brace inside one is read as structure.
  const strings: string[] = [];
  const masked = expr.replace(/"((?:[^"\\]|\\.)*)"/g, (_m, s: string) => `"${strings.push(s) - 1}"`);
  const grouping: string[] = [];
  const text = masked
    // Ranges and subqueries: [5m], [$__rate_interval], [1h:5m].
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _kw, labels: string) => {
      grouping.push(
        ...labels
          .split(',')
          .map((l) => l.trim())
          .filter(Boolean),
      );
      return ' ';
    });
  const selectors: Selector[] = [];
  // A name with its matchers and a call's parenthesis, or a bare matcher set, a string, a number or duration (5m).
  const token =
    /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?|\{[^}]*\}|"[0-9]+"|[0-9][0-9.]*(?:e[+-]?[0-9]+)?[a-z]*/g;
  for (const m of text.matchAll(token)) {
    const [, name, braces, call] = m;
    if (name === undefined) {
      if (m[0].startsWith('{')) throw new Error(`a selector without a metric name in ${expr}`);
      continue;
    }
    if (call !== undefined && braces === undefined) continue; // a function or aggregation
    if (KEYWORDS.has(name)) continue;
    const matchers = [...(braces ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([0-9]+)"/g)].map(
      ([, label = '', op = '', index = '']) => ({ label, op, value: strings[Number(index)] ?? '' }),
    );
    selectors.push({ metric: name, matchers });
  }
  return { selectors, grouping };
}

/** The values a label takes, as the metric's help lists them: "… outcome (allowed, patched, denied, invalid)." */
function documentedValues(help: string, label: string): Set<string> | undefined {
  const listed = new RegExp(`\\b${label}s? \\(([a-z, ]+)\\)`).exec(help)?.[1];
  return listed === undefined ? undefined : new Set(listed.split(',').map((v) => v.trim()));
}

const dashboardPath = join(packageRoot, 'charts/meshguard/dashboards/meshguard.json');
const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as unknown;

/** Every PromQL text in the dashboard: panel targets (rows included) and query variables. */
function queries(d: unknown): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  if (!isRecord(d)) return out;
  const panels = Array.isArray(d.panels) ? d.panels : [];
  const walk = (list: unknown[]) => {
    for (const p of list) {
      if (!isRecord(p)) continue;
      for (const target of Array.isArray(p.targets) ? p.targets : [])
        if (isRecord(target) && typeof target.expr === 'string')
          out.push({ where: String(p.title), expr: target.expr });
      if (Array.isArray(p.panels)) walk(p.panels);
    }
  };
  walk(panels);
  const templating = isRecord(d.templating) && Array.isArray(d.templating.list) ? d.templating.list : [];
  for (const v of templating) {
    if (!isRecord(v) || v.type !== 'query') continue;
    const q = isRecord(v.query) ? v.query.query : v.query;
    // label_values(metric{…}, label): the selector is PromQL, the label one of its labels.
    const lv = typeof q === 'string' ? /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/.exec(q) : null;
    if (lv) out.push({ where: `variable ${String(v.name)}`, expr: `max by (${lv[2]}) (${lv[1]})` });
    else if (typeof q === 'string') out.push({ where: `variable ${String(v.name)}`, expr: q });
  }
  return out;
}

t.test('the query parser finds metrics, matchers and grouping, and nothing else', async (t) => {
  t.strictSame(
    parsePromQL(
      'histogram_quantile(0.99, sum by (le, endpoint) (rate(a_bucket{job=~"$job",x="a}[b"}[$__rate_interval]))) / on (pod) b offset 5m',
    ),
    {
      selectors: [
        {
          metric: 'a_bucket',
          matchers: [
            { label: 'job', op: '=~', value: '$job' },
            { label: 'x', op: '=', value: 'a}[b' },
          ],
        },
        { metric: 'b', matchers: [] },
      ],
      grouping: ['le', 'endpoint', 'pod'],
    },
  );
});

t.test('every query of the dashboard asks for metrics, labels and values meshguard exports', async (t) => {
  const metrics = exported();
  const all = queries(dashboard);
  t.ok(all.length >= 15, `${all.length} queries`);
  for (const { where, expr } of all) {
    const { selectors, grouping } = parsePromQL(expr);
    t.ok(selectors.length > 0, `${where}: a metric in ${expr}`);
    const labels = new Set(TARGET_LABELS);
    for (const s of selectors) {
      const m = metrics.get(s.metric);
      if (!m) {
        t.fail(`${where}: ${s.metric} is not exported by meshguard`);
        continue;
      }
      for (const l of m.labels) labels.add(l);
      for (const { label, op, value } of s.matchers) {
        t.ok(m.labels.has(label) || TARGET_LABELS.has(label), `${where}: ${s.metric} has label ${label}`);
        const known = documentedValues(m.help, label);
        if (known === undefined || value.includes('$')) continue;
        const values = op === '=~' || op === '!~' ? value.split('|') : [value];
        for (const v of values) t.ok(known.has(v), `${where}: ${label}="${v}" is a value ${s.metric} takes`);
      }
    }
    for (const g of grouping) t.ok(labels.has(g), `${where}: grouped by ${g}, a label of its metrics`);
  }
});

t.test('the dashboard shows what it promises', async (t) => {
  const exprs = queries(dashboard).map((q) => q.expr);
  const some = (re: RegExp, what: string) =>
    t.ok(
      exprs.some((e) => re.test(e)),
      what,
    );
  some(/sum by \(policy, result\) \(rate\(meshguard_policy_results_total/, 'decisions by policy and result');
  some(/meshguard_admission_requests_total\{[^}]*outcome="denied"/, 'denials');
  some(/meshguard_admission_warnings_total/, 'warnings');
  some(
    /histogram_quantile\(0\.99, sum by \(le, endpoint\) \(rate\(meshguard_admission_duration_seconds_bucket/,
    'p99 latency',
  );
  some(/meshguard_config_reloads_total/, 'configuration reloads');
  some(/meshguard_mesh_profile_changes_total/, 'mesh-profile changes');
  some(/meshguard_mesh_profile_info/, 'the mesh profile in force');
});

t.test('the dashboard imports anywhere: its data source is a variable, ids and places are its own', async (t) => {
  if (!isRecord(dashboard)) throw new Error('not an object');
  t.equal(dashboard.id, null, 'no id of the Grafana it came from');
  t.equal(dashboard.uid, 'meshguard');
  t.equal(dashboard.__inputs, undefined, 'no import-time inputs: the sidecar cannot answer them');
  const panels = (dashboard.panels as Record<string, unknown>[]).filter(isRecord);
  const ids = panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of panels) {
    t.ok(isRecord(p.gridPos), `${String(p.title)}: placed`);
    if (p.type === 'row') continue;
    t.strictSame(
      p.datasource,
      { type: 'prometheus', uid: '${datasource}' },
      `${String(p.title)}: data source variable`,
    );
    t.ok(typeof p.description === 'string' && p.description.length > 0, `${String(p.title)}: described`);
  }
  const vars = (dashboard.templating as { list: { name: string; type: string; query: unknown }[] }).list;
  t.match(vars, [{ name: 'datasource', type: 'datasource', query: 'prometheus' }]);
});

t.test("the README's metric list names every meshguard metric", async (t) => {
  const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
  for (const m of createMetrics().registry.getMetricsAsArray()) t.match(readme, `\`${m.name}`, m.name);
});
