#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commands, usage } from './cli-commands.js';
import { ConfigError } from './config/load.js';
import { packageRoot } from './paths.js';

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const found = commands.find((c) => c.name === command);
  if (found) return found.run(rest, process.env);
  switch (command) {
    case '--version':
    case 'version':
      process.stdout.write(`meshguard ${version()}\n`);
      return 0;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`meshguard: unknown command ${JSON.stringify(command)}\n\n${usage}`);
      return 2;
  }
}

/** The stack of an unexpected error only at debug level (MESHGUARD_LOG_LEVEL or --log-level). */
const debug = (argv: readonly string[]) => {
  const i = argv.findIndex((a) => a === '--log-level' || a.startsWith('--log-level='));
  const level = i < 0 ? process.env.MESHGUARD_LOG_LEVEL : (argv[i]?.split('=')[1] ?? argv[i + 1]);
  return level === 'debug' || level === 'trace';
};

/**
 * Every failure is exit 2 with one line: the message of the errors meshguard raises on purpose
 * (usage, input, configuration, cluster), and the first line of anything else.
 */
function fail(err: unknown): void {
  // A configuration error names every field that is wrong, on the one line.
  const message =
    err instanceof ConfigError
      ? `invalid configuration in ${err.source}: ${err.errors.join('; ')}`
      : err instanceof Error
        ? err.message
        : String(err);
  const text = message.split('\n')[0] ?? '';
  process.stderr.write(`meshguard: ${text}\n`);
  if (debug(process.argv) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 2;
}

// Errors raised later by something left running (a server's socket, a watch) end the process too.
process.on('uncaughtException', (err) => {
  fail(err);
  process.exit(2);
});
process.on('unhandledRejection', (err) => {
  fail(err);
  process.exit(2);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, fail);
