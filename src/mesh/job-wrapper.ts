// The shell wrapper that lets a Job's pod complete although istio-proxy runs beside it: it waits
// (bounded) for the proxy, runs the container's original command, then asks the proxy to quit.
// Pure text building; the wrapper runs in the user's container, never here.

/** First line of every wrapper: how an already wrapped container is recognised (any version). */
export const WRAPPER_MARKER = '# meshguard job-sidecar-quit';
const VERSION = 'v1';
/** `$0` of the wrapper script: what `ps` and the shell's own error messages show. */
export const WRAPPER_NAME = 'meshguard-job';
const SHELL = '/bin/sh';

/** Where the wrapper talks to the proxy. Only tests point it elsewhere. */
export interface ProxyEndpoints {
  /** pilot-agent's readiness endpoint. */
  ready: string;
  /** POSTed in order until one accepts: pilot-agent (stops envoy too), then envoy's admin port. */
  quit: readonly [string, string];
}

/** pilot-agent's status port (`status.sidecar.istio.io/port`, default 15020) and envoy's admin port 15000. */
export function proxyEndpoints(statusPort: number): ProxyEndpoints {
  return {
    ready: `http://127.0.0.1:${statusPort}/healthz/ready`,
    quit: [`http://127.0.0.1:${statusPort}/quitquitquit`, 'http://127.0.0.1:15000/quitquitquit'],
  };
}

export const PROXY_ENDPOINTS: ProxyEndpoints = proxyEndpoints(15020);

/**
 * When the proxy is told to quit: after any exit where the container will not run again
 * (`restartPolicy: Never`), or only after success where a failure restarts it (`OnFailure`): a
 * restarted container would otherwise run without its proxy behind the iptables redirect.
 */
export type QuitOn = 'exit' | 'success';

// URLs are pasted into the script: allow only characters that mean nothing to the shell.
const SAFE_URL = /^http:\/\/[A-Za-z0-9.:/_-]+$/;

/** Seconds as the script gets them: a whole number in the schema's range. */
function seconds(n: number): number {
  return Number.isFinite(n) ? Math.min(3600, Math.max(0, Math.trunc(n))) : 0;
}

/**
 * The wrapper script for a readiness timeout, talking to the given endpoints. Production uses
 * `wrapperScript`; tests call this with a local server's URLs, and nothing else differs.
 *
 * The original command arrives as the positional parameters and is only ever expanded as
 * `"$@"`, never parsed: nothing a user wrote can run as shell. It is started with `exec`, so
 * PATH lookup finds the same program the container runtime would (never a shell builtin or one
 * of these functions). The script reads no environment variable of its own.
 */
