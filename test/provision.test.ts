// test/e2e/provision.sh, the parts a person watches, without a build: progress lines while a
// command runs, module downloads with a timeout and retries, the disk check, and the Go used (an
// old Go fetching the toolchain the modules ask for). The script is sourced, so only its
// functions run, against stub `go` and `df` commands; the real builds run in npm run test:e2e.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../src/paths.js';

const script = join(packageRoot, 'test/e2e/provision.sh');

/** A scratch directory with stub commands in bin/ and the script's cache root. */
function sandbox(stubs: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'meshguard-provision-'));
  mkdirSync(join(dir, 'bin'));
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(dir, 'bin', name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(join(dir, 'bin', name), 0o755);
  }
  const run = (code: string, env: Record<string, string> = {}) => {
    const r = spawnSync('bash', ['-c', `source ${JSON.stringify(script)}\n${code}`], {
      encoding: 'utf8',
      env: {
        PATH: `${join(dir, 'bin')}:/usr/bin:/bin`,
        HOME: dir,
        STUB: dir,
        MESHGUARD_E2E_CACHE: join(dir, 'cache'),
        ...env,
      },
      timeout: 60_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  return { dir, run };
}

// A go that answers what the functions ask of it besides the command under test.
const goBasics = (version: string) => `
case "$1 $2" in
  "version "*) echo "go version go${version} linux/amd64"; exit 0 ;;
  "env GOOS") echo linux; exit 0 ;;
  "env GOARCH") echo amd64; exit 0 ;;
  "env GOPROXY") echo https://proxy.example; exit 0 ;;
  "env GOMODCACHE") echo "$STUB/modcache"; exit 0 ;;
esac`;

t.test('the script parses', async (t) => {
  const r = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
});

t.test('a long command prints a progress line each interval and keeps its exit status', async (t) => {
  const { run } = sandbox({});
  const r = run(
    `detail() { printf '%s things so far' 7; }
     rc=0; with_progress "building x" detail sh -c 'sleep 3.5; exit 3' || rc=$?
     echo "rc=$rc"; with_progress "quick" detail true && echo quick-ok`,
    { MESHGUARD_E2E_PROGRESS_SECONDS: '1' },
  );
  t.match(r.out, /rc=3\nquick-ok/);
  const lines = r.err.split('\n').filter((l) => l.startsWith('==> building x: still running after'));
  t.ok(lines.length >= 2 && lines.length <= 4, `${lines.length} progress lines in 3.5 s`);
  t.match(lines[0], /^==> building x: still running after 0m0\ds; 7 things so far; load [0-9.]+$/);
  t.notMatch(r.err, /quick: still running/, 'none for a command quicker than the interval');
});

t.test("a build's progress counts the packages go build -v has named so far", async (t) => {
  const { dir, run } = sandbox({});
  writeFileSync(
    join(dir, 'build.log'),
    'internal/goarch\nk8s.io/api/core/v1\n# k8s.io/broken\nbroken.go:3:1: syntax error\nk8s.io/kubernetes/cmd/kubectl\n',
  );
  const r = run('BUILD_LOG="$STUB/build.log" BUILD_TOTAL=2400; packages_detail x');
  t.equal(r.out, '3 packages compiled of at most 2400, last k8s.io/kubernetes/cmd/kubectl');
  t.equal(run('BUILD_LOG=/dev/null BUILD_TOTAL=; packages_detail x').out, '0 packages compiled');
});

t.test('a download that fails or hangs is tried again, with a timeout, then given up', async (t) => {
  const { dir, run } = sandbox({
    go: `${goBasics('1.26.0')}
n=$(($(cat "$STUB/tries" 2>/dev/null || echo 0) + 1)); echo "$n" > "$STUB/tries"
case "$n" in 1) exit 1 ;; 2) sleep 30 ;; *) echo downloaded ;; esac`,
  });
  const env = { MESHGUARD_E2E_DOWNLOAD_TIMEOUT: '1', MESHGUARD_E2E_RETRY_SECONDS: '0' };
  const r = run(`download_with_retries etcd "$STUB" go mod download`, env);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'downloaded\n');
  t.match(r.err, /etcd: module download failed \(exit 1\); retrying in 0 s \(attempt 2 of 3\)/);
  t.match(r.err, /etcd: module download failed \(no end after 1 s\); retrying in 0 s \(attempt 3 of 3\)/);
  t.equal(readFileSync(join(dir, 'tries'), 'utf8'), '3\n');

  const { run: failing } = sandbox({ go: `${goBasics('1.26.0')}\nexit 1` });
  const f = failing(`download_with_retries etcd "$STUB" go mod download || echo "gave up: $?"`, {
    ...env,
    MESHGUARD_E2E_DOWNLOAD_TRIES: '2',
  });
  t.equal(f.out, 'gave up: 1\n');
  t.match(f.err, /etcd: module download failed 2 times \(last: exit 1\); check GOPROXY \(https:\/\/proxy\.example\)/);
});

t.test('the disk check stops a build that would not fit, before it starts', async (t) => {
  const df = (mb: number) => `echo "Filesystem 1048576-blocks Used Available Capacity Mounted on"
echo "/dev/fake 100000 1 ${mb} 1% /"`;
  const go = goBasics('1.26.0');
  const roomy = sandbox({ go, df: df(50_000) }).run('check_disk kubernetes etcd && echo fits');
  t.equal(roomy.code, 0, roomy.err);
  t.match(roomy.out, 'fits');
  t.match(roomy.err, /==> disk: building kubernetes etcd needs about [0-9.]+ GB; 48\.8 GB free on \/dev\/fake/);

  const small = sandbox({ go, df: df(2_000) });
  const tight = small.run('check_disk kubernetes etcd; echo not reached');
  t.equal(tight.code, 1);
  t.notMatch(tight.out, /not reached/);
  t.match(
    tight.err,
    /^provision\.sh: error: not enough disk to build kubernetes etcd: it needs about [0-9.]+ GB on \/dev\/fake \(.*cache: [0-9.]+ GB of Go build cache and binaries; .*modcache: [0-9.]+ GB of modules\), which has 2\.0 GB free\. Free some space, or point MESHGUARD_E2E_CACHE and GOMODCACHE at a larger disk/m,
  );
  const forced = small.run('check_disk kubernetes && echo built anyway', { MESHGUARD_E2E_SKIP_DISK_CHECK: '1' });
  t.match(forced, { code: 0, out: 'built anyway\n', err: /going on \(MESHGUARD_E2E_SKIP_DISK_CHECK=1\)/ });
  t.equal(small.run('check_disk && echo nothing to build').out, 'nothing to build\n');

  // The modules on another filesystem: each is checked on its own.
  const split = sandbox({
    go,
    df: `case "$2" in *modcache*) echo "Filesystem 1048576-blocks Used Available Capacity Mounted on"; echo "/dev/mods 1 1 100 1% /m" ;; *) ${df(50_000).replaceAll('\n', '; ')} ;; esac`,
  });
  mkdirSync(join(split.dir, 'modcache'));
  const s = split.run('check_disk helm');
  t.equal(s.code, 1);
  t.match(s.err, /needs about [0-9.]+ GB of modules on \/dev\/mods \(.*modcache\), which has 0\.1 GB free/);
  t.notMatch(s.err, /Go build cache and binaries on/, 'the roomy one is not named');
});

t.test('a Go older than 1.21 fetches the toolchain the modules ask for, once, as a module', async (t) => {
  // What go 1.19 does with `go mod download -json golang.org/toolchain@…`: a read-only tree.
  const { dir, run } = sandbox({
    go: `${goBasics('1.19.8')}
if [ "$1 $2 $3" = "mod download -json" ]; then
  echo "$PWD $GO111MODULE $4" >> "$STUB/downloads"
  d="$STUB/modcache/golang.org/toolchain@v0.0.1-go1.26.0.linux-amd64"
  mkdir -p "$d/bin" "$d/pkg/tool/linux_amd64"
  printf '#!/usr/bin/env bash\\necho "go version go1.26.0 linux/amd64"\\n' > "$d/bin/go"
  printf '#!/bin/sh\\n' > "$d/pkg/tool/linux_amd64/compile"
  chmod -R a-w,a-x "$d/bin/go" "$d/pkg/tool/linux_amd64/compile"
  printf '{\\n\\t"Path": "golang.org/toolchain",\\n\\t"Dir": "%s",\\n\\t"Sum": "h1:x"\\n}\\n' "$d"
  exit 0
fi
exit 7`,
  });
  const r = run('ensure_go; command -v go; go version; ensure_go; command -v go');
  t.equal(r.code, 0, r.err);
  const toolchain = join(dir, 'cache/toolchain/go1.26.0.linux-amd64');
  t.equal(r.out, `${toolchain}/bin/go\ngo version go1.26.0 linux/amd64\n${toolchain}/bin/go\n`);
  t.match(r.err, /==> go 1\.19\.8 predates toolchain switching \(Go 1\.21\): fetching go 1\.26\.0 with it/);
  t.match(r.err, /building with go 1\.26\.0 from .*toolchain\/go1\.26\.0\.linux-amd64/);
  t.equal(
    readFileSync(join(dir, 'downloads'), 'utf8'),
    `${join(dir, 'cache/toolchain')} on golang.org/toolchain@v0.0.1-go1.26.0.linux-amd64\n`,
    'downloaded once, outside any module',
  );
  t.ok(statSync(join(toolchain, 'pkg/tool/linux_amd64/compile')).mode & 0o100, 'its tools made executable');
  t.notOk(existsSync(`${toolchain}.tmp`));

  const failing = sandbox({ go: `${goBasics('1.19.8')}\nexit 1` }).run('ensure_go', {
    MESHGUARD_E2E_DOWNLOAD_TRIES: '1',
    MESHGUARD_E2E_DOWNLOAD_TIMEOUT: '5',
  });
  t.equal(failing.code, 1);
  t.match(
    failing.err,
    /provision\.sh: error: go 1\.19\.8 could not fetch golang\.org\/toolchain@v0\.0\.1-go1\.26\.0\.linux-amd64 from the module proxy \(https:\/\/proxy\.example\)\. Install Go 1\.21 or later instead/,
  );
});

t.test('a Go of 1.21 or later switches by itself, unless GOTOOLCHAIN=local forbids it', async (t) => {
  const { run } = sandbox({ go: goBasics('1.24.4') });
  const auto = run('ensure_go; echo "$GOTOOLCHAIN"');
  t.equal(auto.code, 0, auto.err);
  t.equal(auto.out, 'auto\n', 'the script asks for it, whatever go.env says');
  t.match(auto.err, /==> go 1\.24\.4 \(GOTOOLCHAIN=auto: it runs go 1\.26\.0 or later for the components\)/);
  const local = run('ensure_go', { GOTOOLCHAIN: 'local' });
  t.equal(local.code, 1);
  t.match(local.err, /go 1\.24\.4 is older than the go 1\.26\.0 the components need, and GOTOOLCHAIN=local forbids/);
  t.equal(sandbox({ go: goBasics('1.26.8') }).run('ensure_go', { GOTOOLCHAIN: 'local' }).code, 0, 'new enough');
  // A PATH with the tools the script uses, and no go.
  const tools = mkdtempSync(join(tmpdir(), 'meshguard-provision-'));
  for (const tool of ['bash', 'awk', 'sort', 'tail', 'cut', 'dirname'])
    symlinkSync(spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), join(tools, tool));
  const none = spawnSync(join(tools, 'bash'), ['-c', `source ${JSON.stringify(script)}; ensure_go`], {
    encoding: 'utf8',
    env: { PATH: tools, HOME: tools },
  });
  t.equal(none.status, 1);
  t.match(none.stderr, /go not found\. Install any Go: with 1\.21 or later go fetches go 1\.26\.0 itself/);
});

t.test('an unknown argument is refused', async (t) => {
  const r = spawnSync('bash', [script, '--frobnicate'], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /unknown argument --frobnicate \(usage: provision\.sh \[--check\]\)/);
});
