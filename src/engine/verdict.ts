import { mergePatches, type PatchOp } from '../admission/patch.js';
import { combineProxyConfig } from '../mesh/proxy-config.js';
import type { Verdict } from '../admission/types.js';
import type { Config } from '../config/types.js';
import type { Decision } from './types.js';

/** The API server keeps warnings of up to 256 characters, on one line. */
export const MAX_WARNING = 256;

/**
 * The API server keeps about 4 KiB of warnings per request: more only makes the answer bigger, and
 * a pod with thousands of containers would get a warning for each.
 */
export const MAX_WARNINGS = 20;

export function line(policy: string, message: string): string {
  // Whitespace runs are matched whole (a pattern like /\s*\n\s*/ backtracks quadratically on a
  // long run without a newline, and messages quote what users wrote): linear time.
  const text = `meshguard ${policy}: ${message}`.replace(/\s+/g, (ws) => (/[\r\n]/.test(ws) ? ' ' : ws));
  return text.length <= MAX_WARNING ? text : text.slice(0, MAX_WARNING - 1) + '…';
}

/**
 * A failure that denies: in enforce mode, on the object itself, or on a workload's pod template
 * when the policy validates (every pod the workload makes would be refused, e.g. by Istio's
 * injector). A mutating policy's finding on a template is what its pods will get: a warning.
 */
export const blocks = ({ mode, subject, action }: Decision) =>
  mode === 'enforce' && (subject === 'object' || action === 'validate');

/**
 * Turns decisions into one answer, applying modes: in warn mode a denial becomes a warning and a
 * mutation a "would …" warning. A workload's template only ever gets warnings: its pods are
 * judged (and patched) when they are created, and the person applying it is told what they will get.
 */
export function verdictOf(decisions: readonly Decision[], config: Config): Verdict {
  const denials: string[] = [];
  const warnings = new Set<string>();
  const patches: PatchOp[][] = [];
  const warn = (policy: string, messages: readonly string[] | undefined) => {
    if (messages) for (const m of messages) warnings.add(line(policy, m));
  };
  for (const decision of decisions) {
    const { policy, mode, outcome } = decision;
    // Most decisions pass or skip: nothing to say, nothing to work out.
    switch (outcome.result) {
      case 'pass':
      case 'skip':
        break;
      case 'warn':
        warn(policy, outcome.warnings);
        break;
      case 'fail':
        if (blocks(decision)) denials.push(line(policy, outcome.message));
        else warn(policy, [outcome.message]);
        warn(policy, outcome.warnings);
        break;
      case 'mutate':
        if (blocks(decision)) patches.push(outcome.patch);
        else if (mode === 'warn') warn(policy, [`would ${outcome.summary}`]);
        // A workload's template in enforce mode: its pods get this when created; say so now.
        else warn(policy, [`when its pods are created, meshguard will ${outcome.summary}`]);
        warn(policy, outcome.warnings);
        break;
      case 'error': {
        const denied = blocks(decision) && config.onError === 'deny';
        const message = `internal error (${outcome.error.message}); ${denied ? 'denied by onError: deny' : 'request allowed'}`;
        if (denied) denials.push(line(policy, message));
        else warn(policy, [message]);
        break;
      }
    }
  }
  const all = [...warnings];
  const shown =
    all.length <= MAX_WARNINGS
      ? all
      : [...all.slice(0, MAX_WARNINGS - 1), `meshguard: ${all.length - MAX_WARNINGS + 1} more warnings not shown`];
  return { allowed: denials.length === 0, denials, warnings: shown, patch: mergePatches(patches, combineProxyConfig) };
}
