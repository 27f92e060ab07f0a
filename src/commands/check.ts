import { createTwoFilesPatch } from 'diff';
import jsonpatch from 'fast-json-patch';
import yaml from 'js-yaml';
import { mergePatches, type PatchOp } from '../admission/patch.js';
import { requestFor } from '../admission/request.js';
import type { KubeObject } from '../admission/types.js';
import { MemoryClusterView } from '../cluster/memory.js';
import { loadConfig } from '../config/load.js';
import { evaluate, type Engine } from '../engine/evaluate.js';
import { Registry } from '../engine/registry.js';
import { compileScope } from '../config/scope.js';
import type { Decision } from '../engine/types.js';
import { line, verdictOf } from '../engine/verdict.js';
import { templatePath } from '../engine/workloads.js';
import { readManifests, type Manifest } from '../manifests.js';
import { policies } from '../policies/index.js';
import { helpText, oneOf, parseFlags, str, UsageError, type Flag } from './flags.js';
import { discoverMesh } from '../mesh/discover.js';
import { resolveProfile } from '../mesh/profile.js';

/** The flags of the commands that report findings (check, audit). */
export const reportFlags: Flag[] = [
  { name: 'config', type: 'string', arg: 'FILE', help: 'configuration file (else the embedded defaults)' },
  { name: 'output', type: 'string', arg: 'text|json', help: 'text for people, json for machines', default: 'text' },
];
const flags: Flag[] = [
  ...reportFlags,
  {
    name: 'services-complete',
    type: 'boolean',
    help: 'the inputs hold every Service of the namespaces they touch (else probe ports are never excluded)',
  },
];

export const checkHelp = helpText(
  'meshguard check PATH|- ... [flags]',
  'Runs the policies on manifests (files, directories, - for stdin) as the webhook would on admission.\n' +
    'Namespaces, Services and ServiceEntries among the inputs are the cluster view.\n' +
    'Only with --services-complete are they taken to be every Service of their namespaces.\n' +
    'Exit codes: 0 nothing denied, 1 something would be denied, 2 usage, input or configuration errors.',
  flags,
);

export interface Finding {
  policy: string;
  /** deny | warn | patch | error, as the request would meet it; patches on templates apply to the pods. */
  action: 'deny' | 'warn' | 'patch' | 'error';
  mode: string;
  subject: 'object' | 'template';
  message: string;
}

export interface ObjectReport {
  source: string;
  document: number;
  kind: string;
  namespace: string;
  name: string;
  denied: boolean;
  findings: Finding[];
  /** The object's JSON Patch and a unified diff of it, when a policy would change it or its pods. */
  patch?: PatchOp[];
  diff?: string;
}

/** A template decision's patch, moved from the pod onto the workload's template. */
function rebase(patch: readonly PatchOp[], object: KubeObject, path: readonly string[]): PatchOp[] {
  const prefix = '/' + path.join('/');
  let template: unknown = object;
  for (const k of path) template = (template as Record<string, unknown> | undefined)?.[k];
  const needsMetadata = typeof template === 'object' && template !== null && !('metadata' in template);
  const moved = patch.map((op) => ({ ...op, path: prefix + op.path }));
  return needsMetadata ? [{ op: 'add', path: `${prefix}/metadata`, value: {} }, ...moved] : moved;
}

function findings(decisions: readonly Decision[]): Finding[] {
  const out: Finding[] = [];
  for (const { policy, mode, subject, outcome } of decisions) {
    const add = (action: Finding['action'], message: string) =>
      out.push({ policy, action, mode, subject, message: line(policy, message) });
    switch (outcome.result) {
      case 'fail':
        add(mode === 'enforce' && subject === 'object' ? 'deny' : 'warn', outcome.message);
        break;
      case 'mutate':
        add(
          'patch',
          `${mode === 'warn' ? 'would ' : ''}${outcome.summary}${subject === 'template' ? ' (in its pods)' : ''}`,
        );
        break;
      case 'error':
        add('error', outcome.error.message);
        break;
      default:
    }
    if ('warnings' in outcome) for (const w of outcome.warnings ?? []) add('warn', w);
  }
  return out;
}

