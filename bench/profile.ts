// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by where the code
// lives (meshguard, fastify, pino, prom-client, node internals, …).
//   node dist/bench/profile.js FILE.cpuprofile [TOP] [REQUESTS]  (REQUESTS: also µs per request)
//   node dist/bench/profile.js --compare A.cpuprofile REQUESTS_A B.cpuprofile REQUESTS_B [TOP]
import { readFileSync } from 'node:fs';
import { fmt, table } from './common.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export function where(url: string): string {
  if (url === '') return '(native, GC, idle)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] ?? url;
  const own = /\/(src|bench)\/(.*)$/.exec(url);
  return own ? `meshguard ${own[1]}/${own[2]}` : url;
}

interface Tallies {
  total: number;
  idle: number;
  byFunction: Map<string, number>;
  byArea: Map<string, number>;
}

/** Self time (µs) by function and by area, from a profile's samples. */
export function tally(file: string): Tallies {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Time per sample from timeDeltas when present (hitCount alone assumes equal intervals).
  const self = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas?.[i + 1] ?? p.timeDeltas?.[i] ?? 0)));
  } else {
    const per = (p.endTime - p.startTime) / p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
    for (const n of p.nodes) self.set(n.id, (n.hitCount ?? 0) * per);
  }
  const t: Tallies = { total: 0, idle: 0, byFunction: new Map(), byArea: new Map() };
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      t.idle += us;
      continue;
    }
    t.total += us;
    const key = `${name} ${where(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    t.byFunction.set(key, (t.byFunction.get(key) ?? 0) + us);
    const a = name === '(garbage collector)' ? '(garbage collector)' : where(n.callFrame.url);
    t.byArea.set(a, (t.byArea.get(a) ?? 0) + us);
  }
  return t;
}

const sorted = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k);

export function summarise(file: string, top = 30, requests = 0): string {
  const t = tally(file);
  const pct = (us: number) =>
    `${fmt((100 * us) / t.total, 1)}%` + (requests > 0 ? ` ${fmt(us / requests, 1)} µs/req` : '');
  return [
    `${file}: ${fmt(t.total / 1000, 0)} ms busy, ${fmt(t.idle / 1000, 0)} ms idle`,
    '',
    table(
      ['where', 'self'],
      sorted(t.byArea, 25).map(([k, v]) => [k, pct(v)]),
    ),
    '',
    table(
      ['function', 'self'],
      sorted(t.byFunction, top).map(([k, v]) => [k, pct(v)]),
    ),
  ].join('\n');
}

/** Two profiles side by side in µs per request (each with its own request count), by area and function. */
export function compare(
  a: { file: string; requests: number },
  b: { file: string; requests: number },
  top = 30,
): string {
  const ta = tally(a.file);
  const tb = tally(b.file);
  const rows = (ma: Map<string, number>, mb: Map<string, number>) => {
    const keys = new Set([...ma.keys(), ...mb.keys()]);
    return [...keys]
      .map((k) => [k, (ma.get(k) ?? 0) / a.requests, (mb.get(k) ?? 0) / b.requests] as const)
      .sort((x, y) => Math.max(y[1], y[2]) - Math.max(x[1], x[2]))
      .slice(0, top)
      .map(([k, x, y]) => [k, fmt(x, 1), fmt(y, 1), `${y - x >= 0 ? '+' : ''}${fmt(y - x, 1)}`]);
  };
  return [
    `µs of CPU per request: A ${fmt(ta.total / a.requests, 1)} (${a.file}), B ${fmt(tb.total / b.requests, 1)} (${b.file})`,
    '',
    table(['where', 'A', 'B', 'B − A'], rows(ta.byArea, tb.byArea)),
    '',
    table(['function', 'A', 'B', 'B − A'], rows(ta.byFunction, tb.byFunction)),
  ].join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const args = process.argv.slice(2);
  if (args[0] === '--compare' && args.length >= 5) {
    process.stdout.write(
      compare(
        { file: args[1] ?? '', requests: Number(args[2]) },
        { file: args[3] ?? '', requests: Number(args[4]) },
        Number(args[5] ?? 30),
      ) + '\n',
    );
  } else if (args[0]) {
    process.stdout.write(summarise(args[0], Number(args[1] ?? 30), Number(args[2] ?? 0)) + '\n');
  } else {
    process.stderr.write(
      'usage: profile.js FILE.cpuprofile [TOP] [REQUESTS] | profile.js --compare A.cpuprofile REQUESTS_A B.cpuprofile REQUESTS_B [TOP]\n',
    );
    process.exit(2);
  }
}
