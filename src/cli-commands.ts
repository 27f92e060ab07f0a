import { text } from 'node:stream/consumers';

// The commands, in the order `meshguard --help` lists them. One table for the dispatch, the usage
// text and the README's command reference (npm run generate; test/readme-help.test.ts): a command
// added here is in all three. Each module is loaded only when its command runs.

export interface Command {
  name: string;
  /** One line in `meshguard --help`. */
  summary: string;
  run(argv: string[], env: NodeJS.ProcessEnv): Promise<number>;
}

const stdin = () => text(process.stdin);

export const commands: readonly Command[] = [
  {
    name: 'serve',
    summary: 'serve the admission webhook (HTTPS)',
    run: async (argv, env) => (await import('./commands/serve.js')).serve(argv, env),
  },
  {
    name: 'check',
    summary: 'run the policies on manifests, as in CI',
    run: async (argv, env) => (await import('./commands/check.js')).check(argv, env, stdin),
  },
  {
    name: 'audit',
    summary: 'run the policies on what a cluster already holds',
    run: async (argv, env) => (await import('./commands/audit.js')).audit(argv, env),
  },
  {
    name: 'mesh',
    summary: 'show the mesh profile in force: which Istio the guardrails follow',
    run: async (argv, env) => (await import('./commands/mesh.js')).mesh(argv, env, stdin),
  },
  {
    name: 'doctor',
    summary: "check meshguard's installation in a cluster: webhooks, certificate, Istio's injectors",
    run: async (argv, env) => (await import('./commands/doctor.js')).doctor(argv, env),
  },
  {
    name: 'certs',
    summary: "write a CA and a serving certificate for the webhook's Service",
    run: async (argv, env) => (await import('./commands/certs.js')).certs(argv, env),
  },
];

export const usage = `Usage: meshguard <command> [flags]

Keeps Istio service meshes out of their best-known traps.

Commands:
${commands.map((c) => `  ${c.name.padEnd(8)} ${c.summary}`).join('\n')}

Flags: --help, --version. Run meshguard <command> --help for its flags.
Exit codes: 0 ok; 1 something would be denied (check, audit), or problems found (doctor); 2 anything that failed.
`;
