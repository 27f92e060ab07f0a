import t from 'tap';
import { add, histograms, minus, quantile } from '../bench/prometheus.js';

const scrape = (n: number) => `# HELP x
apiserver_admission_webhook_admission_duration_seconds_bucket{name="a.io",operation="CREATE",rejected="false",type="admit",le="0.005"} ${n}
apiserver_admission_webhook_admission_duration_seconds_bucket{name="a.io",operation="CREATE",rejected="false",type="admit",le="0.025"} ${3 * n}
apiserver_admission_webhook_admission_duration_seconds_bucket{name="a.io",operation="CREATE",rejected="false",type="admit",le="+Inf"} ${4 * n}
apiserver_admission_webhook_admission_duration_seconds_sum{name="a.io",operation="CREATE",rejected="false",type="admit"} ${0.04 * n}
apiserver_admission_webhook_admission_duration_seconds_count{name="a.io",operation="CREATE",rejected="false",type="admit"} ${4 * n}
apiserver_admission_webhook_admission_duration_seconds_count{name="b.io",operation="UPDATE",rejected="false",type="validate"} 7
`;

t.test('a histogram per webhook, differences, quantiles as histogram_quantile', async (t) => {
  const name = 'apiserver_admission_webhook_admission_duration_seconds';
  const before = histograms(scrape(10), name, 'name', (l) => l.operation === 'CREATE');
  const after = histograms(scrape(30), name, 'name', (l) => l.operation === 'CREATE');
  t.same([...after.keys()], ['a.io'], 'only the label sets asked for');
  const d = minus(after.get('a.io')!, before.get('a.io'));
  t.equal(d.count, 80);
  t.equal(d.buckets[0]?.count, 20);
  t.ok(Math.abs(d.sum - 0.8) < 1e-9);
  t.equal(quantile(d, 0.25), 0.005, 'the first bucket holds the first quarter');
  t.ok(Math.abs(quantile(d, 0.5) - 0.015) < 1e-9, 'linear within 5-25 ms');
  t.equal(quantile(d, 0.99), 0.025, 'in +Inf: the last finite bound');
  t.equal(add(d, d).count, 160);
  t.ok(Number.isNaN(quantile({ buckets: [], sum: 0, count: 0 }, 0.5)));
});
