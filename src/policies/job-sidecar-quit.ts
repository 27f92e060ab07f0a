import { pointer, type PatchOp } from '../admission/patch.js';
import type { KubeObject } from '../admission/types.js';
import type { Policy, Result } from '../engine/types.js';
import { isRecord } from '../guards.js';
import { defaultSidecarKind, nativeByDefault, statusPort } from '../mesh/injection.js';
import { isWrapped, proxyEndpoints, startsWithShell, wrapContainer, type QuitOn } from '../mesh/job-wrapper.js';
import { containers, podSpec } from '../mesh/pod.js';
import type { Revision } from '../mesh/profile.js';
import { showVersion } from '../mesh/releases.js';
import { skipReason } from '../mesh/reasons.js';

// Present when Istio's injector ran first (meshguard reinvoked, or a webhook named to sort after
// Istio's): the proxy is no app container, and has no command of its own.
const PROXY_CONTAINER = 'istio-proxy';
/** A CronJob's pods are owned by the Jobs it creates, so this covers both. */
function ownedByJob(pod: KubeObject): boolean {
  const owners = pod.metadata?.ownerReferences;
  return Array.isArray(owners) && owners.some((o: unknown) => isRecord(o) && o.kind === 'Job');
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((s): s is string => typeof s === 'string') ? v : undefined;
}

const warn = (warning: string): Result => ({ result: 'warn', warnings: [warning] });

/** A command as warnings show it: quoted, and short. */
function shown(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 59)}…` : s);
}

function summaryOf(name: string, quitOn: QuitOn): string {
  return quitOn === 'exit'
    ? `wrap the command of container ${name} so istio-proxy quits when it exits (restartPolicy Never)`
    : `wrap the command of container ${name} so istio-proxy quits once it succeeds (restartPolicy OnFailure: after a failure it stays for the retry)`;
}

/** How to give several app containers a proxy that ends with them, on this Istio. */
function nativeAdvice({ features, version }: Revision): string {
  // The annotation (exactly "true" before `auto`), else only istiod's ENABLE_NATIVE_SIDECARS.
  // Kubernetes runs sidecar init containers from 1.29 (beta).
  if (features.nativeSidecarAnnotation)
    return 'use native sidecars (annotation sidecar.istio.io/nativeSidecar: "true")';
  if (features.nativeSidecarFlag) return 'use native sidecars (istiod ENABLE_NATIVE_SIDECARS=true)';
  return `Istio ${showVersion(version)} has no native sidecars: have the last container to finish POST /quitquitquit`;
}

/**
 * Wraps the command of a Job pod's app container so that istio-proxy quits once the pod's work is
 * done and the Job completes: on exit under restartPolicy Never, on success under OnFailure.
 */
const policy: Policy<'job-sidecar-quit'> = {
  id: 'job-sidecar-quit',
  action: 'mutate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  explain(mesh) {
    const revisions = [...mesh.revisions.values()];
    return {
      exists: revisions.some((r) => nativeByDefault(r, mesh) !== true),
      why: revisions
        .map((r) => `${r.name}: ${defaultSidecarKind(r, mesh)}; acts on Job pods with a classic sidecar`)
        .join('; '),
    };
  },
  evaluate({ object: pod, sidecar, options }) {
    if (!ownedByJob(pod)) return { result: 'skip', reason: 'not owned by a Job' };
    // A native sidecar stops by itself once the app containers have exited: nothing to do.
    if (sidecar.proxy !== 'classic') return { result: 'skip', reason: skipReason(sidecar) };

    // /quitquitquit stops the proxy for the whole pod (pilot-agent's status server), so it may be
    // sent once, when the pod's work is done: by its only app container, and only after a run
    // that the kubelet will not restart.
    const apps = containers(pod).filter(({ container }) => container.name !== PROXY_CONTAINER);
    if (apps.length > 1) {
      return warn(
        `${apps.length} app containers: the first to finish would stop istio-proxy for all; not wrapped — ${nativeAdvice(sidecar.revision)}`,
      );
    }
    const restartPolicy = podSpec(pod).restartPolicy;
    const quitOn: QuitOn | undefined =
      restartPolicy === 'Never' ? 'exit' : restartPolicy === 'OnFailure' ? 'success' : undefined;
    if (!quitOn)
      return warn(
        `restartPolicy ${String(restartPolicy ?? 'Always')} restarts the container after it ends; not wrapped`,
      );
    const app = apps[0];
    if (!app) return { result: 'skip', reason: 'no app container' };
    const port = statusPort(pod);
    if (port === undefined)
      return { result: 'skip', reason: "Istio's injector rejects the pod: its status port is no port" };
    if (port === 0) return warn('status.sidecar.istio.io/port 0: pilot-agent serves no /quitquitquit; not wrapped');
    const { container, index } = app;
    const { name } = container;
    const command = strings(container.command);
    // An empty command, like none, means the image's ENTRYPOINT.
    if (!command || command.length === 0) {
      return warn(
        `container ${name} has no command: it runs the image's entrypoint, which meshguard cannot wrap; set an explicit command or ${nativeAdvice(sidecar.revision)}`,
      );
    }
    if (isWrapped(command)) return { result: 'pass' };
    const args = container.args == null ? [] : strings(container.args);
    if (!args) return { result: 'pass' }; // not a list of strings: the API server never sends one
    const program = command[0] ?? '';
    if (options.requireShellCommand && !startsWithShell(command)) {
      const head =
        program.slice(program.lastIndexOf('/') + 1) === 'env' && command.length > 1
          ? command.slice(0, 2).join(' ')
          : program;
      return warn(
        `container ${name} not wrapped: ${shown(head)} is not a shell, so the image may lack /bin/sh; if it has one, set requireShellCommand: false`,
      );
    }
    // The wrapper starts the command with `exec`, which would take a leading "-" for its own option.
    if (program === '' || program.startsWith('-'))
      return warn(`container ${name} not wrapped: its command ${shown(program)} names no program`);
    const next = wrapContainer(options.readyTimeoutSeconds, command, args, proxyEndpoints(port), quitOn);
    const patch: PatchOp[] = [
      { op: 'replace', path: pointer('spec', 'containers', index, 'command'), value: next.command },
      {
        op: Object.hasOwn(container, 'args') ? 'replace' : 'add',
        path: pointer('spec', 'containers', index, 'args'),
        value: next.args,
      },
    ];
    return { result: 'mutate', patch, summary: summaryOf(name, quitOn) };
  },
};

export default policy;
