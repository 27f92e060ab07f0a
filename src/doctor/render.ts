import { checks, worst, type CheckId, type Finding, type Status } from './model.js';

// doctor's output: text for people (each check, each finding, the why and fix of every problem
// on lines of their own so a command can be copied whole), JSON for tools (stable keys: each
// check's id and status, each finding's status, object, what, why, fix).

export interface Report {
  /** The API server, and where the credentials came from. */
  cluster: string;
  credentials: string;
  findings: readonly Finding[];
  /** The mesh profile as `meshguard mesh` prints it, and as its JSON. */
  profileText: string;
  profileJson: unknown;
}

const result = (s: Status) => (s === 'ok' ? 'healthy' : s === 'problem' ? 'problems' : 'could-not-check');

function byCheck(findings: readonly Finding[]) {
  return (Object.keys(checks) as CheckId[]).map((id) => {
    const own = findings.filter((f) => f.check === id);
    return { id, title: checks[id], status: worst(own.map((f) => f.status)), findings: own };
  });
}

function counts(findings: readonly Finding[]): Record<Status, number> {
  const out: Record<Status, number> = { ok: 0, problem: 0, 'could-not-check': 0 };
  for (const f of findings) out[f.status]++;
  return out;
}

export function renderJson(report: Report): string {
  return (
    JSON.stringify(
      {
        cluster: report.cluster,
        credentials: report.credentials,
        result: result(worst(report.findings.map((f) => f.status))),
        counts: counts(report.findings),
        checks: byCheck(report.findings).map((c) => ({
          ...c,
          findings: c.findings.map(({ check: _check, ...f }) => f),
        })),
        meshProfile: report.profileJson,
      },
      null,
      2,
    ) + '\n'
  );
}

const label: Record<Status, string> = { ok: 'ok', problem: 'PROBLEM', 'could-not-check': 'UNCHECKED' };

export function renderText(report: Report): string {
  const lines = [`meshguard doctor: cluster ${report.cluster} (credentials: ${report.credentials})`];
  for (const c of byCheck(report.findings)) {
    lines.push('', `${c.id} [${label[c.status]}]: ${c.title}`);
    for (const f of c.findings) {
      lines.push(`  ${label[f.status].padEnd(9)} ${f.object ? `${f.object}: ` : ''}${f.what}`);
      if (f.why) lines.push(`            why: ${f.why}`);
      if (f.fix) lines.push(`            fix: ${f.fix}`);
    }
    if (c.id === 'mesh-profile')
      lines.push(
        ...report.profileText
          .trimEnd()
          .split('\n')
          .map((l) => `    ${l}`),
      );
  }
  const n = counts(report.findings);
  lines.push(
    '',
    `${result(worst(report.findings.map((f) => f.status)))}: ${n.ok} ok, ${n.problem} problem${n.problem === 1 ? '' : 's'}, ${n['could-not-check']} could not be checked`,
  );
  return lines.join('\n') + '\n';
}
