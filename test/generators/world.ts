// fast-check arbitraries for the pod policies: a Pod as a user (or a controller) would submit it,
// the namespace it is created in, the cluster around it and the configuration in force. Shared by
// the property tests and the HTTP fuzzer. Every Pod generated here is a valid Pod by Kubernetes'
// own schema (test/properties.test.ts checks that too); the policies must cope with all of them.
import fc from 'fast-check';
import type { KubeObject } from '../../src/admission/types.js';
import { MemoryClusterView, clusterOff } from '../../src/cluster/memory.js';
import type { ClusterView } from '../../src/cluster/view.js';
import { wrapContainer } from '../../src/mesh/job-wrapper.js';

const NAMESPACES = ['shop', 'batch', 'legacy', 'team-a', 'nowhere', 'kube-system'] as const;
/** Namespaces the cluster view may know; `nowhere` never is (unknown: not injected). */
const KNOWN = ['shop', 'batch', 'legacy', 'team-a', 'kube-system'] as const;
const PORTS = [80, 443, 3306, 8080, 8087, 9090, 15020, 15021] as const;
const PORT_NAMES = ['http', 'health', 'metrics', 'grpc', 'admin', 'tcp-db'] as const;
const POLICY_IDS = [
  'hold-application-until-proxy-starts',
  'probe-port-exclusion',
  'job-sidecar-quit',
  'destinationrule-placement',
  'nope',
] as const;

export const port = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...PORTS) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 65535 }) },
);
const portName = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...PORT_NAMES) },
  { weight: 1, arbitrary: fc.constantFrom('undeclared', 'h', 'a-b-c') },
);

/** Strings users put in commands, args and annotations: shell syntax, quotes, newlines, unicode. */
export const userString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '$(touch /tmp/x)',
      '`id`',
      'a; rm -rf /',
      "it's",
      '"q"',
      'line1\nline2',
      '*',
      '-n',
      '--',
      '$(JOB_NAME)',
      '$$(ESCAPED)',
      '~',
      '~1',
      '/a/b',
      'ü✓ 日本語',
      '\\',
      '%s',
      '#',
      '\t',
    ),
  },
);

// proxy.istio.io/config values: valid ProxyConfig YAML in every style, and what users get wrong.
const proxyConfigCorpus = [
  '',
  '  \n',
  '{}',
  'terminationDrainDuration: 20s',
  'terminationDrainDuration: 20s\n',
  '# drain slowly\nterminationDrainDuration: 20s # why not\n',
  'holdApplicationUntilProxyStarts: true',
  'holdApplicationUntilProxyStarts: false\n',
  'holdApplicationUntilProxyStarts: "yes"',
  '{terminationDrainDuration: 20s, concurrency: 2}',
  'concurrency: 2\ntracing:\n  sampling: 10\n',
  'proxyMetadata:\n  ISTIO_META_DNS_CAPTURE: "true"\n',
  'text: |+\n  kept\n\n',
  'text: >-\n  folded\n',
  'a: 1\n...\n',
  '---\na: 1\n',
  '---',
  '# only a comment',
  '%YAML 1.2\n---\na: 1\n',
  'a: &x {b: 1}\nc: *x\n',
  '__proto__: {holdApplicationUntilProxyStarts: false}',
  'constructor: {prototype: {polluted: true}}',
  '"__proto__": {"polluted": true}',
  'a: 1\na: 2\n', // duplicate key: invalid
  'a: [1, 2',
  ': no key',
  '- a\n- b\n',
  'just a string',
  '42',
  'null',
  '~',
  'true',
  '\ta: 1',
  'a:\tb',
  'key: "unterminated',
  '{a: 1}\nb: 2',
  'x: 0x10\ny: 0o17\nz: .inf\nw: -0\nv: 12345678901234567890\n',
  'k: "1_000"\nm: \'0x1f\'\n',
  '? [complex, key]\n: v\n',
  'a: 1 # trailing comment without newline',
  'a: 1\r\nb: 2\r\n',
  'ü: ✓\n',
  '<<: {a: 1}\n',
  '{a: {b: {c: {d: 1}}}}',
  // termination-drain: the drain keys in both spellings, proxyMetadata in every shape.
  'proxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"\n',
  'proxy_metadata:\n    FOO: bar\n',
  'proxyMetadata:\n',
  'proxyMetadata: # env\n  # first\n  A: "1"\nholdApplicationUntilProxyStarts: true\n',
  'proxyMetadata: {A: "1"}',
  'proxyMetadata: [a]',
  'termination_drain_duration: 9s',
] as const;

