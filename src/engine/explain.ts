import type { MeshProfile } from '../mesh/profile.js';
import type { Explanation, Policy } from './types.js';

/** Per guardrail, whether its trap exists on this mesh and why: each policy says so itself. */
export function explainAll(policies: readonly Policy[], mesh: MeshProfile): Record<string, Explanation> {
  return Object.fromEntries(policies.map((p) => [p.id, p.explain(mesh)]));
}
