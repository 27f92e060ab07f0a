// Runs the job-sidecar-quit wrapper under the real /bin/sh against a local HTTP server standing in
// for istio-proxy. The script under test is the production text with only the proxy URLs
// changed (checked first). PATH is always a directory we build: the real curl/wget when this
// machine has them, small node shims with the same flags otherwise, or neither.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import tap from 'tap';
import {
  PROXY_ENDPOINTS,
  WRAPPER_MARKER,
  isWrapped,
  renderWrapper,
  startsWithShell,
  wrapContainer,
  proxyEndpoints,
  wrapperScript,
  type ProxyEndpoints,
  type QuitOn,
} from '../src/mesh/job-wrapper.js';
import { packageRoot } from '../src/paths.js';

const t = tap;
const dir = mkdtempSync(join(tmpdir(), 'meshguard-job-wrapper-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Where a program is on this machine's PATH, if anywhere. */
function which(name: string): string | undefined {
  try {
    return execFileSync('/bin/sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The stand-in proxy: records every request; readiness and quit answers are set per test.

interface Call {
  method: string;
  path: string;
  at: number;
  headers: IncomingHttpHeaders;
}

interface FakeProxy {
  calls: Call[];
  /** Date.now() from which /ready answers 200; Infinity: never. */
  readyAt: number;
  /** Status answered to POST /agent/quitquitquit and /envoy/quitquitquit. */
  agentQuit: number;
  envoyQuit: number;
  endpoints: ProxyEndpoints;
  close(): Promise<void>;
}

async function fakeProxy(t: Pick<typeof tap, 'teardown'>): Promise<FakeProxy> {
  const state = { calls: [] as Call[], readyAt: 0, agentQuit: 200, envoyQuit: 200 };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '';
      state.calls.push({ method: req.method ?? '', path, at: Date.now(), headers: req.headers });
      let status = 404;
      if (req.method === 'GET' && path === '/healthz/ready') status = Date.now() >= state.readyAt ? 200 : 503;
      if (req.method === 'POST' && path === '/agent/quitquitquit') status = state.agentQuit;
      if (req.method === 'POST' && path === '/envoy/quitquitquit') status = state.envoyQuit;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'OK\n' : 'no\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const proxy: FakeProxy = Object.assign(state, {
    endpoints: {
      ready: `${base}/healthz/ready`,
      quit: [`${base}/agent/quitquitquit`, `${base}/envoy/quitquitquit`] as const,
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
  t.teardown(() => proxy.close());
  return proxy;
}

const quits = (p: FakeProxy) => p.calls.filter((c) => c.method === 'POST');
const readyChecks = (p: FakeProxy) => p.calls.filter((c) => c.method === 'GET' && c.path === '/healthz/ready');

// ---------------------------------------------------------------------------------------------
// PATH directories: each holds `sleep` and at most one HTTP client.

const node = process.execPath;
const sleep = which('sleep');
if (!sleep) throw new Error('no sleep on this machine');

// Shims accept exactly the flags the wrapper uses, which the real curl, GNU wget and busybox
// wget share; anything else fails the call, so a flag typo shows up as a missed quit.
const shim = (tool: 'curl' | 'wget') => `#!${node}
const http = require('node:http');
const a = process.argv.slice(2);
const fail = { curl: { http: 22, conn: 7, timeout: 28 }, wget: { http: 8, conn: 4, timeout: 4 } }[${JSON.stringify(tool)}];
let method = 'GET', timeout = 0, url = '';
const bad = (x) => { process.stderr.write(${JSON.stringify(tool)} + ' shim: unexpected argument ' + JSON.stringify(x) + '\\n'); process.exit(2); };
for (let i = 0; i < a.length; i++) {
  const x = a[i], next = a[i + 1];
  if (${JSON.stringify(tool)} === 'curl') {
    if (x === '-fs') continue;
    if (x === '-o' && next === '/dev/null') { i++; continue; }
    if (x === '-m' && /^[0-9]+$/.test(next ?? '')) { timeout = Number(next); i++; continue; }
    if (x === '-X' && next === 'POST') { method = 'POST'; i++; continue; }
  } else {
    if (x === '-q') continue;
    if (x === '-O' && next === '/dev/null') { i++; continue; }
    if (x === '-T' && /^[0-9]+$/.test(next ?? '')) { timeout = Number(next); i++; continue; }
    if (x === '-t' && next === '1') { i++; continue; }
    if (x === '--post-data' && next === '') { method = 'POST'; i++; continue; }
  }
  if (/^http:[/][/]/.test(x) && !url) { url = x; continue; }
  bad(x);
}
if (!url || (!timeout && ${JSON.stringify(tool)} === 'curl')) bad('(missing URL or timeout)');
const req = http.request(url, { method, ...(timeout ? { timeout: timeout * 1000 } : {}), headers: { 'user-agent': ${JSON.stringify(`${tool}-shim`)} } }, (res) => {
  res.resume();
  res.on('end', () => process.exit(res.statusCode >= 200 && res.statusCode < 300 ? 0 : fail.http));
});
req.on('timeout', () => { req.destroy(); process.exit(fail.timeout); });
req.on('error', () => process.exit(fail.conn));
req.end();
`;

function binDir(name: string, tools: Record<string, string>): string {
  const d = join(dir, name);
  mkdirSync(d);
  symlinkSync(sleep as string, join(d, 'sleep'));
  for (const [tool, target] of Object.entries(tools)) symlinkSync(target, join(d, tool));
  return d;
}
for (const tool of ['curl', 'wget'] as const) {
  writeFileSync(join(dir, `${tool}-shim`), shim(tool));
  chmodSync(join(dir, `${tool}-shim`), 0o755);
}
// Debian's busybox before 1.36.1-5 is built without wget -T and crashes on it.
writeFileSync(
  join(dir, 'wget-no-timeout-shim'),
  `#!/bin/sh\nfor a; do [ "$a" != -T ] || kill -SEGV $$; done\nexec ${JSON.stringify(join(dir, 'wget-shim'))} "$@"\n`,
);
chmodSync(join(dir, 'wget-no-timeout-shim'), 0o755);
const realCurl = which('curl');
const realWget = which('wget');
const busybox = which('busybox');
const bins = {
  none: binDir('bin-none', {}),
  curlShim: binDir('bin-curl-shim', { curl: join(dir, 'curl-shim') }),
  wgetShim: binDir('bin-wget-shim', { wget: join(dir, 'wget-shim') }),
  wgetNoTimeoutShim: binDir('bin-wget-no-timeout-shim', { wget: join(dir, 'wget-no-timeout-shim') }),
  curl: realCurl ? binDir('bin-curl', { curl: realCurl }) : undefined,
  wget: realWget ? binDir('bin-wget', { wget: realWget }) : undefined,
};
/** The client most tests use: the real curl when there is one. */
const defaultBin = bins.curl ?? bins.curlShim;
const defaultAgent = bins.curl ? /^curl\// : /^curl-shim$/;

// ---------------------------------------------------------------------------------------------
// The command under test: a node script that records what it received.

const recorder = join(dir, 'record.mjs');
writeFileSync(
  recorder,
  `import { readFileSync, writeFileSync } from 'node:fs';
const out = process.env.REC_OUT;
const mode = process.env.REC_MODE ?? 'exit';
if (mode === 'handle-term') process.on('SIGTERM', () => { writeFileSync(out + '.term', String(Date.now())); process.exit(5); });
const rec = { argv: process.argv.slice(2), startedAt: Date.now(), http_proxy: process.env.http_proxy ?? null };
if (process.env.REC_STDIN === '1') rec.stdin = readFileSync(0, 'utf8');
writeFileSync(out, JSON.stringify(rec));
const code = Number(process.env.REC_EXIT ?? '0');
if (mode === 'exit') process.exit(code);
if (mode === 'linger') setTimeout(() => { writeFileSync(out + '.done', String(Date.now())); process.exit(code); }, 300);
if (mode === 'hang' || mode === 'handle-term') setInterval(() => {}, 1000);
`,
);

interface Recording {
  argv: string[];
  startedAt: number;
  http_proxy: string | null;
  stdin?: string;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  spawnedAt: number;
  /** What the recorder saw, when the command ran. */
  record?: Recording;
  out: string;
}

let runs = 0;

/**
 * Runs a wrapped container's argv (wrapper + command + args) with a clean environment.
 * `during` gets the child process and its record file once it is spawned.
 */
async function run(opts: {
  proxy: FakeProxy;
  timeout: number;
  command: string[];
  args?: string[];
  path?: string;
  env?: Record<string, string>;
  stdin?: string;
  during?: (child: ChildProcess, out: string) => Promise<void>;
  shell?: string[];
  quitOn?: QuitOn;
}): Promise<Run> {
  const out = join(dir, `record-${++runs}.json`);
  const wrapped = wrapContainer(opts.timeout, opts.command, opts.args ?? [], opts.proxy.endpoints, opts.quitOn);
  const [sh = '', ...argv] = [...wrapped.command, ...wrapped.args];
  const shell = opts.shell ?? [sh];
  const spawnedAt = Date.now();
  const child = spawn(shell[0] ?? '', [...shell.slice(1), ...argv], {
    cwd: dir,
    // HOME: no ~/.bashrc (bash reads it when stdin is a socket, as node's pipes are) nor ~/.wgetrc.
    env: { PATH: opts.path ?? defaultBin, HOME: dir, REC_OUT: out, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdin.on('error', () => {}); // EPIPE when the wrapper exits without reading
  child.stdin.end(opts.stdin ?? '');
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (code, signal) => resolve([code, signal])),
  );
  if (opts.during) await opts.during(child, out);
  const [code, signal] = await closed;
  const record = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Recording) : undefined;
  return { code, signal, stdout, stderr, spawnedAt, record, out };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rec = (...args: string[]) => ({ command: [node, recorder], args });

// ---------------------------------------------------------------------------------------------

t.test('the script under test is the production script with other URLs', async (t) => {
  for (const timeout of [0, 1, 60]) {
    const p = await fakeProxy(t);
    let text = renderWrapper(timeout, p.endpoints);
    p.endpoints.quit.forEach((url, i) => (text = text.replaceAll(url, PROXY_ENDPOINTS.quit[i] ?? '')));
    text = text.replaceAll(p.endpoints.ready, PROXY_ENDPOINTS.ready);
    t.equal(text, wrapperScript(timeout), `timeout ${timeout}`);
    t.equal(
      wrapContainer(timeout, ['sh'], []).command[2],
      wrapperScript(timeout),
      'wrapContainer uses the production script',
    );
  }
  const script = wrapperScript(60);
  t.ok(script.startsWith(`${WRAPPER_MARKER} v1\n`), 'starts with the marker');
  t.match(script, /^[\x20-\x7e\n]*$/, 'plain ASCII, no tabs');
  t.notOk(wrapperScript(0).includes('sleep 1'), 'no readiness wait with readyTimeoutSeconds 0');
  t.match(wrapperScript(17), /-lt 17 \]/, 'the timeout is in the loop');
  t.throws(() => renderWrapper(1, { ready: 'http://x/$(reboot)', quit: ['http://a', 'http://b'] }), /unsafe/);
  const readme = readFileSync(join(packageRoot, 'policies', 'job-sidecar-quit', 'README.md'), 'utf8');
  t.ok(readme.includes('```sh\n' + wrapperScript(60) + '```'), "the policy's README shows the script verbatim");
});

t.test('the status port: readiness and quit go to the port given, envoy admin stays 15000', async (t) => {
  t.strictSame(proxyEndpoints(15021), {
    ready: 'http://127.0.0.1:15021/healthz/ready',
    quit: ['http://127.0.0.1:15021/quitquitquit', 'http://127.0.0.1:15000/quitquitquit'],
  });
  const script = wrapperScript(60, 15099, 'success');
  t.match(script, /mg_http GET http:\/\/127\.0\.0\.1:15099\/healthz\/ready 1/);
  t.match(script, /mg_http POST http:\/\/127\.0\.0\.1:15099\/quitquitquit 2/);
  t.notOk(script.includes(':15020/'), 'nothing left on 15020');
  t.equal(wrapperScript(60), wrapperScript(60, 15020, 'exit'), 'defaults: port 15020, quit on exit');
});

t.test('the script parses under every shell this machine has', async (t) => {
  const shells: string[][] = [
    ['/bin/sh'],
    ...(which('dash') ? [['dash']] : []),
    ...(which('bash') ? [['bash', '--posix']] : []),
    ...(busybox ? [[busybox, 'sh']] : []),
  ];
  for (const sh of shells) {
    for (const timeout of [0, 60]) {
      for (const quitOn of ['exit', 'success'] as const) {
        t.doesNotThrow(
          () => execFileSync(sh[0] ?? '', [...sh.slice(1), '-n', '-c', wrapperScript(timeout, 15020, quitOn)]),
          `${sh.join(' ')} -n, timeout ${timeout}, quitOn ${quitOn}`,
        );
      }
    }
  }
});

t.test('wrapContainer, isWrapped, startsWithShell', async (t) => {
  const w = wrapContainer(60, ['/bin/sh', '-c'], ['date; echo hi']);
  t.strictSame(w.command, ['/bin/sh', '-c', wrapperScript(60), 'meshguard-job']);
  t.strictSame(w.args, ['/bin/sh', '-c', 'date; echo hi']);
  t.ok(isWrapped(w.command));
  t.ok(isWrapped([...w.command, ...w.args]), 'also with the original command in command');
  t.ok(isWrapped(['/bin/sh', '-c', '# meshguard job-sidecar-quit v7\n:', 'meshguard-job']), 'any version');
  t.notOk(isWrapped(['/bin/sh', '-c', 'echo "# meshguard job-sidecar-quit v1"']));
  t.notOk(isWrapped(['/bin/sh']));
  t.notOk(isWrapped([]));
  for (const c of [
    ['sh'],
    ['/bin/sh', '-c'],
    ['/bin/bash'],
    ['/usr/local/bin/zsh'],
    ['ash'],
    ['/bin/dash'],
    ['env', 'sh'],
    ['/usr/bin/env', 'bash', '-c'],
  ]) {
    t.ok(startsWithShell(c), c.join(' '));
  }
  for (const c of [
    [],
    [''],
    ['python3'],
    ['/bin/shell'],
    ['fish'],
    ['/usr/bin/env'],
    ['env', 'python3'],
    ['env', '-i', 'sh'],
    ['busybox', 'sh'],
    ['/bin/sh/x'],
  ]) {
    t.notOk(startsWithShell(c), c.join(' ') || '(empty)');
  }
});

t.test('the original argv arrives byte-identical, with stdin and environment', async (t) => {
  const p = await fakeProxy(t);
  const canary = join(dir, 'CANARY');
  writeFileSync(join(dir, 'a-file-for-globs'), '');
  const weird = [
    '',
    ' ',
    'two words',
    "it's",
    '"double"',
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `a; touch ${canary}`,
    `a && touch ${canary}`,
    `'; touch ${canary}; echo '`,
    'a || b',
    'a | b',
    '> out',
    '< in',
    '&',
    '${IFS}',
    '$HOME',
    '$@',
    '"$@"',
    '$1',
    '$0',
    '$(JOB_NAME)',
    'line1\nline2',
    '\ttab',
    'trailing\n',
    '\n',
    '*',
    '/*',
    '?',
    '[a-z]*',
    '~',
    '~root',
    '!',
    '#not a comment',
    '-n',
    '-e',
    '-',
    '--',
    '--help',
    '-c',
    '\\',
    '\\n',
    '\\\\',
    '%s%d',
    '%',
    'ünïcödé ✓ 🚀 日本語',
    '\u00a0',
    'x'.repeat(100_000),
  ];
  const r = await run({
    proxy: p,
    timeout: 2,
    command: [node, recorder, '--also-in-command', '$(touch CANARY)'],
    args: weird,
    stdin: 'from stdin\n',
    env: { REC_STDIN: '1', http_proxy: 'http://127.0.0.1:9', JOB_NAME: 'report' },
  });
  t.equal(r.code, 0, 'exit 0');
  t.equal(r.stderr, '', 'nothing on stderr');
  t.strictSame(r.record?.argv, ['--also-in-command', '$(touch CANARY)', ...weird], 'argv identical');
  t.equal(r.record?.stdin, 'from stdin\n', 'the command reads the container stdin');
  t.equal(r.record?.http_proxy, 'http://127.0.0.1:9', 'environment unchanged for the command');
  t.notOk(existsSync(canary), 'nothing ran as shell');
  t.ok(readyChecks(p).length >= 1, 'readiness checked (past http_proxy)');
  t.equal(quits(p).length, 1, 'quitquitquit once');
  t.equal(quits(p)[0]?.path, '/agent/quitquitquit');
  t.match(quits(p)[0]?.headers['user-agent'] ?? '', defaultAgent, 'called with the expected client');
});

t.test("more hostile argv: every kind of expansion, the wrapper's own names, 10 000 arguments", async (t) => {
  const p = await fakeProxy(t);
  const canary = join(dir, 'CANARY');
  const hostile = [
    '$((1+1))',
    `\${x:-$(touch ${canary})}`,
    `\${IFS}touch\${IFS}${canary}`,
    '{a,b}',
    '{1..3}',
    `<<EOF\ntouch ${canary}\nEOF`,
    `<(touch ${canary})`,
    `>(touch ${canary})`,
    "$'\\x41'",
    'a\rb',
    '\x1b[31mred\x1b[0m',
    '\x01\x7f',
    '2>&1',
    '|&',
    '!!',
    '!$',
    `exec touch ${canary}`,
    `eval "touch ${canary}"`,
    "trap '' EXIT",
    'kill -9 $$',
    'set -e',
    'exit 3',
    '. /dev/stdin',
    'command -v sh',
    '$mg_tool',
    '${mg_child}',
    '$mg_status',
    '$mg_signal',
    'mg_quit',
    'mg_http POST http://127.0.0.1:1/',
    '"$@"',
    '$#',
    '$*',
    '$?',
    '$$',
    '$!',
    '# meshguard job-sidecar-quit v1',
    'meshguard-job',
    '-',
    '--',
    '-c',
    '-x',
    '--version',
    '-exec',
    "'",
    '"',
    '`',
    "'\"'\"'",
    ...Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? `arg${i}` : `$(touch ${canary})`)),
  ];
  const r = await run({ proxy: p, timeout: 0, ...rec(...hostile) });
  t.equal(r.code, 0, 'exit 0');
  t.equal(r.stderr, '', 'nothing on stderr');
  t.strictSame(r.record?.argv, hostile, 'argv identical');
  t.notOk(existsSync(canary), 'nothing ran as shell');
  t.equal(quits(p).length, 1, 'quitquitquit once');
});

t.test('a program path full of shell syntax is run as that file, never parsed', async (t) => {
  const p = await fakeProxy(t);
  const canary = join(dir, 'CANARY');
  const weirdDir = join(dir, `we ird $(touch ${canary}); \`x\` 'q' "d" *`);
  mkdirSync(weirdDir, { recursive: true });
  const program = join(weirdDir, '-node && touch x');
  symlinkSync(node, program);
  const r = await run({ proxy: p, timeout: 0, command: [program, recorder, 'a b'] });
  t.equal(r.code, 0, `exit 0 ${r.stderr}`);
  t.strictSame(r.record?.argv, ['a b'], 'the program ran with its arguments');
  t.notOk(existsSync(canary), 'nothing ran as shell');
});

t.test('random argv arrives byte-identical under /bin/sh (fast-check)', async (t) => {
  const canary = join(dir, 'CANARY');
  const unit = fc.oneof(
    fc.constantFrom(
      '$',
      '(',
      ')',
      '`',
      "'",
      '"',
      ';',
      '&',
      '|',
      '<',
      '>',
      '*',
      '?',
      '[',
      ']',
      '{',
      '}',
      '~',
      '!',
      '#',
      '\\',
      '\n',
      '\r',
      '\t',
      ' ',
      '-',
      '=',
      '%',
      '^',
      '\x01',
      '\x7f',
    ),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
  );
  const arg = fc.oneof(
    fc.string({ unit, maxLength: 24 }),
    fc.constantFrom(`$(touch ${canary})`, `\`touch ${canary}\``, `; touch ${canary}`),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(arg, { maxLength: 12 }), async (argv) => {
      const p = await fakeProxy(t);
      const r = await run({ proxy: p, timeout: 0, ...rec(...argv) });
      return (
        r.code === 0 &&
        r.stderr === '' &&
        isDeepStrictEqual(r.record?.argv, argv) &&
        !existsSync(canary) &&
        quits(p).length === 1
      );
    }),
    { numRuns: Number(process.env.WRAPPER_RUNS ?? 25) },
  );
  t.pass('argv identical, exit 0, nothing ran as shell, one quit');
});

t.test('a shell command runs as it would have without the wrapper', async (t) => {
  const p = await fakeProxy(t);
  const r = await run({
    proxy: p,
    timeout: 2,
    command: ['/bin/sh', '-c'],
    args: ['date >/dev/null; echo "Hello from $0 and $1"', 'zero', 'one'],
  });
  t.equal(r.code, 0);
  t.equal(r.stdout, 'Hello from zero and one\n');
  t.equal(quits(p).length, 1);
});

t.test('the command goes through PATH lookup like the container runtime does, never a builtin', async (t) => {
  const p = await fakeProxy(t);
  // dash's builtin echo would turn \n into a newline; an `exec`ed echo does not exist in bin-none.
  const r = await run({ proxy: p, timeout: 0, command: ['echo'], args: ['a\\nb'], path: bins.none });
  t.equal(r.code, 127, 'not found, as kubelet would fail to start it');
  t.equal(r.stdout, '');
  t.match(r.stderr, /echo/);
});

t.test('exit codes are kept, and quitquitquit is called once after the command ends', async (t) => {
  for (const code of [0, 1, 3, 42, 255]) {
    const p = await fakeProxy(t);
    const r = await run({ proxy: p, timeout: 1, ...rec(), env: { REC_EXIT: String(code), REC_MODE: 'linger' } });
    t.equal(r.code, code, `exit ${code}`);
    t.equal(quits(p).length, 1, `exit ${code}: one quit`);
    const done = Number(readFileSync(`${r.out}.done`, 'utf8'));
    t.ok((quits(p)[0]?.at ?? 0) >= done, 'quit after the command ended');
  }
  const p = await fakeProxy(t);
  const killed = await run({ proxy: p, timeout: 0, command: ['/bin/sh', '-c', 'kill -KILL $$'] });
  t.equal(killed.code, 137, 'killed by SIGKILL: 137 as a shell reports it');
  t.equal(quits(p).length, 1);
  const q = await fakeProxy(t);
  const missing = await run({ proxy: q, timeout: 0, command: ['/nonexistent/report'] });
  t.equal(missing.code, 127, 'command not found: 127');
  t.equal(quits(q).length, 1);
});

// restartPolicy OnFailure: the kubelet restarts a failed container in the same pod, so the proxy
// must outlive a failure and be told to quit only after a success.
t.test("quitOn 'success': a failed run keeps the proxy, a successful one quits it, under every shell", async (t) => {
  const shells: [string, string[] | undefined][] = [
    ['/bin/sh', ['/bin/sh']],
    ['dash', ((d = which('dash')) => (d ? [d] : undefined))()],
    ['bash --posix', ((b = which('bash')) => (b ? [b, '--posix'] : undefined))()],
    ['busybox sh', busybox ? [busybox, 'sh'] : undefined],
  ];
  for (const [name, shell] of shells) {
    t.test(name, { skip: shell ? false : `no ${name} on this machine` }, async (t) => {
      for (const code of [1, 2, 42, 255]) {
        const p = await fakeProxy(t);
        const r = await run({
          proxy: p,
          timeout: 1,
          ...rec(),
          shell,
          quitOn: 'success',
          env: { REC_EXIT: String(code) },
        });
        t.equal(r.code, code, `exit ${code} kept`);
        t.ok(r.record, 'the command ran');
        t.equal(quits(p).length, 0, `exit ${code}: no quitquitquit, the proxy stays for the restart`);
        t.equal(r.stderr, '');
      }
      const ok = await fakeProxy(t);
      const s = await run({ proxy: ok, timeout: 1, ...rec(), shell, quitOn: 'success', env: { REC_MODE: 'linger' } });
      t.equal(s.code, 0);
      t.equal(quits(ok).length, 1, 'success: one quitquitquit');
      t.ok((quits(ok)[0]?.at ?? 0) >= Number(readFileSync(`${s.out}.done`, 'utf8')), 'after the command ended');
      t.equal(quits(ok)[0]?.path, '/agent/quitquitquit', "to pilot-agent's status port first");

      const missing = await fakeProxy(t);
      const m = await run({ proxy: missing, timeout: 0, command: ['/nonexistent/report'], shell, quitOn: 'success' });
      t.equal(m.code, 127, 'command not found: 127');
      t.equal(quits(missing).length, 0, 'not found is a failure: no quit');

      const term = await fakeProxy(t);
      const k = await run({
        proxy: term,
        timeout: 1,
        ...rec(),
        shell,
        quitOn: 'success',
        env: { REC_MODE: 'hang' },
        during: async (child, out) => {
          await until('the command to start', () => existsSync(out));
          child.kill('SIGTERM');
        },
      });
      t.equal(k.code, 143, 'stopped by TERM: 143');
      t.equal(quits(term).length, 0, 'a stopped run is no success: no quit');
    });
  }
});

t.test('quit falls back to envoy admin port, and a refused quit never fails the job', async (t) => {
  const p = await fakeProxy(t);
  p.agentQuit = 500;
  const r = await run({ proxy: p, timeout: 0, ...rec(), env: { REC_EXIT: '0' } });
  t.equal(r.code, 0);
  t.strictSame(
    quits(p).map((c) => c.path),
    ['/agent/quitquitquit', '/envoy/quitquitquit'],
  );
  t.equal(r.stderr, '');

  const q = await fakeProxy(t);
  q.agentQuit = 404;
  q.envoyQuit = 503;
  const s = await run({ proxy: q, timeout: 0, ...rec(), env: { REC_EXIT: '4' } });
  t.equal(s.code, 4, 'exit code kept');
  t.equal(quits(q).length, 2, 'each tried once');
  t.match(s.stderr, /^meshguard job-sidecar-quit: istio-proxy did not accept quitquitquit\n$/);
});

t.test('SIGTERM reaches the command; the proxy is told to quit once', async (t) => {
  const p = await fakeProxy(t);
  const handled = await run({
    proxy: p,
    timeout: 1,
    ...rec(),
    env: { REC_MODE: 'handle-term' },
    during: async (child, out) => {
      await until('the command to start', () => existsSync(out));
      child.kill('SIGTERM');
    },
  });
  t.equal(handled.code, 5, "the command's own exit status after its TERM handler");
  t.ok(existsSync(`${handled.out}.term`), 'the command got SIGTERM');
  t.equal(quits(p).length, 1, 'one quit');

  const q = await fakeProxy(t);
  const plain = await run({
    proxy: q,
    timeout: 1,
    ...rec(),
    env: { REC_MODE: 'hang' },
    during: async (child, out) => {
      await until('the command to start', () => existsSync(out));
      child.kill('SIGTERM');
    },
  });
  t.equal(plain.code, 143, 'killed by TERM: 143');
  t.equal(quits(q).length, 1, 'one quit');

  const i = await fakeProxy(t);
  const interrupted = await run({
    proxy: i,
    timeout: 1,
    ...rec(),
    env: { REC_MODE: 'hang' },
    during: async (child, out) => {
      await until('the command to start', () => existsSync(out));
      child.kill('SIGINT');
      // POSIX has an asynchronous command start with SIGINT ignored; node resets its signal
      // dispositions, other programs may not: then TERM stops it.
      await new Promise((r) => setTimeout(r, 500));
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  });
  t.ok(interrupted.code === 130 || interrupted.code === 143, `ends with the command (${interrupted.code})`);
  t.equal(quits(i).length, 1, 'one quit');
});

t.test('SIGTERM while waiting for the proxy: the command never starts', async (t) => {
  const p = await fakeProxy(t);
  p.readyAt = Infinity;
  const r = await run({
    proxy: p,
    timeout: 30,
    ...rec(),
    during: async (child) => {
      await until('a readiness check', () => readyChecks(p).length > 0);
      child.kill('SIGTERM');
    },
  });
  t.equal(r.code, 143);
  t.equal(r.record, undefined, 'command not started');
  t.ok(Date.now() - r.spawnedAt < 5000, 'did not wait out the timeout');
  t.equal(quits(p).length, 1, 'one quit');
});

t.test('readiness: the wait is bounded by readyTimeoutSeconds', async (t) => {
  const never = await fakeProxy(t);
  never.readyAt = Infinity;
  const r = await run({ proxy: never, timeout: 2, ...rec() });
  const delay = (r.record?.startedAt ?? Infinity) - r.spawnedAt;
  t.ok(delay >= 1900, `waited for the proxy (${delay} ms)`);
  t.ok(delay < 4500, `at most about the timeout (${delay} ms)`);
  t.match(r.stderr, /^meshguard job-sidecar-quit: istio-proxy not ready after 2 s, starting anyway\n/);
  t.equal(r.code, 0);
  t.equal(quits(never).length, 1);

  const late = await fakeProxy(t);
  late.readyAt = Date.now() + 1000;
  const l = await run({ proxy: late, timeout: 5, ...rec() });
  const lateDelay = (l.record?.startedAt ?? Infinity) - l.spawnedAt;
  t.ok(lateDelay >= 900 && lateDelay < 4000, `started once ready, well before the timeout (${lateDelay} ms)`);
  t.equal(l.stderr, '');

  const ready = await fakeProxy(t);
  const s = await run({ proxy: ready, timeout: 5, ...rec() });
  const readyDelay = (s.record?.startedAt ?? Infinity) - s.spawnedAt;
  t.ok(readyDelay < 2000, `no wait when ready (${readyDelay} ms)`);
  t.equal(readyChecks(ready).length, 1, 'one readiness check');

  const none = await fakeProxy(t);
  none.readyAt = Infinity;
  const z = await run({ proxy: none, timeout: 0, ...rec() });
  t.equal(readyChecks(none).length, 0, 'readyTimeoutSeconds 0: no readiness check');
  t.equal(z.stderr, '');
  t.equal(quits(none).length, 1);
});

t.test('each HTTP client', async (t) => {
  const clients: [string, string | undefined, RegExp][] = [
    ['curl', bins.curl, /^curl\//],
    ['wget', bins.wget, /^Wget\//],
    ['curl shim', bins.curlShim, /^curl-shim$/],
    ['wget shim', bins.wgetShim, /^wget-shim$/],
    ['wget shim without -T, like some busybox builds', bins.wgetNoTimeoutShim, /^wget-shim$/],
  ];
  for (const [name, path, agent] of clients) {
    t.test(name, { skip: path ? false : `no ${name} on this machine` }, async (t) => {
      const never = await fakeProxy(t);
      never.readyAt = Infinity;
      const r = await run({ proxy: never, timeout: 1, ...rec(), path, env: { REC_EXIT: '3' } });
      t.equal(r.code, 3, 'exit code kept');
      t.ok(readyChecks(never).length >= 1, 'readiness checked');
      t.ok(
        readyChecks(never).every((c) => agent.test(c.headers['user-agent'] ?? '')),
        'by this client',
      );
      t.match(r.stderr, /not ready after 1 s/);
      t.equal(quits(never).length, 1, 'quit once');
      t.match(quits(never)[0]?.headers['user-agent'] ?? '', agent);

      const p = await fakeProxy(t);
      p.agentQuit = 500;
      const s = await run({ proxy: p, timeout: 1, ...rec(), path });
      t.equal(s.code, 0);
      t.strictSame(
        quits(p).map((c) => c.path),
        ['/agent/quitquitquit', '/envoy/quitquitquit'],
        'falls back once',
      );
      t.equal(s.stderr, '');
    });
  }
});

t.test('neither curl nor wget: the log says so, naming meshguard', async (t) => {
  const p = await fakeProxy(t);
  const r = await run({ proxy: p, timeout: 2, ...rec(), path: bins.none, env: { REC_EXIT: '6' } });
  t.equal(r.code, 6, 'exit code kept');
  t.match(
    r.stderr,
    /^meshguard job-sidecar-quit: no curl or wget in this image to ask istio-proxy to quit: the pod keeps running\n$/,
  );
  t.ok((r.record?.startedAt ?? Infinity) - r.spawnedAt < 1800, 'no blind wait for the 2 s timeout');
  t.equal(p.calls.length, 0, 'no request reached the proxy');
});

t.test('under busybox sh with busybox wget', { skip: busybox ? false : 'no busybox on this machine' }, async (t) => {
  const bb = busybox ?? '';
  const path = binDir('bin-busybox', { wget: bb });
  rmSync(join(path, 'sleep'));
  symlinkSync(bb, join(path, 'sleep'));
  const p = await fakeProxy(t);
  p.readyAt = Date.now() + 1000;
  const r = await run({
    proxy: p,
    timeout: 3,
    ...rec('a b', '$(x)', ''),
    path,
    env: { REC_EXIT: '2' },
    shell: [bb, 'sh'],
  });
  t.equal(r.code, 2);
  t.strictSame(r.record?.argv, ['a b', '$(x)', '']);
  t.ok(readyChecks(p).length >= 2, 'waited');
  t.equal(quits(p).length, 1);
  t.match(quits(p)[0]?.headers['user-agent'] ?? '', /^Wget/);
  t.equal(r.stderr, '');
});

t.test("other images' /bin/sh: bash in POSIX mode, busybox ash, dash", async (t) => {
  const shells: [string, string[] | undefined][] = [
    ['dash', ((d = which('dash')) => (d ? [d] : undefined))()],
    ['bash --posix', ((b = which('bash')) => (b ? [b, '--posix'] : undefined))()],
    ['busybox sh', busybox ? [busybox, 'sh'] : undefined],
  ];
  for (const [name, shell] of shells) {
    t.test(name, { skip: shell ? false : `no ${name} on this machine` }, async (t) => {
      const p = await fakeProxy(t);
      const argv = ['', 'a b', "'", '"', '$(x)', '`x`', ';', '&&', '\n', '*', '-n', '--', 'ü✓'];
      const r = await run({
        proxy: p,
        timeout: 1,
        ...rec(...argv),
        shell,
        env: { REC_EXIT: '9', REC_STDIN: '1' },
        stdin: 'in',
      });
      t.equal(r.code, 9, 'exit code kept');
      t.strictSame(r.record?.argv, argv, 'argv identical');
      t.equal(r.record?.stdin, 'in', 'stdin passed');
      t.equal(quits(p).length, 1, 'quit once');
      t.equal(r.stderr, '');

      const q = await fakeProxy(t);
      const term = await run({
        proxy: q,
        timeout: 1,
        ...rec(),
        shell,
        env: { REC_MODE: 'handle-term' },
        during: async (child, out) => {
          await until('the command to start', () => existsSync(out));
          child.kill('SIGTERM');
        },
      });
      t.equal(term.code, 5, 'TERM forwarded, status kept');
      t.equal(quits(q).length, 1, 'quit once');
    });
  }
});