const proxyConfig = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...proxyConfigCorpus) },
  // Lines put together from the corpus: mixes styles, comments and mistakes.
  {
    weight: 2,
    arbitrary: fc
      .array(fc.constantFrom(...proxyConfigCorpus), { minLength: 2, maxLength: 3 })
      .map((parts) => parts.join('\n')),
  },
  {
    weight: 1,
    arbitrary: fc
      .dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()))
      .map((m) => JSON.stringify(m)),
  },
  { weight: 1, arbitrary: userString },
);

/** Comma-separated port lists as users write them: spaces, empty items, trailing separators. */
const portListText = fc
  .tuple(
    fc.array(fc.oneof(port.map(String), fc.constantFrom('', ' ', '8080 ', '*', 'abc')), { maxLength: 4 }),
    fc.constantFrom(',', ', ', ' ,'),
    fc.constantFrom('', ',', ', ', ' ', ',,\n'),
  )
  .map(([items, sep, tail]) => items.join(sep) + tail);

/** Annotation keys that need RFC 6901 escaping in a JSON Pointer (`/` → `~1`, `~` → `~0`). */
const oddKey = fc.oneof(
  fc.constantFrom('example.com/a~b', 'a~1b', 'x/y~0z', 'team.io/owner', 'example.com/~', 'a.b/c-d_e'),
  fc.string({ minLength: 1, maxLength: 12 }),
);

const annotations = fc
  .record(
    {
      'proxy.istio.io/config': proxyConfig,
      'traffic.sidecar.istio.io/excludeInboundPorts': portListText,
      'traffic.sidecar.istio.io/includeInboundPorts': fc.oneof(fc.constant('*'), fc.constant(' * '), portListText),
      'sidecar.istio.io/rewriteAppHTTPProbers': fc.constantFrom('true', 'false'),
      'sidecar.istio.io/inject': fc.constantFrom('true', 'false', 'yes'),
      'sidecar.istio.io/nativeSidecar': fc.constantFrom('true', 'false'),
      'status.sidecar.istio.io/port': fc.constantFrom('15021', ' 15099 ', '15021', '0', '15o20'),
      'meshguard.io/skip': fc
        .subarray([...POLICY_IDS])
        .chain((ids) => fc.constantFrom(',', ', ', ' , ').map((sep) => ids.join(sep))),
    },
    { requiredKeys: [] },
  )
  .chain((known) => fc.dictionary(oddKey, userString, { maxKeys: 3 }).map((other) => ({ ...other, ...known })));

const labels = fc.record(
  {
    app: fc.constantFrom('web', 'db', 'report'),
    tier: fc.constantFrom('front', 'back'),
    'sidecar.istio.io/inject': fc.constantFrom('true', 'false', 'maybe'),
  },
  { requiredKeys: [] },
);

const JOB = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  name: 'report-28391',
  uid: '6f0c6b5e-0000-4000-8000-000000000001',
  controller: true,
  blockOwnerDeletion: true,
};

const owner = fc.constantFrom(
  undefined,
  {
    apiVersion: 'batch/v1',
    kind: 'Job',
    name: 'report-28391',
    uid: '6f0c6b5e-0000-4000-8000-000000000001',
    controller: true,
    blockOwnerDeletion: true,
  },
  {
    apiVersion: 'batch/v1',
    kind: 'Job',
    name: 'report-28391',
    uid: '6f0c6b5e-0000-4000-8000-000000000001',
    controller: true,
    blockOwnerDeletion: true,
  },
  {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    name: 'web-5bc5489d6c',
    uid: '6f0c6b5e-0000-4000-8000-000000000002',
    controller: true,
  },
);

const probeAction = fc.oneof(
  fc.record({ tcpSocket: fc.record({ port: fc.oneof(port, portName) }) }),
  fc.record({
    httpGet: fc.record(
      { port: fc.oneof(port, portName), path: fc.constantFrom('/healthz', '/ready') },
      { requiredKeys: ['port'] },
    ),
  }),
  fc.record({ grpc: fc.record({ port, service: fc.constantFrom('', 'health') }, { requiredKeys: ['port'] }) }),
  fc.record({ exec: fc.record({ command: fc.array(userString, { maxLength: 3 }) }) }),
);
const probe = fc
  .tuple(
    probeAction,
    fc.record(
      { periodSeconds: fc.integer({ min: 1, max: 30 }), failureThreshold: fc.integer({ min: 1, max: 5 }) },
      { requiredKeys: [] },
    ),
  )
  .map(([a, b]) => ({ ...a, ...b }));

const containerPort = fc.record(
  { containerPort: port, name: portName, protocol: fc.constantFrom('TCP', 'UDP') },
  { requiredKeys: ['containerPort'] },
);

const SHELL_COMMANDS = [
  ['sh', '-c'],
  ['/bin/sh', '-c'],
  ['/bin/bash'],
  ['bash', '-lc'],
  ['env', 'sh', '-c'],
  ['/usr/bin/env', 'bash', '-c'],
  ['/bin/dash'],
] as const;
const OTHER_COMMANDS = [
  ['python3', 'report.py'],
  ['/app/server'],
  ['env', 'python3'],
  ['busybox', 'sh'],
  [''],
  ['-x'],
  ['-', 'x'],
] as const;

