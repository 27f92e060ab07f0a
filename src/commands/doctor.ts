import { rootCertificates } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { connect, listKind } from '../cluster/list.js';
import { loadConfig } from '../config/load.js';
import { parseConfig } from '../config/parse.js';
import type { Config } from '../config/types.js';
import { buildProfile } from '../mesh/build.js';
import { checkInjectors, injectorGroups, urlTargets } from '../doctor/injectors.js';
import { releaseOf } from '../doctor/chart.js';
import { couldNotCheck, exitCodeOf, type Finding } from '../doctor/model.js';
import { checkOrder } from '../doctor/order.js';
import { checkProfile } from '../doctor/profile.js';
import { probeAll } from '../doctor/probe.js';
import { renderJson, renderText } from '../doctor/render.js';
import { checkRevisions } from '../doctor/revisions.js';
import { checkServing, planServing, servingGroups } from '../doctor/serving.js';
import { checkSettings } from '../doctor/settings.js';
import {
  listOrError,
  mutatingSpec,
  namespaceLabels,
  namespaceSpec,
  readConfigMap,
  readServices,
  validatingSpec,
} from '../doctor/gather.js';
import { isIstioInjector, isMeshguard, webhooksOf, type ServiceRef } from '../doctor/webhooks.js';
import { profileJson, profileText } from './mesh.js';
import {
  helpText,
  int,
  istioNamespaceFlag,
  istioNamespaceOf,
  kubeconfigFlag,
  oneOf,
  parseFlags,
  str,
  UsageError,
  type Flag,
} from './flags.js';

const flags: Flag[] = [
  kubeconfigFlag,
  istioNamespaceFlag,
  {
    name: 'config',
    type: 'string',
    arg: 'FILE',
    help: "configuration whose mesh: section declares the profile (else meshguard's ConfigMap in the cluster, else the embedded defaults)",
  },
  { name: 'output', type: 'string', arg: 'text|json', help: 'output format', default: 'text' },
  {
    name: 'min-cert-days',
    type: 'string',
    arg: 'N',
    help: "a problem when meshguard's serving certificate (or its CA) expires within N days",
    default: '30',
  },
];

export const doctorHelp = helpText(
  'meshguard doctor [flags]',
  "Checks meshguard's installation in a live cluster: its mutating webhook sorts before every Istio\n" +
    "injector's and is reinvoked; failurePolicy, sideEffects, timeoutSeconds, review versions, selectors\n" +
    '(kube-system and its own namespace left out) and rules as the chart installs them; the caBundle\n' +
    'verifies the certificate meshguard serves, which does not expire within --min-cert-days; every\n' +
    "injector webhook's Service has ready endpoints; namespaces labelled for injection name a revision\n" +
    'some webhook serves; and the mesh profile, as meshguard mesh shows it. Each problem says why it\n' +
    'matters and the fix. Reads only (get, list): the chart grants meshguard exactly this, so\n' +
    'kubectl -n NAMESPACE exec deploy/meshguard -- node /app/dist/src/cli.js doctor runs it where pod\n' +
    'addresses are reachable.\n' +
    'Exit codes: 0 healthy, 1 problems found, 2 could not check (the cluster, or a part of it).',
  flags,
);

