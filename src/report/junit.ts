import junit, { type Builder } from 'junit-report-builder';
import { objectName, type ObjectReport } from './model.js';

/**
 * JUnit XML: a test suite per file, a test case per object and policy that judged it. A verified
 * denial fails it, a policy error errs it; warnings and changes are its output.
 */
export function renderJunit(reports: readonly ObjectReport[]): string {
  // The package is CommonJS: Node hands its module.exports, the builder itself, as the default.
  const builder = (junit as unknown as Builder).newBuilder();
  const suites = new Map<string, ReturnType<typeof builder.testSuite>>();
  for (const r of reports) {
    if (r.policies.length === 0) continue;
    let suite = suites.get(r.source);
    if (!suite) suites.set(r.source, (suite = builder.testSuite().name(r.source)));
    const className = `${r.document > 0 ? `${r.source}#${r.document} ` : ''}${objectName(r)}`;
    for (const policy of r.policies) {
      const test = suite.testCase().className(className).name(policy);
      if (r.line > 0 && r.source !== '<stdin>') test.file(r.source);
      const found = r.findings.filter((f) => f.policy === policy);
      const denial = found.find((f) => f.action === 'deny' && f.unverified === undefined);
      const error = found.find((f) => f.action === 'error');
      if (denial) test.failure(denial.message, 'deny');
      else if (error) test.error(error.message, 'error');
      const output = found.map(
        (f) =>
          `${f.action}${f.unverified ? '?' : ''} ${f.message}${f.unverified ? ` (not verified: ${f.unverified})` : ''}`,
      );
      if (output.length > 0) test.standardOutput(output.join('\n'));
    }
  }
  return builder.build() + '\n';
}
