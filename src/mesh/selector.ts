import { isRecord } from '../guards.js';

// Kubernetes label selectors (metav1.LabelSelector), evaluated as the API server evaluates a
// webhook's namespaceSelector and objectSelector (k8s.io/apimachinery pkg/apis/meta/v1
// LabelSelectorAsSelector, pkg/labels/selector.go Requirement.Matches): matchLabels and every
// matchExpression must hold; NotIn and DoesNotExist hold when the key is absent.

import type { Labels } from '../cluster/labels.js';

export type { Labels };

export interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: readonly string[];
}

export interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: readonly Requirement[];
}

/** A selector compiled once: a predicate on labels. */
export type LabelMatcher = (labels: Labels) => boolean;

const operators = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/**
 * A selector from unknown input (an API object, a manifest), or a reason it is not one. The API
 * server refuses a webhook whose selector is invalid, so an invalid one here came from a file.
 */
export function parseSelector(v: unknown): { ok: true; selector: LabelSelector } | { ok: false; problem: string } {
  if (v == null) return { ok: true, selector: {} };
  if (!isRecord(v)) return { ok: false, problem: 'not a label selector' };
  const selector: { matchLabels?: Record<string, string>; matchExpressions?: Requirement[] } = {};
  if (v.matchLabels != null) {
    if (!isRecord(v.matchLabels)) return { ok: false, problem: 'matchLabels is not a map' };
    const labels: Record<string, string> = {};
    for (const [k, val] of Object.entries(v.matchLabels)) {
      if (typeof val !== 'string') return { ok: false, problem: `matchLabels.${k} is not a string` };
      labels[k] = val;
    }
    selector.matchLabels = labels;
  }
  if (v.matchExpressions != null) {
    if (!Array.isArray(v.matchExpressions)) return { ok: false, problem: 'matchExpressions is not a list' };
    const expressions: Requirement[] = [];
    for (const e of v.matchExpressions) {
      if (!isRecord(e) || typeof e.key !== 'string' || typeof e.operator !== 'string' || !operators.has(e.operator))
        return {
          ok: false,
          problem: 'a matchExpression needs a key and an operator In, NotIn, Exists or DoesNotExist',
        };
      const values = Array.isArray(e.values) ? e.values.filter((x): x is string => typeof x === 'string') : [];
      const setBased = e.operator === 'In' || e.operator === 'NotIn';
      // LabelSelectorAsSelector refuses In/NotIn without values and Exists/DoesNotExist with some.
      if (setBased !== values.length > 0)
        return { ok: false, problem: `${e.operator} on ${e.key} ${setBased ? 'needs' : 'takes no'} values` };
      expressions.push({ key: e.key, operator: e.operator as Requirement['operator'], values });
    }
    selector.matchExpressions = expressions;
  }
  return { ok: true, selector };
}

export function compileSelector(selector: LabelSelector): LabelMatcher {
  const tests: LabelMatcher[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) tests.push((l) => l[key] === value);
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const set = new Set(values);
    switch (operator) {
      case 'In':
        tests.push((l) => Object.hasOwn(l, key) && set.has(l[key] as string));
        break;
      case 'NotIn':
        tests.push((l) => !Object.hasOwn(l, key) || !set.has(l[key] as string));
        break;
      case 'Exists':
        tests.push((l) => Object.hasOwn(l, key));
        break;
      case 'DoesNotExist':
        tests.push((l) => !Object.hasOwn(l, key));
        break;
    }
  }
  return (labels) => tests.every((t) => t(labels));
}

/** Whether a selector has no requirement at all (matches everything). */
export function isEmptySelector(selector: LabelSelector): boolean {
  return Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0;
}

/** These labels without one key (what a namespace would have after `kubectl label … key-`). */
export function withoutLabel(labels: Labels, key: string): Labels {
  if (!Object.hasOwn(labels, key)) return labels;
  const out: Record<string, string> = { ...labels };
  delete out[key];
  return out;
}
