import { pointer, type PatchOp } from '../admission/patch.js';
import type { KubeObject } from '../admission/types.js';
import type { Policy } from '../engine/types.js';
import { isRecord } from '../guards.js';
import { sidecarOf, statusPort } from '../mesh/injection.js';
import {
  isWrapped,
  proxyEndpoints,
  startsWithShell,
  wrapContainer,
  wrapperScript,
  type QuitOn,
} from '../mesh/job-wrapper.js';
import { containers, podSpec } from '../mesh/pod.js';
import { skipReason } from '../mesh/reasons.js';

// Present when Istio's injector ran first (meshguard reinvoked, or a webhook named to sort after
// Istio's): the proxy is no app container, and has no command of its own.
const PROXY_CONTAINER = 'istio-proxy';
/**
 * Each wrapped container carries the script (a few KiB). A pod with thousands of containers would
 * make a patch of hundreds of MiB from a request of a few: past this the pod could not be stored
 * anyway (etcd keeps objects up to 1.5 MiB), so nothing is wrapped.
 */
export const MAX_WRAPPER_BYTES = 512 * 1024;

/** A CronJob's pods are owned by the Jobs it creates, so this covers both. */
function ownedByJob(pod: KubeObject): boolean {
  const owners = pod.metadata?.ownerReferences;
  return Array.isArray(owners) && owners.some((o: unknown) => isRecord(o) && o.kind === 'Job');
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((s): s is string => typeof s === 'string') ? v : undefined;
}

/** A command as warnings show it: quoted, and short. */
function shown(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 59)}…` : s);
}

function summaryOf(names: readonly string[]): string {
  return names.length === 1
    ? `wrap the command of container ${names[0]} so istio-proxy quits when it exits`
    : `wrap the commands of containers ${names.join(', ')} so istio-proxy quits when they exit`;
}

/** Wraps the commands of a Job's containers so that istio-proxy quits when they end and the Job completes. */
const policy: Policy<'job-sidecar-quit'> = {
  id: 'job-sidecar-quit',
  action: 'mutate',
  targets: [{ group: '', kind: 'Pod', operations: ['CREATE'] }],
  evaluate({ object: pod, namespace, cluster, mesh, options }) {
    if (!ownedByJob(pod)) return { result: 'skip', reason: 'not owned by a Job' };
    // A native sidecar stops by itself once the app containers have exited: nothing to do.
    const sidecar = sidecarOf(pod, namespace, cluster, mesh);
    if (sidecar.proxy !== 'classic') return { result: 'skip', reason: skipReason(sidecar) };

    // /quitquitquit stops the proxy for the whole pod (pilot-agent's status server), so it may be
    // sent once, when the pod's work is done: by its only app container, and only after a run
    // that the kubelet will not restart.
    const apps = containers(pod).filter(({ container }) => container.name !== PROXY_CONTAINER);
    if (apps.length > 1) {
      return {
        result: 'warn',
        warnings: [
          `${apps.length} app containers: the first to finish would stop istio-proxy for all; not wrapped — use native sidecars (annotation sidecar.istio.io/nativeSidecar: "true")`,
        ],
      };
    }
    const restartPolicy = podSpec(pod).restartPolicy;
    const quitOn: QuitOn | undefined =
      restartPolicy === 'Never' ? 'exit' : restartPolicy === 'OnFailure' ? 'success' : undefined;
    if (!quitOn) {
      return {
        result: 'warn',
        warnings: [
          `restartPolicy ${String(restartPolicy ?? 'Always')} restarts the container after it ends; not wrapped`,
        ],
      };
    }
    const endpoints = proxyEndpoints(statusPort(pod));

    const toWrap: { index: number; name: string; command: string[]; args: string[]; hasArgs: boolean }[] = [];
    const warnings: string[] = [];
    for (const { container, index } of containers(pod)) {
      const { name } = container;
      if (name === PROXY_CONTAINER) continue;
      const command = strings(container.command);
      // An empty command, like none, means the image's ENTRYPOINT.
      if (!command || command.length === 0) {
        warnings.push(
          `container ${name} has no command: it runs the image's entrypoint, which meshguard cannot wrap; set an explicit command or use native sidecars`,
        );
        continue;
      }
      if (isWrapped(command)) continue;
      const args = container.args == null ? [] : strings(container.args);
      if (!args) continue; // not a list of strings: the API server never sends one
      const program = command[0] ?? '';
      if (options.requireShellCommand && !startsWithShell(command)) {
        const head =
          program.slice(program.lastIndexOf('/') + 1) === 'env' && command.length > 1
            ? command.slice(0, 2).join(' ')
            : program;
        warnings.push(
          `container ${name} not wrapped: ${shown(head)} is not a shell, so the image may lack /bin/sh; if it has one, set requireShellCommand: false`,
        );
        continue;
      }
      // The wrapper starts the command with `exec`, which would take a leading "-" for its own option.
      if (program === '' || program.startsWith('-')) {
        warnings.push(`container ${name} not wrapped: its command ${shown(program)} names no program`);
        continue;
      }
      toWrap.push({ index, name, command, args, hasArgs: Object.hasOwn(container, 'args') });
    }
    const bytes = toWrap.length * wrapperScript(options.readyTimeoutSeconds, statusPort(pod), quitOn).length;
    if (bytes > MAX_WRAPPER_BYTES) {
      warnings.unshift(
        `${toWrap.length} containers not wrapped: their wrappers would add ${Math.ceil(bytes / 1024)} KiB to the pod, more than the ${MAX_WRAPPER_BYTES / 1024} KiB meshguard allows`,
      );
      toWrap.length = 0;
    }
    const patch: PatchOp[] = [];
    const wrapped: string[] = [];
    for (const { index, name, command, args, hasArgs } of toWrap) {
      const next = wrapContainer(options.readyTimeoutSeconds, command, args, endpoints, quitOn);
      patch.push(
        { op: 'replace', path: pointer('spec', 'containers', index, 'command'), value: next.command },
        { op: hasArgs ? 'replace' : 'add', path: pointer('spec', 'containers', index, 'args'), value: next.args },
      );
      wrapped.push(name);
    }
    if (wrapped.length > 0) {
      return { result: 'mutate', patch, summary: summaryOf(wrapped), ...(warnings.length > 0 ? { warnings } : {}) };
    }
    return warnings.length > 0 ? { result: 'warn', warnings } : { result: 'pass' };
  },
};

export default policy;