const command = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant([]) },
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.constantFrom(...SHELL_COMMANDS), fc.array(userString, { maxLength: 2 }))
      .map(([c, rest]) => [...c, ...rest]),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...OTHER_COMMANDS), fc.array(userString, { maxLength: 2 }))
      .map(([c, rest]) => [...c, ...rest]),
  },
  // Written by the user, already wrapped (by a meshguard with another timeout, say).
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 90 }).map((s) => wrapContainer(s, ['sh', '-c'], ['true']).command),
  },
);
const args = fc.option(fc.array(userString, { maxLength: 4 }), { nil: undefined, freq: 3 });

/** Who a container runs as: init-containers-network lets the proxy's UID or GID through. */
const securityContext = fc.record(
  { runAsUser: fc.constantFrom(0, 1000, 1337, 1500), runAsGroup: fc.constantFrom(1000, 1337) },
  { requiredKeys: [] },
);

const container = fc.record(
  {
    name: fc.constantFrom('app', 'worker', 'sidecar', 'istio-proxy', 'init-like'),
    securityContext,
    image: fc.constantFrom('nginx:1.27', 'busybox', 'gcr.io/distroless/static'),
    command,
    args,
    ports: fc.array(containerPort, { maxLength: 3 }),
    livenessProbe: probe,
    readinessProbe: probe,
    startupProbe: probe,
  },
  { requiredKeys: ['name', 'image'] },
);

/** As the object would arrive from the network: plain prototypes (fast-check makes some null). */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Drops the keys whose value is undefined: JSON has no undefined, and neither do API objects. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export const pod: fc.Arbitrary<KubeObject> = fc
  .record({
    name: fc.constantFrom('web-0', 'report-28391-abcde', 'p'),
    labels: fc.option(labels, { nil: undefined }),
    annotations: fc.option(annotations, { nil: undefined }),
    // Job pods twice as often: job-sidecar-quit wraps only a narrow case of them (classic sidecar,
    // one app container with a shell command).
    owner: fc.oneof(owner, fc.constant({ ...JOB })),
    restartPolicy: fc.constantFrom('Never', 'OnFailure'),
    /** Most Job pods have one app container, the one case job-sidecar-quit wraps. */
    oneContainer: fc.constantFrom(true, true, false),
    hostNetwork: fc.constantFrom(undefined, undefined, undefined, undefined, true, false),
    containers: fc.uniqueArray(container, { minLength: 1, maxLength: 3, selector: (c) => c.name }),
    initContainers: fc.option(fc.array(container, { maxLength: 1 }), { nil: undefined, freq: 4 }),
    /** termination-drain: both sides of Istio's 5 s drain, and Kubernetes' unset 30 s. */
    terminationGracePeriodSeconds: fc.constantFrom(undefined, undefined, 0, 5, 6, 120),
    podSecurityContext: fc.option(securityContext, { nil: undefined, freq: 4 }),
  })
  .map(
    ({
      name,
      labels,
      annotations,
      owner,
      restartPolicy,
      oneContainer,
      hostNetwork,
      containers,
      initContainers,
      terminationGracePeriodSeconds,
      podSecurityContext,
    }) =>
      plain({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: defined({ name, labels, annotations, ownerReferences: owner && [owner] }),
        spec: defined({
          hostNetwork,
          restartPolicy: owner?.kind === 'Job' ? restartPolicy : undefined,
          containers: (owner?.kind === 'Job' && oneContainer ? containers.slice(0, 1) : containers).map(defined),
          initContainers: initContainers?.map(defined),
          terminationGracePeriodSeconds,
          securityContext: podSecurityContext,
        }),
      }) as KubeObject,
  );

const namespaceLabels = fc.constantFrom<Record<string, string>>(
  { 'istio-injection': 'enabled' },
  { 'istio-injection': 'enabled' },
  { 'istio-injection': 'enabled', team: 'a' },
  { 'istio-injection': 'disabled' },
  { 'istio.io/rev': '1-24' },
  { 'istio.io/rev': '1-24' },
  { 'istio-injection': 'disabled', 'istio.io/rev': '1-24' },
  {},
);

interface ServiceSpec {
  namespace: 'pod' | 'other';
  selector: 'pod' | 'other' | 'none';
  ports: { port: number; targetPort?: number | string }[];
}

const serviceSpec: fc.Arbitrary<ServiceSpec> = fc.record({
  namespace: fc.constantFrom('pod', 'pod', 'other'),
  selector: fc.constantFrom('pod', 'pod', 'other', 'none'),
  ports: fc.array(fc.record({ port, targetPort: fc.oneof(port, portName) }, { requiredKeys: ['port'] }), {
    minLength: 1,
    maxLength: 2,
  }),
});

