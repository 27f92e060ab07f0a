import { objectName, totals, type ObjectReport, type Totals } from './model.js';

/** An object's part of the text report: nothing without findings, else its findings and diff, then a blank line. */
export function textOf(r: ObjectReport): string[] {
  if (r.findings.length === 0) return [];
  const out: string[] = [];
  const where = r.document > 0 ? `${r.source}#${r.document} ` : '';
  out.push(`${where}${objectName(r)}`);
  for (const why of new Set(r.findings.flatMap((f) => f.unverified ?? []))) out.push(`  (? not verified: ${why})`);
  for (const f of r.findings) out.push(`  ${(f.action + (f.unverified ? '?' : '')).padEnd(6)} ${f.message}`);
  if (r.diff)
    out.push(
      ...r.diff
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('===='))
        .map((l) => `    ${l.trimEnd()}`),
    );
  out.push('');
  return out;
}

/** The text report's last line. */
export function summaryOf(t: Totals): string {
  const parts = [`${t.denied} denied`, `${t.withWarnings} with warnings`];
  if (t.patched > 0) parts.push(`${t.patched} would be patched`);
  if (t.errors > 0) parts.push(`${t.errors} with policy errors`);
  if (t.unverified > 0) parts.push(`${t.unverified} with findings not verified (?)`);
  return `${t.objects} objects checked: ${parts.join(', ')}`;
}

/** The report for people: each object with findings, its diff, then one summary line. */
export function renderText(reports: readonly ObjectReport[]): string {
  return [...reports.flatMap(textOf), summaryOf(totals(reports))].join('\n') + '\n';
}
