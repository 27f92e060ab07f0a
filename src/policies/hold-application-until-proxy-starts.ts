import { setAnnotation } from '../admission/patch.js';
import type { Policy, Result } from '../engine/types.js';
import { memoize } from '../memo.js';
import { defaultSidecarKind, nativeByDefault } from '../mesh/injection.js';
import { annotation, annotationsPatchable } from '../mesh/pod.js';
import { skipReason } from '../mesh/reasons.js';
import {
  HOLD as KEY,
  MAX_PROXY_CONFIG,
  ownHold,
  PROXY_CONFIG,
  parseProxyConfig,
  withProxyConfigKey,
} from '../mesh/proxy-config.js';
const summary = `set ${KEY}: true in ${PROXY_CONFIG}`;

/** What an existing annotation text calls for: it depends on the text alone. */
type Reading = { kind: 'invalid'; warning: string } | { kind: 'explicit' } | { kind: 'append'; value: string };

function read(current: string): Reading {
  const parsed = parseProxyConfig(current);
  if (!parsed.ok) {
    return {
      kind: 'invalid',
      warning: `${PROXY_CONFIG} is not a YAML mapping of ProxyConfig (${parsed.problem}); left unchanged, ${KEY} not set`,
    };
  }
  // Present in either spelling, true or false: an explicit value is the user's choice.
  if (ownHold(parsed.value) !== undefined) return { kind: 'explicit' };
  return { kind: 'append', value: withProxyConfigKey(current, parsed.value, KEY, true) };
}

// Every pod of a Deployment carries the same annotation text: remember what each text calls for,
// so its YAML is parsed (twice: to read it, and to check the appended line) once per distinct
// text, not once per pod. At most 256 texts of up to 2 KiB (~2 MiB even when every pod differs).
const reading = memoize(read, 256, 2048);

/** Makes the app wait for istio-proxy, so its first connections don't fail and restart the pod. */
const policy: Policy<'hold-application-until-proxy-starts'> = {
  id: 'hold-application-until-proxy-starts',
  action: 'mutate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  explain(mesh) {
    const revisions = [...mesh.revisions.values()];
    return {
      exists: revisions.some((r) => !r.holdApplicationUntilProxyStarts && nativeByDefault(r, mesh) !== true),
      why: revisions
        .map(
          (r) =>
            `${r.name}: ${r.holdApplicationUntilProxyStarts ? 'nothing to do: the mesh already holds' : `${defaultSidecarKind(r, mesh)}; acts on pods with a classic sidecar`}`,
        )
        .join('; '),
    };
  },
  evaluate({ object: pod, sidecar }): Result {
    // The injection template holds only a classic sidecar, and only when neither the pod's
    // ProxyConfig nor the mesh already does (istio-discovery files/injection-template.yaml
    // `$holdProxy`): a native sidecar is started, and ready, before any app container.
    if (sidecar.proxy !== 'classic') return { result: 'skip', reason: skipReason(sidecar) };
    if (sidecar.revision.holdApplicationUntilProxyStarts) return { result: 'skip', reason: 'the mesh already holds' };
    if (!annotationsPatchable(pod)) return { result: 'skip', reason: 'metadata.annotations is not a map' };
    const annotations = pod.metadata?.annotations;
    const current = annotation(pod, PROXY_CONFIG);
    if (current === undefined) {
      return { result: 'mutate', patch: [setAnnotation(annotations, PROXY_CONFIG, `${KEY}: true`)], summary };
    }
    if (current.length > MAX_PROXY_CONFIG) {
      return {
        result: 'warn',
        warnings: [
          `${PROXY_CONFIG} is larger than ${MAX_PROXY_CONFIG / 1024} KiB, more than a ProxyConfig needs; left unchanged, ${KEY} not set`,
        ],
      };
    }
    const r = reading(current);
    switch (r.kind) {
      case 'invalid':
        return { result: 'warn', warnings: [r.warning] };
      case 'explicit':
        return { result: 'pass' };
      case 'append':
        return { result: 'mutate', patch: [setAnnotation(annotations, PROXY_CONFIG, r.value)], summary };
    }
  },
};

export default policy;
