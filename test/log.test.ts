// createLogger: JSON lines on stdout, batched, and none lost when the process ends by itself,
// by process.exit() or by an uncaught exception.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import pino from 'pino';
import { LOG_BATCH, lineWriter, timeField } from '../src/log.js';
import { packageRoot } from '../src/paths.js';

const logModule = join(packageRoot, 'src', 'log.ts');

/** Runs `body` in a fresh process after `const log = createLogger('info')`; what it wrote to stdout. */
function withLogger(body: string): { status: number | null; stdout: string } {
  const script = `const { createLogger } = await import(${JSON.stringify(logModule)});\nconst log = createLogger('info');\n${body}`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    cwd: packageRoot,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout };
}

const entriesOf = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function run(ending: string, lines = 50): { status: number | null; entries: Record<string, unknown>[] } {
  const r = withLogger(
    `for (let i = 0; i < ${lines}; i++) log.info({ i, name: 'pod-' + i }, 'line');\nlog.debug('not at info');\n${ending}`,
  );
  return { status: r.status, entries: entriesOf(r.stdout) };
}

for (const [how, ending, status] of [
  ['when the process ends by itself', '', 0],
  ['on process.exit()', 'process.exit(3);', 3],
  ['on an uncaught exception', "setTimeout(() => { throw new Error('boom'); }, 0);", 1],
  ['on a fatal line right before exit', "log.fatal('last words'); process.exit(1);", 1],
] as const) {
  t.test(`every line is written ${how}`, async (t) => {
    const r = run(ending);
    t.equal(r.status, status);
    const lines = r.entries.filter((e) => e.msg === 'line');
    t.strictSame(
      lines.map((e) => e.i),
      Array.from({ length: 50 }, (_, i) => i),
      'all 50 lines, in order',
    );
    t.notOk(
      r.entries.some((e) => e.msg === 'not at info'),
      'debug is off at info',
    );
    if (ending.includes('fatal')) t.equal(r.entries.at(-1)?.msg, 'last words');
  });
}

t.test('a line is one JSON object with its own name, no logger name, pid or hostname', async (t) => {
  const r = run('', 1);
  t.equal(r.entries.length, 1);
  t.match(r.entries[0], { level: 30, time: /^\d{4}-\d\d-\d\dT/, name: 'pod-0', msg: 'line' });
  t.notOk('pid' in (r.entries[0] ?? {}) || 'hostname' in (r.entries[0] ?? {}));
});

t.test('lines beyond one batch are all written, each whole', async (t) => {
  const r = run('', 2000);
  t.equal(r.entries.filter((e) => e.msg === 'line').length, 2000);
});

t.test('lines of any size and script are written whole and in order', async (t) => {
  // Batches are counted in UTF-16 units and written as UTF-8: lines of 3-byte characters near a
  // batch's size (LOG_BATCH units; 'ü🚀' is 3), and lines longer than a batch, too.
  const near = Math.round(LOG_BATCH / 3.3);
  const longer = Math.round(LOG_BATCH * 1.03);
  const text = (i: number) =>
    i % 50 === 7 ? 'ü🚀'.repeat(near + i) : i % 50 === 9 ? '✓'.repeat(longer + i) : 'naïve ✓ ' + i;
  const r = withLogger(
    `const near = ${near}, longer = ${longer};\nconst text = ${text.toString()};\nfor (let i = 0; i < 300; i++) log.info({ i, text: text(i) }, 'line');`,
  );
  const entries = entriesOf(r.stdout) as { i: number; text: string }[];
  t.strictSame(
    entries.map((e) => e.i),
    Array.from({ length: 300 }, (_, i) => i),
    'all 300 lines, in order',
  );
  t.ok(
    entries.every((e) => e.text === text(e.i)),
    'each line intact',
  );
});

t.test('lineWriter writes the line pino would write for the same fields', async (t) => {
  const lines: string[] = [];
  const stream = { write: (line: string) => void lines.push(line) };
  for (const options of [{ base: null }, {}, { base: { service: 'mg' }, level: 'debug' }]) {
    const logger = pino({ ...options, timestamp: () => ',"time":"T"' }, stream).child({ bound: 'b"\\' });
    for (const level of ['info', 'debug', 'warn'] as const) {
      lines.length = 0;
      logger[level]({ uid: 'ü"\n', dryRun: false, n: 1 }, 'decision');
      lineWriter(logger, 'decision')(level, '"uid":"ü\\"\\n","dryRun":false,"n":1');
      if (logger.isLevelEnabled(level)) t.equal(lines[1], lines[0], `${JSON.stringify(options)} ${level}`);
    }
  }
});

t.test('the time field is what toISOString writes, whichever second or millisecond comes next', async (t) => {
  const start = Date.UTC(2026, 10, 21, 23, 59, 58, 990);
  const instants = [
    start,
    start,
    start + 1,
    start + 9,
    start + 10,
    start + 99,
    start + 100,
    start + 1009,
    start + 1010,
    start + 2010,
    0,
    5,
    253402300799999,
    253402300800000,
    start,
  ];
  for (let i = 0; i < 3000; i += 7) instants.push(start + i);
  for (const now of instants) t.equal(timeField(now), `,"time":"${new Date(now).toISOString()}"`, String(now));
});