export function renderWrapper(readyTimeoutSeconds: number, endpoints: ProxyEndpoints, quitOn: QuitOn = 'exit'): string {
  for (const url of [endpoints.ready, ...endpoints.quit]) {
    if (!SAFE_URL.test(url)) throw new Error(`meshguard: unsafe proxy URL for the job wrapper: ${url}`);
  }
  const timeout = seconds(readyTimeoutSeconds);
  const [quitAgent, quitEnvoy] = endpoints.quit;
  const wait =
    timeout === 0
      ? []
      : [
          `# Wait for the proxy (at most ${timeout} s), so the command's first connections work.`,
          'mg_waited=0',
          `while [ -n "$mg_tool" ] && [ -z "$mg_signal" ] && [ "$mg_waited" -lt ${timeout} ] &&`,
          `  ! mg_http GET ${endpoints.ready} 1; do`,
          '  sleep 1',
          '  mg_waited=$((mg_waited + 1))',
          'done',
          `[ "$mg_waited" -lt ${timeout} ] || mg_say 'istio-proxy not ready after ${timeout} s, starting anyway'`,
        ];
  return [
    `${WRAPPER_MARKER} ${VERSION}`,
    "# Runs this container's command (the arguments after meshguard-job, never parsed as shell),",
    "# then asks istio-proxy to quit so the Job can complete. Exits with the command's status.",
    'mg_say() { echo "meshguard job-sidecar-quit: $1" >&2; }',
    'mg_tool=',
    'mg_wget_timeout=',
    'if command -v curl >/dev/null 2>&1; then',
    '  mg_tool=curl',
    'elif command -v wget >/dev/null 2>&1; then',
    '  mg_tool=wget',
    '  # Some busybox builds have no wget -T and crash on it (139): they go without a timeout.',
    '  { wget -q -T 1; } 2>/dev/null',
    '  [ $? -eq 139 ] || mg_wget_timeout=y',
    'fi',
    'mg_child=',
    'mg_signal=',
    'mg_signame=',
    '# mg_http GET|POST URL SECONDS: one try, short timeout, output discarded, no HTTP proxy.',
    'mg_http() (',
    '  unset http_proxy HTTP_PROXY all_proxy ALL_PROXY',
    '  mg_method=$1 mg_url=$2 mg_seconds=$3',
    '  if [ "$mg_tool" = curl ]; then',
    '    set -- curl -fs -o /dev/null -m "$mg_seconds"',
    '    [ "$mg_method" = GET ] || set -- "$@" -X POST',
    '  elif [ "$mg_tool" = wget ]; then',
    '    set -- wget -q -O /dev/null -t 1',
    '    [ -z "$mg_wget_timeout" ] || set -- "$@" -T "$mg_seconds"',
    '    [ "$mg_method" = GET ] || set -- "$@" --post-data \'\'',
    '  else',
    '    exit 1',
    '  fi',
    '  exec "$@" "$mg_url" 2>/dev/null',
    ')',
    "# pilot-agent first (it stops envoy too), then envoy's own admin port.",
    'mg_quit() {',
    '  if [ -z "$mg_tool" ]; then',
    "    mg_say 'no curl or wget in this image to ask istio-proxy to quit: the pod keeps running'",
    `  elif ! mg_http POST ${quitAgent} 2 &&`,
    `    ! mg_http POST ${quitEnvoy} 2; then`,
    "    mg_say 'istio-proxy did not accept quitquitquit'",
    '  fi',
    '}',
    '# Pass a stop signal on to the command; its exit then ends the wrapper.',
    'mg_forward() {',
    '  mg_signame=$1',
    '  mg_signal=$2',
    '  [ -z "$mg_child" ] || kill -"$1" "$mg_child" 2>/dev/null',
    '}',
    ...(quitOn === 'exit'
      ? ['trap mg_quit EXIT']
      : [
          '# A failed run is restarted by the kubelet: the proxy must stay for it.',
          'mg_status=1',
          'trap \'[ "$mg_status" -ne 0 ] || mg_quit\' EXIT',
        ]),
    "trap 'mg_forward TERM 143' TERM",
    "trap 'mg_forward INT 130' INT",
    ...wait,
    '[ -z "$mg_signal" ] || exit "$mg_signal"',
    '# An asynchronous command gets /dev/null as stdin: hand it the real one through fd 9.',
    '{ command exec 9<&0; } 2>/dev/null || exec 9</dev/null',
    'exec "$@" 0<&9 9<&- &',
    'mg_child=$!',
    'exec 9<&-',
    '[ -z "$mg_signal" ] || kill -"$mg_signame" "$mg_child" 2>/dev/null',
    '# A trapped signal interrupts wait (status > 128) while the command may still be running.',
    'while :; do',
    '  wait "$mg_child"',
    '  mg_status=$?',
    '  [ "$mg_status" -gt 128 ] && kill -0 "$mg_child" 2>/dev/null || break',
    'done',
    'exit "$mg_status"',
    '',
  ].join('\n');
}

/** The script a wrapped container runs. */
export function wrapperScript(readyTimeoutSeconds: number, statusPort = 15020, quitOn: QuitOn = 'exit'): string {
  return renderWrapper(readyTimeoutSeconds, proxyEndpoints(statusPort), quitOn);
}

/**
 * A wrapped container's `command` and `args`. The command is the wrapper alone; the args are the
 * original command followed by the original args: `sh -c SCRIPT NAME a b` makes `$0` NAME and
 * `"$@"` a b. Kubernetes runs command + args as one argv and expands `$(VAR)` the same way in
 * both, so moving the original command into args changes nothing of what runs. `endpoints` is
 * for tests only.
 */
export function wrapContainer(
  readyTimeoutSeconds: number,
  command: readonly string[],
  args: readonly string[],
  endpoints: ProxyEndpoints = PROXY_ENDPOINTS,
  quitOn: QuitOn = 'exit',
): { command: string[]; args: string[] } {
  return {
    command: [SHELL, '-c', renderWrapper(readyTimeoutSeconds, endpoints, quitOn), WRAPPER_NAME],
    args: [...command, ...args],
  };
}

/** A command that already runs the wrapper, of this or any other version. */
export function isWrapped(command: readonly string[]): boolean {
  return command[0] === SHELL && command[1] === '-c' && (command[2]?.startsWith(WRAPPER_MARKER) ?? false);
}

const SHELLS = new Set(['sh', 'bash', 'ash', 'dash', 'zsh']);
const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/**
 * The command starts with a shell (`sh`, `bash`, `ash`, `dash`, `zsh`, or `env` and one of
 * these): the image has one, so the wrapper's /bin/sh is very likely there too.
 */
export function startsWithShell(command: readonly string[]): boolean {
  const [first = '', second = ''] = command;
  const name = basename(first);
  return SHELLS.has(name) || (name === 'env' && SHELLS.has(basename(second)));
}