export interface World {
  pod: KubeObject;
  namespace: string;
  /** The objects the cluster view is built from (Namespaces and Services). */
  objects: unknown[];
  cluster: ClusterView;
  /** A partial configuration; the schema fills the rest. */
  config: Record<string, unknown>;
}

const partialConfig = fc
  .record(
    {
      mode: fc.constantFrom('enforce', 'enforce', 'warn'),
      // The mesh profile: both sides of each setting the pod policies follow.
      mesh: fc.record(
        {
          istioVersion: fc.constantFrom('1.11', '1.12', '1.13', '1.22', '1.26', '1.30'),
          nativeSidecars: fc.constantFrom('disabled', 'disabled', 'enabled', 'auto'),
          kubeletVersion: fc.constantFrom('1.28', '1.33'),
          rewriteProbes: fc.constantFrom(false, false, true),
          holdApplicationUntilProxyStarts: fc.constantFrom(false, false, false, true),
          revisions: fc.constantFrom(['default'], ['default', '1-24'], ['default', '1-24']),
          cni: fc.boolean(),
          dnsCapture: fc.constantFrom(false, false, true),
        },
        { requiredKeys: [] },
      ),
      /** A mesh-wide drain of the operator's: rare, or termination-drain would seldom act. */
      drain: fc.constantFrom<Record<string, unknown>>(
        {},
        {},
        {},
        {},
        {},
        {},
        { terminationDrainDuration: '30s' },
        { exitOnZeroActiveConnections: false },
        { proxyPreStop: true },
      ),
      policies: fc.record(
        {
          'hold-application-until-proxy-starts': fc.record({
            mode: fc.constantFrom('enforce', 'enforce', 'warn', 'off'),
          }),
          'probe-port-exclusion': fc.record(
            { mode: fc.constantFrom('enforce', 'enforce', 'warn', 'off') },
            { requiredKeys: ['mode'] },
          ),
          'termination-drain': fc.record({ mode: fc.constantFrom('enforce', 'enforce', 'warn', 'off') }),
          'init-containers-network': fc.record({ mode: fc.constantFrom('enforce', 'warn', 'warn', 'off') }),
          'job-sidecar-quit': fc.record(
            {
              mode: fc.constantFrom('enforce', 'enforce', 'warn', 'off'),
              readyTimeoutSeconds: fc.constantFrom(0, 1, 60, 3600),
              requireShellCommand: fc.boolean(),
            },
            { requiredKeys: ['mode'] },
          ),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  )
  .map(({ drain, ...config }) =>
    // The drain settings belong to `mesh:`; kept apart above only to make them rare.
    drain === undefined || Object.keys(drain).length === 0 ? config : { ...config, mesh: { ...config.mesh, ...drain } },
  );

export const world: fc.Arbitrary<World> = fc
  .record({
    pod,
    namespace: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('shop', 'batch') },
      { weight: 3, arbitrary: fc.constantFrom(...NAMESPACES) },
    ),
    namespaces: fc.dictionary(fc.constantFrom(...KNOWN), namespaceLabels, { maxKeys: 5 }),
    /** Most pods live in a namespace the view knows, so that they get injected. */
    ownNamespaceLabels: fc.option(namespaceLabels, { nil: undefined, freq: 8 }),
    services: fc.array(serviceSpec, { maxLength: 3 }),
    clusterOn: fc.constantFrom(true, true, true, true, true, false),
    /** As a live cluster's view: it holds every Service (else probe ports are never excluded). */
    servicesComplete: fc.constantFrom(true, true, true, false),
    config: partialConfig,
  })
  .map(({ pod, namespace, namespaces, ownNamespaceLabels, services, clusterOn, servicesComplete, config }) => {
    const objects: unknown[] = [];
    const nsLabels = {
      ...namespaces,
      ...(ownNamespaceLabels && namespace !== 'nowhere' && { [namespace]: ownNamespaceLabels }),
    };
    for (const [name, labels] of Object.entries(nsLabels))
      objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    const podLabels = pod.metadata?.labels ?? {};
    services.forEach((s, i) => {
      const selector =
        s.selector === 'pod' ? { ...podLabels } : s.selector === 'other' ? { app: 'elsewhere' } : undefined;
      objects.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `svc-${i}`, namespace: s.namespace === 'pod' ? namespace : 'other' },
        spec: defined({ selector, ports: s.ports.map((p) => defined({ ...p, protocol: 'TCP' })) }),
      });
    });
    const cluster = clusterOn ? MemoryClusterView.fromObjects(objects, servicesComplete) : clusterOff;
    return { pod, namespace, objects, cluster, config };
  });
