// The README's command reference is what the CLI prints: every command's --help, a command added
// to src/cli-commands.ts included. After changing a help text or adding a command: npm run generate.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { commands, usage } from '../src/cli-commands.js';
import { packageRoot } from '../src/paths.js';
import { BEGIN, cliOutput, END, README, reference, withReference } from '../scripts/generate-readme-help.js';

// Runs the CLI once per command (a second or so each).
const generated = reference();

t.test('the README command reference is every --help as printed (else: npm run generate)', async (t) => {
  const readme = readFileSync(README, 'utf8');
  const shown = readme.slice(readme.indexOf(BEGIN), readme.indexOf(END) + END.length);
  // Compared whole, and then block by block, so a failure names the command that drifted.
  t.ok(shown === generated, 'the reference is up to date');
  for (const c of ['', ...commands.map((c) => c.name)]) {
    const head = `$ meshguard ${c ? `${c} ` : ''}--help\n`;
    const block = (text: string) => text.slice(text.indexOf(head)).split('\n```')[0];
    t.equal(block(shown), block(generated), `meshguard ${c} --help`.replace('  ', ' '));
  }
});

t.test('every command is in the usage, answers --help, and is dispatched from the one table', async (t) => {
  t.ok(commands.length >= 5, `${commands.length} commands`);
  t.equal(cliOutput(['--help']), usage);
  for (const c of commands) {
    t.ok(usage.split('\n').includes(`  ${c.name.padEnd(8)} ${c.summary}`), `${c.name} in the usage`);
    t.match(generated, `$ meshguard ${c.name} --help\nUsage: meshguard ${c.name} `, `${c.name} --help`);
  }
  // A command dispatched in cli.ts itself would escape the reference and this test.
  t.notMatch(readFileSync(join(packageRoot, 'src/cli.ts'), 'utf8'), /import\('\.\/commands\//);
});

t.test('the generator replaces the reference only, and refuses a README without one', async (t) => {
  t.equal(withReference(`a\n${BEGIN}\nold\n${END}\nb`, 'new'), 'a\nnew\nb');
  t.throws(() => withReference('no markers', 'new'), /no command reference/);
});
