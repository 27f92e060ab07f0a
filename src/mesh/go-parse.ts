// How Istio's Go code reads strings, so that meshguard reads the same strings the same way.

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/**
 * Go's strconv.ParseBool: exactly these spellings, anything else is an error, which Istio's callers
 * treat as no value (pkg/kube/inject/app_probe.go ShouldRewriteAppHTTPProbers,
 * cni/pkg/plugin/sidecar_redirect.go ISTIO_META_DNS_CAPTURE).
 */
export function parseBool(v: unknown): boolean | undefined {
  if (typeof v !== 'string') return undefined;
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  return undefined;
}
