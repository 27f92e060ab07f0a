#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { ConfigError } from './config/load.js';
import { packageRoot } from './paths.js';

const usage = `Usage: meshguard <command> [flags]

Keeps Istio service meshes out of their best-known traps.

Commands:
  serve    serve the admission webhook (HTTPS)
  check    run the policies on manifests, as in CI
  audit    run the policies on what a cluster already holds
  mesh     show the mesh profile in force: which Istio the guardrails follow
  certs    write a CA and a serving certificate for the webhook's Service

Flags: --help, --version. Run meshguard <command> --help for its flags.
Exit codes: 0 ok; 1 something would be denied (check, audit); 2 anything that failed.
`;

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return (await import('./commands/serve.js')).serve(rest, process.env);
    case 'check':
      return (await import('./commands/check.js')).check(rest, process.env, () => text(process.stdin));
    case 'audit':
      return (await import('./commands/audit.js')).audit(rest, process.env);
    case 'mesh':
      return (await import('./commands/mesh.js')).mesh(rest, process.env, () => text(process.stdin));
    case 'certs':
      return (await import('./commands/certs.js')).certs(rest, process.env);
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
