/**
 * Go's strconv.ParseBool, which Istio reads its boolean annotations and proxy environment with
 * (pkg/kube/inject/app_probe.go ShouldRewriteAppHTTPProbers, cni/pkg/plugin/sidecar_redirect.go
 * ISTIO_META_DNS_CAPTURE): anything else is no value.
 */
export function parseBool(v: unknown): boolean | undefined {
  if (typeof v !== 'string') return undefined;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}