export async function doctor(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(argv, flags, env);
  if (help) {
    process.stdout.write(doctorHelp);
    return 0;
  }
  const output = oneOf(values, 'output', ['text', 'json'] as const);
  const minDays = int(values, 'min-cert-days', 0, 3650);
  const configFile = str(values, 'config');
  const fromFile = configFile === undefined ? undefined : await loadConfig(configFile);
  const connection = await connect(str(values, 'kubeconfig'), env);
  if (!connection)
    throw new UsageError('no cluster credentials: in-cluster, --kubeconfig, KUBECONFIG or ~/.kube/config');

  // The first listing says whether there is a cluster at all: if not, nothing can be checked (exit 2).
  const mutating = webhooksOf(await listKind(connection, mutatingSpec), 'MutatingWebhookConfiguration');
  const [validatingListed, namespacesListed] = await Promise.all([
    listOrError(connection, validatingSpec),
    listOrError(connection, namespaceSpec),
  ]);
  const findings: Finding[] = [];
  const validating =
    'items' in validatingListed ? webhooksOf(validatingListed.items, 'ValidatingWebhookConfiguration') : [];
  if ('error' in validatingListed)
    findings.push(
      couldNotCheck(
        'webhook-settings',
        undefined,
        validatingListed.error,
        "meshguard's validating webhooks are among them",
      ),
    );
  const namespaces = namespaceLabels('items' in namespacesListed ? namespacesListed.items : []);
  if ('error' in namespacesListed)
    findings.push(
      couldNotCheck(
        'namespace-revisions',
        undefined,
        namespacesListed.error,
        'the labels of namespaces are what the webhooks select on',
      ),
    );

  const ours = [...mutating, ...validating].filter(isMeshguard);
  const injectors = mutating.filter(isIstioInjector);
  const refs: ServiceRef[] = [...ours, ...injectors].flatMap((w) => w.clientConfig.service ?? []);
  const reads = await readServices(connection, refs);

  // Where certificates are served: meshguard's endpoints, and the URLs injectors call.
  const plans = planServing(servingGroups(ours), reads);
  const groups = injectorGroups(injectors);
  const probes = await probeAll([
    ...plans.flatMap((p) =>
      'addresses' in p ? p.addresses.map((address) => ({ serverName: p.group.serverName, address })) : [],
    ),
    ...urlTargets(groups),
  ]);

  const { config, source } = fromFile ?? (await clusterConfig(connection, ours));
  const built = await buildProfile(config.mesh, {
    cluster: { connection, istioNamespace: istioNamespaceOf(values) },
  });
  const profile = built.mesh.current;

  const injectorTimeout = Math.max(0, ...injectors.map((w) => w.timeoutSeconds ?? 10));
  findings.push(
    ...checkOrder(mutating),
    ...checkSettings({ webhooks: ours, namespaces, injectorTimeout }),
    ...checkServing(plans, probes, {
      now: new Date(),
      minDays,
      systemRoots: rootCertificates.map((pem) => new X509Certificate(pem)),
    }),
    ...checkInjectors({ groups, reads, probes, namespaces }),
    ...('items' in namespacesListed ? checkRevisions(injectors, namespaces) : []),
    ...checkProfile(profile, source, releaseOf(ours)),
  );

  const report = {
    cluster: connection.kc.getCurrentCluster()?.server ?? '',
    credentials: connection.from,
    findings,
    profileText: profileText(profile, built.from),
    profileJson: profileJson(profile, built.from),
  };
  process.stdout.write(output === 'json' ? renderJson(report) : renderText(report));
  const code = exitCodeOf(findings);
  if (code === 2) {
    const first = findings.find((f) => f.status === 'could-not-check');
    const n = findings.filter((f) => f.status === 'could-not-check').length;
    process.stderr.write(
      `meshguard: doctor could not check ${n} thing${n === 1 ? '' : 's'} (no problem found otherwise): ${first?.object ? `${first.object}: ` : ''}${first?.what ?? ''}\n`,
    );
  }
  return code;
}

/**
 * The configuration meshguard serves with: the ConfigMap the chart names after the release, beside
 * the Service its webhooks call; else the embedded defaults. An invalid one is what serve refuses
 * too: the defaults, said.
 */
async function clusterConfig(
  connection: NonNullable<Awaited<ReturnType<typeof connect>>>,
  ours: readonly { clientConfig: { service?: ServiceRef } }[],
): Promise<{ config: Config; source: string }> {
  const service = ours.find((w) => w.clientConfig.service)?.clientConfig.service;
  const defaults = await loadConfig();
  if (!service) return { config: defaults.config, source: "embedded defaults (meshguard's webhooks call no Service)" };
  const read = await readConfigMap(connection, service.namespace, service.name);
  if ('missing' in read) return { config: defaults.config, source: `embedded defaults (${read.missing})` };
  const parsed = parseConfig(read.text);
  const where = `ConfigMap ${service.namespace}/${service.name}`;
  if (!parsed.ok)
    return { config: defaults.config, source: `embedded defaults (${where} is invalid: ${parsed.errors.join('; ')})` };
  return { config: parsed.config, source: where };
}
