import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateCa, generateServing } from '../tls/generate.js';
import { helpText, int, parseFlags, str, UsageError, type Flag } from './flags.js';

const flags: Flag[] = [
  { name: 'service', type: 'string', arg: 'NAME', help: "the webhook's Service name" },
  { name: 'namespace', type: 'string', arg: 'NS', help: 'its namespace', env: 'MESHGUARD_CERTS_NAMESPACE' },
  { name: 'out', type: 'string', arg: 'DIR', help: 'where to write ca.crt, ca.key, tls.crt and tls.key (required)' },
  { name: 'force', type: 'boolean', help: 'replace keys and certificates already in DIR' },
  {
    name: 'days',
    type: 'string',
    arg: 'N',
    help: 'validity of the serving certificate (the CA gets ten times as long)',
    default: '365',
  },
];

export const certsHelp = helpText(
  'meshguard certs --service NAME --namespace NS --out DIR [flags]',
  'Writes a CA and a serving certificate for NAME.NS.svc (and NAME.NS.svc.cluster.local), for clusters\n' +
    'without cert-manager, and prints the caBundle (base64 of ca.crt) for the webhook configurations.',
  flags,
);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export async function certs(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(argv, flags, env);
  if (help) {
    process.stdout.write(certsHelp);
    return 0;
  }
  const service = str(values, 'service');
  const namespace = str(values, 'namespace');
  if (!service || !DNS_LABEL.test(service))
    throw new UsageError('--service: a DNS label (lowercase letters, digits, -) is required');
  if (!namespace || !DNS_LABEL.test(namespace))
    throw new UsageError('--namespace: a DNS label (lowercase letters, digits, -) is required');
  const days = int(values, 'days', 1, 3650);
  const out = str(values, 'out');
  if (!out) throw new UsageError('--out DIR is required: where the keys go (keep them out of your repository)');
  const files = ['ca.key', 'ca.crt', 'tls.key', 'tls.crt'];
  const force = values.force === true;
  // A new CA breaks every webhook configuration whose caBundle holds the old one.
  const present = files.filter((f) => existsSync(join(out, f)));
  if (present.length > 0 && !force)
    throw new UsageError(
      `${join(out, present[0] ?? '')} exists; --force replaces it (a new CA no longer matches an installed caBundle)`,
    );
  const ca = await generateCa(`meshguard CA for ${service}.${namespace}`, days * 10);
  const names = [
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
    `${service}.${namespace}`,
    service,
  ];
  const serving = await generateServing(ca, names, days);
  await mkdir(out, { recursive: true, mode: 0o700 });
  // wx: a file that appeared meanwhile is not replaced either.
  const flag = force ? 'w' : 'wx';
  await writeFile(join(out, 'ca.key'), ca.key, { mode: 0o600, flag });
  await writeFile(join(out, 'ca.crt'), ca.cert, { flag });
  await writeFile(join(out, 'tls.key'), serving.key, { mode: 0o600, flag });
  await writeFile(join(out, 'tls.crt'), serving.cert, { flag });
  process.stderr.write(
    `wrote ca.crt, ca.key, tls.crt, tls.key to ${out} for ${names.slice(0, 2).join(', ')}; caBundle:\n`,
  );
  process.stdout.write(Buffer.from(ca.cert).toString('base64') + '\n');
  return 0;
}
