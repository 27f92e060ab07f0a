// Instructions by function from the dumps `npm run bench -- instructions --keep DIR` leaves:
// callgrind_annotate's self cost per function, where V8's generated code (callgrind knows it only
// by address) is named from the perf map node wrote beside it (--perf-basic-prof).
//   node dist/bench/callgrind.js DIR TARGET [REQUESTS] [TOP]
//   node dist/bench/callgrind.js DIR TARGET_A TARGET_B [REQUESTS] [TOP]   (B − A, per request)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, table } from './common.js';

interface Range {
  start: number;
  end: number;
  name: string;
}

/** V8's perf map: `START SIZE name` per line, hexadecimal; sorted by start for a binary search. */
function perfMap(file: string): Range[] {
  if (!existsSync(file)) return [];
  const out: Range[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (!m) continue;
    const start = parseInt(m[1] ?? '0', 16);
    out.push({ start, end: start + parseInt(m[2] ?? '0', 16), name: m[3] ?? '' });
  }
  // A later entry at the same address is newer code: keep the last one.
  return out.sort((a, b) => a.start - b.start);
}

function lookup(ranges: readonly Range[], address: number): string | undefined {
  let lo = 0;
  let hi = ranges.length - 1;
  let found: Range | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid] as Range;
    if (r.start <= address) {
      found = r;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found && address < found.end ? found.name : undefined;
}

/** Self instructions by function name in a target's main-thread dump. */
export function byFunction(dir: string, target: string): Map<string, number> {
  // The last part: a live target's first is its idle window.
  const dump = readdirSync(dir)
    .filter((f) => f.startsWith(`${target}.out.`) && f.endsWith('-01'))
    .sort((a, b) => parseInt(a.slice(target.length + 5)) - parseInt(b.slice(target.length + 5)))
    .at(-1);
  if (!dump) throw new Error(`no callgrind dump for ${target} in ${dir}`);
  const ranges = perfMap(join(dir, `${target}.perf.map`));
  const text =
    spawnSync('callgrind_annotate', ['--threshold=100', join(dir, dump)], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    }).stdout ?? '';
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (!m || m[2] === 'PROGRAM TOTALS') continue;
    let name = (m[2] ?? '').replace(/ \[[^\]]*\]$/, '').replace(/^\?\?\?:/, '');
    const address = /^0x([0-9a-f]+)$/.exec(name);
    if (address) name = lookup(ranges, parseInt(address[1] ?? '0', 16)) ?? `${name} (unnamed code)`;
    out.set(name, (out.get(name) ?? 0) + Number((m[1] ?? '0').replaceAll(',', '')));
  }
  return out;
}

const short = (name: string) => (name.length > 110 ? `${name.slice(0, 107)}...` : name);

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const [dir, a, third, ...rest] = process.argv.slice(2);
  if (!dir || !a) {
    process.stderr.write('usage: callgrind.js DIR TARGET [REQUESTS] [TOP] | callgrind.js DIR A B [REQUESTS] [TOP]\n');
    process.exit(2);
  }
  const compare = third !== undefined && !/^\d+$/.test(third);
  const [requests = 2000, top = 40] = (compare ? rest : [third, ...rest])
    .map((x) => Number(x ?? NaN))
    .map((x, i) => (Number.isFinite(x) ? x : ([2000, 40][i] as number)));
  const fa = byFunction(dir, a);
  if (!compare) {
    const rows = [...fa].sort((x, y) => y[1] - x[1]).slice(0, top);
    process.stdout.write(
      table(
        ['function', 'self per request'],
        rows.map(([k, v]) => [short(k), fmt(v / requests, 0)]),
      ) + '\n',
    );
  } else {
    const fb = byFunction(dir, third);
    const total = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0) / requests;
    const rows = [...new Set([...fa.keys(), ...fb.keys()])]
      .map((k) => [k, (fa.get(k) ?? 0) / requests, (fb.get(k) ?? 0) / requests] as const)
      .sort((x, y) => Math.abs(y[2] - y[1]) - Math.abs(x[2] - x[1]))
      .slice(0, top);
    process.stdout.write(
      `instructions per request: ${a} ${fmt(total(fa), 0)}, ${third} ${fmt(total(fb), 0)}\n\n` +
        table(
          ['function', a, third, 'B − A'],
          rows.map(([k, x, y]) => [short(k), fmt(x, 0), fmt(y, 0), `${y - x >= 0 ? '+' : ''}${fmt(y - x, 0)}`]),
        ) +
        '\n',
    );
  }
}