export function judge(manifests: readonly Manifest[], engine: Engine): ObjectReport[] {
  return manifests.map(({ source, document, object }) => {
    const request = requestFor(object);
    const decisions = [
      ...evaluate({ request, stage: 'mutate' }, engine),
      ...evaluate({ request, stage: 'validate' }, engine),
    ];
    const path = templatePath(request.kind.group, request.kind.kind);
    const patches = decisions.flatMap((d) =>
      d.outcome.result !== 'mutate'
        ? []
        : [d.subject === 'template' && path ? rebase(d.outcome.patch, object, path) : d.outcome.patch],
    );
    const report: ObjectReport = {
      source,
      document,
      kind: request.kind.kind,
      namespace: request.namespace ?? '',
      name: request.name ?? object.metadata?.generateName ?? '',
      denied: !verdictOf(decisions, engine.scope.config).allowed,
      findings: findings(decisions),
    };
    if (patches.length > 0) {
      const patch = mergePatches(patches);
      const before = yaml.dump(object, { noRefs: true, lineWidth: -1 });
      const after = yaml.dump(jsonpatch.applyPatch(structuredClone(object), patch, false, false).newDocument, {
        noRefs: true,
        lineWidth: -1,
      });
      const label = `${report.kind} ${report.namespace}/${report.name}`;
      report.patch = patch;
      report.diff = createTwoFilesPatch(label, `${label} (patched)`, before, after, undefined, undefined, {
        context: 2,
      });
    }
    return report;
  });
}

function renderText(reports: readonly ObjectReport[]): string {
  const out: string[] = [];
  for (const r of reports) {
    if (r.findings.length === 0) continue;
    const where = r.document > 0 ? `${r.source}#${r.document} ` : '';
    out.push(`${where}${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`);
    for (const f of r.findings) out.push(`  ${f.action.padEnd(6)} ${f.message}`);
    if (r.diff)
      out.push(
        ...r.diff
          .split('\n')
          .filter((l) => l !== '' && !l.startsWith('===='))
          .map((l) => `    ${l.trimEnd()}`),
      );
    out.push('');
  }
  const count = (p: (r: ObjectReport) => boolean) => reports.filter(p).length;
  out.push(
    `${reports.length} objects checked: ${count((r) => r.denied)} denied, ` +
      `${count((r) => r.findings.some((f) => f.action === 'warn'))} with warnings, ` +
      `${count((r) => r.patch !== undefined)} would be patched`,
  );
  return out.join('\n') + '\n';
}

export async function check(argv: string[], env: NodeJS.ProcessEnv, stdin: () => Promise<string>): Promise<number> {
  const { values, positionals, help } = parseFlags(argv, flags, env, true);
  if (help) {
    process.stdout.write(checkHelp);
    return 0;
  }
  const output = oneOf(values, 'output', ['text', 'json'] as const);
  if (positionals.length === 0) throw new UsageError('check needs at least one PATH (or - for stdin)');
  const { config } = await loadConfig(str(values, 'config'));
  const manifests = await readManifests(positionals, stdin);
  const engine: Engine = {
    registry: new Registry(policies),
    scope: compileScope(config),
    cluster: MemoryClusterView.fromObjects(
      manifests.map((m) => m.object),
      values['services-complete'] === true,
    ),
    // Istio's own objects among the inputs (helm template, istioctl manifest generate), then `mesh:`.
    mesh: resolveProfile(config.mesh, discoverMesh(manifests.map((m) => m.object))),
  };
  return report(judge(manifests, engine), output);
}

/** Writes the reports; the exit code: 1 when anything would be denied. */
export function report(reports: readonly ObjectReport[], output: 'text' | 'json'): number {
  process.stdout.write(output === 'json' ? JSON.stringify({ reports }, null, 2) + '\n' : renderText(reports));
  return reports.some((r) => r.denied) ? 1 : 0;
}
