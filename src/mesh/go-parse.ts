// How Istio's Go code reads strings, so that meshguard reads the same strings the same way.

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/**
 * Go's strconv.ParseBool: exactly these spellings, anything else is an error, which Istio's callers
 * treat as no value (e.g. pkg/kube/inject/app_probe.go ShouldRewriteAppHTTPProbers).
 */
export function parseBool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  return undefined;
}
