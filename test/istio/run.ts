// npm run test:istio -- DIR [--known FILE]
// Checks meshguard's Istio model against what Istio recorded in DIR (laid out like shared/istio/),
// prints an agreement table, and exits 1 on a disagreement the known-differences file does not list,
// 2 (one line) when DIR or the file cannot be read.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { conformance, judgeRows, loadKnown, LayoutError, type Status, type Verdict } from './conformance.js';

export const KNOWN = fileURLToPath(new URL('known-differences.yaml', import.meta.url));

const mark: Record<Status, string> = { agree: 'agree', known: 'known', disagree: 'DISAGREE', 'not compared': 'n/c' };

export function render(source: string, verdicts: readonly Verdict[], stale: readonly string[], known: string): string {
  const out: string[] = [
    `Istio conformance: meshguard's model against ${source}`,
    "Injector cases: each pod template is judged in a namespace labelled istio-injection=enabled. Istio's injector",
    "tests call the injector directly, bypassing the API server's webhook selectors; this namespace is one the",
    "default install's namespace.sidecar-injector.istio.io webhook selects. Columns: proxy none/unknown/classic/",
    'native; rewrite = app probes sent to the agent (- = no httpGet/tcpSocket/grpc probe); hold = the app waits',
    'for istio-proxy (postStart pilot-agent wait). Analyzer cases: IST messages with a meshguard counterpart,',
    'compared per resource (Istio may report one message per port). ✗ unlisted difference, ~ listed in the',
    'known-differences file (its reason follows).',
    '',
  ];
  for (const { row, status, unlisted, reasons } of verdicts) {
    out.push(`${mark[status].padEnd(8)} ${row.id}`);
    if (row.detail) out.push(`         ${row.detail}`);
    for (const d of row.differences) out.push(`         ${unlisted.includes(d) ? '✗' : '~'} ${d}`);
    for (const r of reasons) out.push(`         known: ${r}`);
    if (row.note) out.push(`         note: ${row.note}`);
  }
  out.push('');
  for (const kind of ['inject', 'analyze'] as const) {
    const mine = verdicts.filter((v) => v.row.kind === kind);
    const count = (s: Status) => mine.filter((v) => v.status === s).length;
    out.push(
      `${kind === 'inject' ? 'injector' : 'analyzer'} cases: ${mine.length}: ${count('agree')} agree, ` +
        `${count('known')} known differences, ${count('disagree')} disagree, ${count('not compared')} not compared`,
    );
  }
  for (const s of stale) out.push(`listed in ${known} but no longer different (remove it): ${s}`);
  return out.join('\n') + '\n';
}

export async function main(argv: readonly string[]): Promise<number> {
  let dir: string | undefined;
  let known = KNOWN;
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { known: { type: 'string' } },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new LayoutError('usage: npm run test:istio -- DIR [--known FILE]');
    dir = positionals[0];
    known = values.known ?? KNOWN;
  } catch (err) {
    process.stderr.write(`test:istio: ${(err as Error).message.split('\n')[0]}\n`);
    return 2;
  }
  try {
    const run = await conformance(dir ?? '');
    const { verdicts, stale } = judgeRows(run.rows, await loadKnown(known));
    process.stdout.write(render(run.source, verdicts, stale, known));
    return verdicts.some((v) => v.status === 'disagree') ? 1 : 0;
  } catch (err) {
    if (!(err instanceof LayoutError)) throw err;
    process.stderr.write(`test:istio: ${err.message}\n`);
    return 2;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
