// Histograms from Prometheus text (the API server's /metrics, meshguard's): the difference between
// two scrapes, its mean and its quantiles, as histogram_quantile() computes them.

export interface Histogram {
  /** Upper bounds, ascending, +Inf last, with cumulative counts. */
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

/** Labels of one sample line: `{a="x",b="y"}` (values without escaped quotes, as these metrics have). */
function labelsOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)="([^"]*)"/g)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}

/**
 * The histograms named `name`, summed over the label sets `match` accepts, by the value of the label
 * `by` (e.g. the webhook name); `le` is never a key.
 */
export function histograms(
  text: string,
  name: string,
  by: string,
  match: (labels: Record<string, string>) => boolean = () => true,
): Map<string, Histogram> {
  const out = new Map<string, Histogram>();
  const get = (key: string) => {
    let h = out.get(key);
    if (!h) out.set(key, (h = { buckets: [], sum: 0, count: 0 }));
    return h;
  };
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)\{([^}]*)\} (\S+)/.exec(line);
    if (!m) continue;
    const [, metric, labelText, valueText] = m;
    const labels = labelsOf(labelText ?? '');
    if (!match(labels)) continue;
    const h = get(labels[by] ?? '');
    const value = Number(valueText);
    if (metric === `${name}_bucket`) {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      const b = h.buckets.find((x) => x.le === le);
      if (b) b.count += value;
      else h.buckets.push({ le, count: value });
    } else if (metric === `${name}_sum`) h.sum += value;
    else if (metric === `${name}_count`) h.count += value;
  }
  for (const h of out.values()) h.buckets.sort((a, b) => a.le - b.le);
  return out;
}

/** after − before, bucket by bucket. */
export function minus(after: Histogram, before: Histogram | undefined): Histogram {
  return {
    buckets: after.buckets.map((b) => ({
      le: b.le,
      count: b.count - (before?.buckets.find((x) => x.le === b.le)?.count ?? 0),
    })),
    sum: after.sum - (before?.sum ?? 0),
    count: after.count - (before?.count ?? 0),
  };
}

export function add(a: Histogram | undefined, b: Histogram): Histogram {
  if (!a) return b;
  return {
    buckets: b.buckets.map((x) => ({ le: x.le, count: x.count + (a.buckets.find((y) => y.le === x.le)?.count ?? 0) })),
    sum: a.sum + b.sum,
    count: a.count + b.count,
  };
}

/** The q-quantile, linear within its bucket (as histogram_quantile); NaN when empty. */
export function quantile(h: Histogram, q: number): number {
  if (h.count <= 0) return NaN;
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower;
      return lower + ((b.le - lower) * (rank - below)) / Math.max(b.count - below, 1e-9);
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}
