import { parseArgs } from 'node:util';

/** A command-line flag; every flag can also come from MESHGUARD_<NAME> in the environment. */
export interface Flag {
  name: string;
  type: 'string' | 'boolean';
  help: string;
  default?: string;
  /** Placeholder in the help text, e.g. FILE. */
  arg?: string;
  /**
   * Its environment variable when MESHGUARD_<NAME> means something else: the chart sets
   * MESHGUARD_NAMESPACE in the pod for serve, and check's or certs' --namespace must not read it.
   */
  env?: string;
}

/** Bad usage or input: the CLI prints the message and exits 2. */
export class UsageError extends Error {}

export const envName = (flag: Pick<Flag, 'name' | 'env'>) =>
  flag.env ?? `MESHGUARD_${flag.name.toUpperCase().replaceAll('-', '_')}`;

export function helpText(usage: string, summary: string, flags: readonly Flag[]): string {
  const rows = flags.map((f) => {
    const left = `  --${f.name}${f.type === 'string' ? ` ${f.arg ?? 'VALUE'}` : ''}`;
    const extra = [`env ${envName(f)}`, f.default !== undefined ? `default ${f.default}` : '']
      .filter(Boolean)
      .join(', ');
    return `${left.padEnd(28)} ${f.help} (${extra})`;
  });
  return `Usage: ${usage}\n\n${summary}\n\nFlags:\n${rows.join('\n')}\n  --help                       show this help\n`;
}

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  help: boolean;
}

/** Flags beat the environment, which beats the defaults. */
export function parseFlags(
  argv: string[],
  flags: readonly Flag[],
  env: NodeJS.ProcessEnv,
  allowPositionals = false,
): Parsed {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals,
      strict: true,
      options: { help: { type: 'boolean' }, ...Object.fromEntries(flags.map((f) => [f.name, { type: f.type }])) },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values: Parsed['values'] = {};
  for (const f of flags) {
    const given = (parsed.values as Record<string, string | boolean | undefined>)[f.name];
    const fromEnv = env[envName(f)];
    if (given !== undefined) values[f.name] = given as string | boolean;
    else if (fromEnv !== undefined && fromEnv !== '')
      values[f.name] = f.type === 'boolean' ? fromEnv === 'true' : fromEnv;
    else values[f.name] = f.default;
  }
  return { values, positionals: parsed.positionals, help: parsed.values.help === true };
}

/** The credentials of the commands that read a live cluster (audit, doctor). */
export const kubeconfigFlag: Flag = {
  name: 'kubeconfig',
  type: 'string',
  arg: 'FILE',
  help: 'kubeconfig (else in-cluster, KUBECONFIG, ~/.kube/config)',
};

/** The flag of every command that reads Istio's objects in a cluster. */
export const istioNamespaceFlag: Flag = {
  name: 'istio-namespace',
  type: 'string',
  arg: 'NS',
  help: 'where istiod and its ConfigMaps live, read for the mesh profile',
  default: 'istio-system',
};

export const istioNamespaceOf = (values: Parsed['values']): string => str(values, 'istio-namespace') ?? 'istio-system';

export function str(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function int(values: Parsed['values'], name: string, min: number, max: number): number {
  const raw = str(values, name);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

export function oneOf<T extends string>(values: Parsed['values'], name: string, allowed: readonly T[]): T {
  const raw = str(values, name);
  if (!allowed.includes(raw as T))
    throw new UsageError(`--${name}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}
