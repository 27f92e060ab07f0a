import { createTwoFilesPatch } from 'diff';
import jsonpatch from 'fast-json-patch';
import yaml from 'js-yaml';
import { mergePatches, type PatchOp } from '../admission/patch.js';
import { combineProxyConfig } from '../mesh/proxy-config.js';
import { requestFor } from '../admission/request.js';
import type { KubeObject } from '../admission/types.js';
import { evaluate, type Engine } from '../engine/evaluate.js';
import type { Decision } from '../engine/types.js';
import { blocks, line, verdictOf } from '../engine/verdict.js';
import { templatePath } from '../engine/workloads.js';
import { nameForMessage } from '../guards.js';
import type { Finding, ObjectReport } from './model.js';

/** An object to judge: where it came from, and its namespace ("" cluster-scoped, null unknown). */
export interface Judged {
  source: string;
  document: number;
  line: number;
  object: KubeObject;
  namespace: string | null;
}

/**
 * The namespace policies see for an object whose namespace is unknown. Not a valid namespace name,
 * so it matches no real one; findings about such objects are reported as not verified.
 */
export const UNKNOWN_NAMESPACE = '(unknown)';

/** Diffs past these sizes are cut: a report is read by people, the whole patch is in --output json. */
const MAX_DIFF_LINES = 60;
const MAX_ADDED_RUN = 12;
const MAX_DIFF_INPUT = 256 * 1024;

/** A template decision's patch, moved from the pod onto the workload's template. */
function rebase(patch: readonly PatchOp[], object: KubeObject, path: readonly string[]): PatchOp[] {
  const prefix = '/' + path.join('/');
  let template: unknown = object;
  for (const k of path) template = (template as Record<string, unknown> | undefined)?.[k];
  const needsMetadata = typeof template === 'object' && template !== null && !('metadata' in template);
  const moved = patch.map((op) => ({ ...op, path: prefix + op.path }));
  return needsMetadata ? [{ op: 'add', path: `${prefix}/metadata`, value: {} }, ...moved] : moved;
}

function findings(decisions: readonly Decision[], unverified: (d: Decision) => string | undefined): Finding[] {
  const out: Finding[] = [];
  for (const d of decisions) {
    const { policy, mode, subject, outcome } = d;
    const why = unverified(d);
    const add = (action: Finding['action'], message: string) =>
      out.push({ policy, action, mode, subject, message: line(policy, message), ...(why && { unverified: why }) });
    switch (outcome.result) {
      case 'fail':
        add(blocks(d) ? 'deny' : 'warn', outcome.message);
        break;
      case 'mutate':
        if (mode === 'warn') add('warn', `would ${outcome.summary}${subject === 'template' ? ' (in its pods)' : ''}`);
        else add('patch', `${outcome.summary}${subject === 'template' ? ' (in its pods)' : ''}`);
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

/** Long runs of added lines (a Job's wrapper script) cut to their start: the report stays readable. */
function shortenRuns(lines: string[]): string[] {
  const out: string[] = [];
  let run = 0;
  for (const l of lines) {
    run = l.startsWith('+') && !l.startsWith('+++') ? run + 1 : 0;
    if (run <= MAX_ADDED_RUN) out.push(l);
    else if (run === MAX_ADDED_RUN + 1) out.push('+ …');
  }
  return out;
}

/** A unified diff of the patch, never expanding YAML aliases, cut to a readable size. */
function diffOf(object: KubeObject, patch: PatchOp[], label: string): string {
  const before = yaml.dump(object, { lineWidth: -1 });
  const after = yaml.dump(jsonpatch.applyPatch(structuredClone(object), patch, false, false).newDocument, {
    lineWidth: -1,
  });
  if (before.length + after.length > MAX_DIFF_INPUT)
    return `(no diff: the object is over ${MAX_DIFF_INPUT / 1024} KiB)\n`;
  const diff =
    createTwoFilesPatch(label, `${label} (patched)`, before, after, undefined, undefined, {
      context: 2,
      timeout: 1000,
    }) ?? '(no diff: took too long)\n';
  const lines = shortenRuns(diff.split('\n'));
  if (lines.length <= MAX_DIFF_LINES) return lines.join('\n');
  return [
    ...lines.slice(0, MAX_DIFF_LINES),
    `… ${lines.length - MAX_DIFF_LINES} more lines (the whole patch is in --output json)`,
    '',
  ].join('\n');
}

export interface JudgeOptions {
  /** Diffs in the reports (the patch is always there). */
  diff: boolean;
}

/**
 * Runs the engine on each object as the webhook would on its creation. What depends on something
 * the inputs do not say is judged under an assumption and reported as not verified: an unknown
 * namespace (nothing is denied), unknown namespace labels (its pods judged as if Istio injects them:
 * the injection decision's `assume-injected`).
 */
export function judge(items: readonly Judged[], engine: Engine, options: JudgeOptions): ObjectReport[] {
  const assuming: Engine = { ...engine, unknownNamespaces: 'assume-injected' };
  return items.map(({ source, document, line: at, object, namespace }) => {
    const ns = namespace ?? UNKNOWN_NAMESPACE;
    const request = requestFor(object, { namespace: ns });
    const decisions = [
      ...evaluate({ request, stage: 'mutate' }, assuming),
      ...evaluate({ request, stage: 'validate' }, assuming),
    ];
    const path = templatePath(request.kind.group, request.kind.kind);
    const unverified = (d: Decision): string | undefined =>
      namespace === null
        ? 'namespace not given (metadata.namespace or --namespace)'
        : d.assumed
          ? `assumes Istio injects namespace ${ns}: its labels are unknown (add the Namespace, or --kubeconfig)`
          : undefined;
    // Only what was verified blocks: judged under an assumption, a denial is a warning at most.
    const verified = decisions.filter((d) => unverified(d) === undefined);
    // Patches judged under an assumption are shown too: they are what happens if it holds.
    const patches = decisions.flatMap((d) =>
      d.outcome.result !== 'mutate' || d.mode !== 'enforce'
        ? []
        : [d.subject === 'template' && path ? rebase(d.outcome.patch, object, path) : d.outcome.patch],
    );
    const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : '';
    const report: ObjectReport = {
      source,
      document,
      line: at,
      apiVersion,
      kind: request.kind.kind,
      namespace,
      name: nameForMessage(object),
      policies: [...new Set(decisions.map((d) => d.policy))],
      denied: !verdictOf(verified, engine.scope.config).allowed,
      findings: findings(decisions, unverified),
    };
    if (patches.length > 0) {
      const patch = mergePatches(patches, combineProxyConfig);
      report.patch = patch;
      if (options.diff)
        report.diff = diffOf(object, patch, `${report.kind} ${namespace ? `${namespace}/` : ''}${report.name}`);
    }
    return report;
  });
}
