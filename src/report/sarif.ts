import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { SarifBuilder, SarifResultBuilder, SarifRuleBuilder, SarifRunBuilder } from 'node-sarif-builder';
import type { Result } from 'sarif';
import { packageRoot } from '../paths.js';
import { policies } from '../policies/index.js';
import { objectName, type Finding, type ObjectReport } from './model.js';

const levels: Record<Finding['action'], Result.level> = {
  deny: 'error',
  warn: 'warning',
  patch: 'note',
  error: 'warning',
};

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A policy's README: its help text; the bold first line is its short description. */
function readme(id: string): { short: string; markdown: string } {
  let markdown: string;
  try {
    markdown = readFileSync(join(packageRoot, 'policies', id, 'README.md'), 'utf8');
  } catch {
    return { short: id, markdown: id };
  }
  const bold = /^\*\*(.+?)\*\*/m.exec(markdown)?.[1];
  return { short: bold ?? id, markdown };
}

/** Paths relative to where meshguard runs (the repository's root in CI), with forward slashes. */
function uri(source: string): string {
  const path = isAbsolute(source) ? relative(process.cwd(), source) : source;
  return path.split(sep).join('/');
}

/** SARIF 2.1.0 for GitHub code scanning and other SARIF readers: one rule per policy. */
export function renderSarif(reports: readonly ObjectReport[]): string {
  const run = new SarifRunBuilder().initSimple({ toolDriverName: 'meshguard', toolDriverVersion: version() });
  for (const { id } of policies) {
    const { short, markdown } = readme(id);
    run.addRule(
      new SarifRuleBuilder({
        help: { text: markdown, markdown },
      }).initSimple({ ruleId: id, shortDescriptionText: short }),
    );
  }
  for (const r of reports) {
    // Files have lines; stdin and the cluster only the object's name.
    const fromFile = r.line > 0 && r.source !== '<stdin>';
    for (const f of r.findings) {
      const result = new SarifResultBuilder({
        properties: {
          action: f.action,
          mode: f.mode,
          subject: f.subject,
          ...(f.unverified && { unverified: f.unverified }),
        },
      }).initSimple({
        level: levels[f.action],
        ruleId: f.policy,
        messageText: `${objectName(r)}: ${f.message}${f.unverified ? ` (not verified: ${f.unverified})` : ''}`,
        ...(fromFile && { fileUri: uri(r.source) }),
      });
      // The document's first line; no columns (initSimple's defaults would make an empty region).
      if (fromFile) result.setLocationRegion({ startLine: r.line });
      const logical = { name: r.name, fullyQualifiedName: objectName(r), kind: 'object' };
      result.result.locations = (result.result.locations ?? [{}]).map((l) => ({ ...l, logicalLocations: [logical] }));
      run.addResult(result);
    }
  }
  const log = new SarifBuilder();
  log.addRun(run);
  return log.buildSarifJsonString({ indent: true }) + '\n';
}
