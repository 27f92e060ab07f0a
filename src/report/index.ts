import { totals, type ObjectReport } from './model.js';
import { renderText } from './text.js';

export { judge, type Judged } from './judge.js';
export { exitCode, objectName, totals, type Finding, type ObjectReport, type Totals } from './model.js';

export const formats = ['text', 'json', 'sarif', 'junit'] as const;
export type Format = (typeof formats)[number] | 'policyreport';

export interface RenderOptions {
  /** PolicyReports: the API version (openreports.io/v1alpha1 or wgpolicyk8s.io/v1alpha2). */
  reportApi?: string;
}

/** The reports in one format; what the exit code is does not depend on it. */
export async function render(
  reports: readonly ObjectReport[],
  format: Format,
  options: RenderOptions = {},
): Promise<string> {
  switch (format) {
    case 'text':
      return renderText(reports);
    case 'json':
      return JSON.stringify({ reports, totals: totals(reports) }, null, 2) + '\n';
    case 'sarif':
      return (await import('./sarif.js')).renderSarif(reports);
    case 'junit':
      return (await import('./junit.js')).renderJunit(reports);
    case 'policyreport':
      return (await import('./policyreport.js')).renderPolicyReports(reports, options.reportApi);
  }
}
