#!/usr/bin/env node
import { text } from 'node:stream/consumers';
import { ConfigError } from './config/load.js';
import { InputError } from './manifests.js';
import { UsageError } from './commands/flags.js';

const usage = `Usage: meshguard <command> [flags]

Keeps Istio service meshes out of their best-known traps.

Commands:
  serve    serve the admission webhook (HTTPS)
  check    run the policies on manifests, as in CI
  audit    run the policies on what a cluster already holds
  mesh     show the mesh profile in force: which Istio the guardrails follow
  certs    write a CA and a serving certificate for the webhook's Service

Run meshguard <command> --help for its flags.
`;

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
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n\n${usage}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof InputError) {
      process.stderr.write(`meshguard: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`meshguard: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
