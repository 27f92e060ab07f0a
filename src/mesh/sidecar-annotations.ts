// The pod annotations Istio's injector reads, and how it judges their values: the table of
// pkg/kube/inject/validate.go (AnnotationValidation, run by inject.go RunTemplate before any
// template: one invalid value and the injector refuses the pod), by release. Istio source cited
// is istio/istio at 86c9f01f (master, 2026-08) and its release tags; the names are istio/api's
// annotation/annotations.yaml of every release from 1.11, plus those Istio reads without listing
// them there. Everything here is built once, at module load.

import { parseBool } from './go-parse.js';
import { goTrimSpace, hasControl, parseUint } from './go-text.js';
import { parsePrefix } from './netip.js';
import { compareQuantities, parseQuantity, type Quantity } from './quantity.js';
import type { InjectorFeatures } from './releases.js';

/**
 * What the injector makes of one value: `refused` (it refuses the pod), or `uncertain` (Istio
 * releases or their Go versions disagree, so meshguard cannot tell from the Istio version).
 */
export interface ValueProblem {
  readonly kind: 'refused' | 'uncertain';
  readonly why: string;
}

type Check = (value: string, features: InjectorFeatures) => ValueProblem | undefined;

const refused = (why: string): ValueProblem => ({ kind: 'refused', why });
const uncertain = (why: string): ValueProblem => ({ kind: 'uncertain', why });
const quote = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 39)}…` : s);

/** validate.go parsePort: strconv.ParseUint(strings.TrimSpace(v), 10, 16). Port 0 passes. */
function portProblem(entry: string): string | undefined {
  const port = goTrimSpace(entry);
  if (parseUint(port, 16) !== undefined) return undefined;
  if (port === '') return 'an empty entry';
  if (port === '*') return `${quote(entry)} is not a port (only includeInboundPorts takes "*", alone)`;
  return `${quote(entry)} is not a port number (0-65535)`;
}

/** validate.go parsePorts: the whole list trimmed, then split at commas, each entry trimmed. */
const portList: Check = (value) => {
  const list = goTrimSpace(value);
  if (list === '') return undefined;
  for (const entry of list.split(',')) {
    const why = portProblem(entry);
    if (why) return refused(why);
  }
  return undefined;
};

/** The ports of a list as validate.go parsePorts reads them; undefined when the injector refuses it. */
export function parsePorts(value: string): number[] | undefined {
  const list = goTrimSpace(value);
  if (list === '') return [];
  const ports: number[] = [];
  for (const entry of list.split(',')) {
    const port = parseUint(goTrimSpace(entry), 16);
    if (port === undefined) return undefined;
    ports.push(port);
  }
  return ports;
}

/**
 * validate.go validateCIDRList: split at commas, nothing trimmed, each entry netip.ParsePrefix
 * (net.ParseCIDR before 1.16). So "10.0.0.0/8, 172.16.0.0/12" is refused for its space.
 */
const cidrList: Check = (value, features) => {
  if (value === '') return undefined;
  let varies: ValueProblem | undefined;
  for (const entry of value.split(',')) {
    const reading = parsePrefix(entry, features.netipPrefixes);
    if (reading.kind === 'ok') continue;
    const spaced =
      entry !== goTrimSpace(entry) && parsePrefix(goTrimSpace(entry), features.netipPrefixes).kind === 'ok';
    const why =
      entry === ''
        ? 'an empty entry'
        : spaced
          ? `${quote(entry)} has spaces: Istio does not trim CIDR lists (write them without spaces)`
          : `${quote(entry)} is not a CIDR (${reading.why})`;
    if (reading.kind === 'invalid') return refused(why);
    varies ??= uncertain(`${why}: Istio releases read this differently (the Go version they are built with)`);
  }
  return varies;
};

const orAll =
  (check: Check): Check =>
  (value, features) =>
    value === '*' ? undefined : check(value, features);

/** validate.go validateUInt32: strconv.ParseUint(v, 10, 32), not trimmed. */
const uint32: Check = (value) =>
  parseUint(value, 32) === undefined ? refused(`${quote(value)} is not a whole number (0-4294967295)`) : undefined;

/** validate.go validateBool: strconv.ParseBool. */
const goBool: Check = (value) =>
  parseBool(value) === undefined ? refused(`${quote(value)} is not true or false as Go reads them`) : undefined;

/** validate.go validateInterceptionMode: REDIRECT, TPROXY (ProxyConfig's enum names) or NONE, exactly. */
const interceptionMode: Check = (value) =>
  ['REDIRECT', 'TPROXY', 'NONE'].includes(value)
    ? undefined
    : refused(`${quote(value)} is not REDIRECT, TPROXY or NONE`);

/** validate.go validateStatusPort: one port, as parsePort reads it. */
const statusPort: Check = (value) => {
  const why = portProblem(value);
  return why ? refused(why) : undefined;
};

const INTERFACE = /^[a-zA-Z][a-zA-Z0-9_.-]*$/;

/** pkg/util/net/ip.go ValidateInterfaceNames: commas, each entry trimmed, a Linux name of up to 15 bytes. */
function interfaceProblem(value: string): string | undefined {
  if (value === '') return undefined;
  for (const raw of value.split(',')) {
    const name = goTrimSpace(raw);
    if (name === '') return 'an empty entry';
    // Go counts bytes; a name of more than 15 UTF-16 units has more than 15 bytes too, and one
    // with a non-ASCII character fails the pattern either way.
    if (name.length > 15) return `interface name ${quote(name)} is longer than 15 characters`;
    if (!INTERFACE.test(name)) return `${quote(name)} is not an interface name (a letter, then letters, digits, _ . -)`;
  }
  return undefined;
}

/**
 * Validated from 1.30 (validate.go ValidateExcludeInterfaces). Before, the value went unchecked
 * into istio-init's arguments: the pod is admitted, but the value is no interface list.
 */
const interfaces: Check = (value, features) => {
  const why = interfaceProblem(value);
  if (!why) return undefined;
  return features.interfaceNameValidation
    ? refused(why)
    : uncertain(`${why}: this Istio passes it to istio-init unchecked, Istio 1.30 refuses the pod`);
};

/** The value as the injection template leaves it for the API server, for a valid quantity. */
export function quantityOf(value: string, features: InjectorFeatures): Quantity | undefined {
  // From 1.29 the value is checked as written; before, the rendered pod's JSON decoding read it
  // with strings.TrimSpace (resource.Quantity UnmarshalJSON).
  return parseQuantity(features.proxyResourceValidation ? value : goTrimSpace(value));
}

/**
 * validate.go validateResourceQuantity (from 1.29, and 1.27.6 / 1.28.4): no control characters,
 * then resource.ParseQuantity. Before, the template wrote the value unquoted into the pod
 * (`cpu: "{{ value }}"`), whose decoding refused what is no quantity — the pod was refused all the
 * same — unless a quote, backslash or control character changed the YAML: then anything goes.
 */
const quantity: Check = (value, features) => {
  if (features.proxyResourceValidation) {
    if (hasControl(value)) return refused(`${quote(value)} has control characters`);
    if (parseQuantity(value)) return undefined;
    return refused(
      parseQuantity(goTrimSpace(value))
        ? `${quote(value)} has spaces around it (Istio reads quantities as written)`
        : `${quote(value)} is not a Kubernetes quantity (e.g. 100m, 128Mi)`,
    );
  }
  if (hasControl(value) || /["\\]/.test(value)) {
    return uncertain(
      `${quote(value)} has quotes, backslashes or control characters, which this Istio writes into the pod unchecked (Istio 1.29, 1.28.4 and 1.27.6 refuse the pod)`,
    );
  }
  if (!quantityOf(value, features)) return refused(`${quote(value)} is not a Kubernetes quantity (e.g. 100m, 128Mi)`);
  if (!parseQuantity(value))
    return uncertain(`${quote(value)} has spaces around it: Istio 1.29, 1.28.4 and 1.27.6 refuse the pod`);
  return undefined;
};

/** Until 1.25 (istio/istio#53830), validate.go checked sidecar.istio.io/enableCoreDump as a Go boolean. */
const coreDump: Check = (value, features) => (features.coreDumpAnnotationDropped ? undefined : goBool(value, features));

export const PROXY_CPU = 'sidecar.istio.io/proxyCPU';
export const PROXY_CPU_LIMIT = 'sidecar.istio.io/proxyCPULimit';
export const PROXY_MEMORY = 'sidecar.istio.io/proxyMemory';
export const PROXY_MEMORY_LIMIT = 'sidecar.istio.io/proxyMemoryLimit';
export const EXCLUDE_INBOUND_PORTS = 'traffic.sidecar.istio.io/excludeInboundPorts';

/**
 * validate.go AnnotationValidation, every release from 1.11 (rows of the release table decide
 * what a release checks). proxy.istio.io/config is validated too (the ProxyConfig's proto types,
 * then pkg/config/validation/agent ValidateMeshConfigProxyConfig): not modelled, so not judged.
 */
const checks: ReadonlyMap<string, Check> = new Map<string, Check>([
  ['sidecar.istio.io/interceptionMode', interceptionMode],
  ['status.sidecar.istio.io/port', statusPort],
  ['readiness.status.sidecar.istio.io/initialDelaySeconds', uint32],
  ['readiness.status.sidecar.istio.io/periodSeconds', uint32],
  ['readiness.status.sidecar.istio.io/failureThreshold', uint32],
  ['traffic.sidecar.istio.io/includeOutboundIPRanges', orAll(cidrList)],
  ['traffic.sidecar.istio.io/excludeOutboundIPRanges', cidrList],
  ['traffic.sidecar.istio.io/includeInboundPorts', orAll(portList)],
  [EXCLUDE_INBOUND_PORTS, portList],
  ['traffic.sidecar.istio.io/excludeOutboundPorts', portList],
  ['traffic.sidecar.istio.io/excludeInterfaces', interfaces],
  ['traffic.sidecar.istio.io/kubevirtInterfaces', interfaces],
  ['istio.io/reroute-virtual-interfaces', interfaces],
  ['prometheus.istio.io/merge-metrics', goBool],
  ['sidecar.istio.io/enableCoreDump', coreDump],
  [PROXY_CPU, quantity],
  [PROXY_MEMORY, quantity],
  [PROXY_CPU_LIMIT, quantity],
  [PROXY_MEMORY_LIMIT, quantity],
]);

/** How the injector judges this annotation's value on a release, or undefined when it does not. */
export function checkOf(name: string): Check | undefined {
  return checks.get(name);
}

/**
 * Every name under Istio's sidecar prefixes that some release from 1.11 reads: istio/api's
 * annotation list of each release (deprecated ones included), and the names Istio's own code reads
 * without listing them (the injection template's sidecar.istio.io/capNetBindService).
 */
const KNOWN = [
  'readiness.status.sidecar.istio.io/applicationPorts',
  'readiness.status.sidecar.istio.io/failureThreshold',
  'readiness.status.sidecar.istio.io/initialDelaySeconds',
  'readiness.status.sidecar.istio.io/periodSeconds',
  'sidecar.istio.io/agentLogLevel',
  'sidecar.istio.io/bootstrapOverride',
  'sidecar.istio.io/capNetBindService',
  'sidecar.istio.io/componentLogLevel',
  'sidecar.istio.io/controlPlaneAuthPolicy',
  'sidecar.istio.io/discoveryAddress',
  'sidecar.istio.io/enableCoreDump',
  'sidecar.istio.io/extraStatTags',
  'sidecar.istio.io/inject',
  'sidecar.istio.io/interceptionMode',
  'sidecar.istio.io/logLevel',
  'sidecar.istio.io/nativeSidecar',
  PROXY_CPU,
  PROXY_CPU_LIMIT,
  'sidecar.istio.io/proxyImage',
  'sidecar.istio.io/proxyImageType',
  PROXY_MEMORY,
  PROXY_MEMORY_LIMIT,
  'sidecar.istio.io/rewriteAppHTTPProbers',
  'sidecar.istio.io/statsCompression',
  'sidecar.istio.io/statsEvictionInterval',
  'sidecar.istio.io/statsFlushInterval',
  'sidecar.istio.io/statsHistogramBins',
  'sidecar.istio.io/statsHistogramBuckets',
  'sidecar.istio.io/statsInclusionPrefixes',
  'sidecar.istio.io/statsInclusionRegexps',
  'sidecar.istio.io/statsInclusionSuffixes',
  'sidecar.istio.io/status',
  'sidecar.istio.io/userVolume',
  'sidecar.istio.io/userVolumeMount',
  'status.sidecar.istio.io/port',
  EXCLUDE_INBOUND_PORTS,
  'traffic.sidecar.istio.io/excludeInterfaces',
  'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  'traffic.sidecar.istio.io/excludeOutboundPorts',
  'traffic.sidecar.istio.io/includeInboundPorts',
  'traffic.sidecar.istio.io/includeOutboundIPRanges',
  'traffic.sidecar.istio.io/includeOutboundPorts',
  'traffic.sidecar.istio.io/kubevirtInterfaces',
] as const;

const known: ReadonlySet<string> = new Set(KNOWN);

/** The prefixes of Istio's sidecar annotations: sidecar., traffic.sidecar., status.sidecar., readiness.status.sidecar.istio.io. */
const prefixes: ReadonlySet<string> = new Set(KNOWN.map((n) => n.slice(0, n.indexOf('/'))));

/** Whether the name is under one of Istio's sidecar prefixes. */
export function isSidecarAnnotation(name: string): boolean {
  const slash = name.indexOf('/');
  return slash > 0 && prefixes.has(name.slice(0, slash));
}

interface Candidate {
  name: string;
  prefix: string;
  lower: string;
  /** camelCase words, lower-cased. */
  words: readonly string[];
  sorted: string;
}

/** camelCase words, lower-cased: proxyLimitCPU is proxy, limit, cpu. */
const wordsOf = (local: string) =>
  (local.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g) ?? []).map((w) => w.toLowerCase());

const split = (name: string) => {
  const slash = name.indexOf('/');
  return { prefix: name.slice(0, slash), local: name.slice(slash + 1) };
};

const candidates: readonly Candidate[] = KNOWN.map((name) => {
  const { prefix, local } = split(name);
  const words = wordsOf(local);
  return { name, prefix, lower: local.toLowerCase(), words, sorted: [...words].sort().join(' ') };
});

/**
 * Words missing from the candidate's when each word starts the candidate's word in its place:
 * proxyMemLimit abbreviates proxyMemoryLimit (0 missing), initialDelay shortens
 * initialDelaySeconds (1); undefined otherwise. A single word shortens too much to tell.
 */
function shortens(words: readonly string[], of: readonly string[]): number | undefined {
  if (words.length > of.length || (words.length < of.length && words.length < 2)) return undefined;
  return words.every((w, i) => (of[i] as string).startsWith(w)) ? of.length - words.length : undefined;
}

/** Optimal string alignment distance (Levenshtein with adjacent transpositions). */
function distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const up = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** Names longer than any real one plus this are not compared: nothing real is that close. */
const MAX_LOCAL = 64;

/**
 * The real annotation closest to an unknown one: the same name in another case, the same words in
 * another order (proxyLimitCPU → proxyCPULimit), its words abbreviated or the last ones left out
 * (proxyMemLimit, initialDelay), else the fewest edits to the name after the prefix; a wrong
 * prefix counts half an edit. undefined when nothing is within a third of the name's length.
 */
export function closestSidecarAnnotation(name: string): string | undefined {
  const { prefix, local } = split(name);
  if (local.length > MAX_LOCAL) return undefined;
  const lower = local.toLowerCase();
  const words = wordsOf(local);
  const sorted = [...words].sort().join(' ');
  let best: { name: string; score: number } | undefined;
  for (const c of candidates) {
    const missing = shortens(words, c.words);
    const edits =
      c.lower === lower
        ? 0.1
        : c.sorted === sorted
          ? 0.2
          : missing !== undefined
            ? 0.3 + missing * 0.2
            : distance(lower, c.lower);
    const score = edits + (c.prefix === prefix ? 0 : 0.5);
    if (!best || score < best.score) best = { name: c.name, score };
  }
  return best && best.score <= Math.max(2, local.length / 3) ? best.name : undefined;
}

/**
 * ProxyConfig's fields (istio/api mesh/v1alpha1/proxy.proto, JSON names): set per pod in the
 * proxy.istio.io/config annotation, not as annotations of their own — a frequent mistake
 * (sidecar.istio.io/holdApplicationUntilProxyStarts).
 */
const proxyConfigFields: ReadonlyMap<string, string> = new Map(
  [
    'configPath',
    'binaryPath',
    'serviceCluster',
    'tracingServiceName',
    'drainDuration',
    'discoveryAddress',
    'discoveryRefreshDelay',
    'zipkinAddress',
    'statsdUdpAddress',
    'envoyMetricsServiceAddress',
    'proxyAdminPort',
    'availabilityZone',
    'controlPlaneAuthPolicy',
    'customConfigFile',
    'statNameLength',
    'concurrency',
    'proxyBootstrapTemplatePath',
    'interceptionMode',
    'tracing',
    'sds',
    'envoyAccessLogService',
    'envoyMetricsService',
    'proxyMetadata',
    'runtimeValues',
    'statusPort',
    'extraStatTags',
    'gatewayTopology',
    'terminationDrainDuration',
    'meshId',
    'readinessProbe',
    'proxyStatsMatcher',
    'holdApplicationUntilProxyStarts',
    'caCertificatesPem',
    'image',
    'privateKeyProvider',
    'proxyHeaders',
    'fileFlushInterval',
    'fileFlushMinSizeKb',
    'statsCompression',
    'connectionSettings',
  ].map((f) => [f.toLowerCase(), f]),
);

/** What to say about a name under Istio's sidecar prefixes that Istio does not read. */
function unknownName(name: string): string {
  const field = proxyConfigFields.get(split(name).local.toLowerCase());
  if (field)
    return `${name} is no Istio annotation, Istio ignores it; ${field} is a ProxyConfig field: set it in proxy.istio.io/config`;
  const closest = closestSidecarAnnotation(name);
  return `${name} is no Istio annotation, Istio ignores it${closest ? `; did you mean ${closest}?` : ''}`;
}

/** What a pod's annotations mean to the injector of one release. */
export interface AnnotationFindings {
  /** Values the injector refuses: it refuses the pod. */
  readonly refused: string[];
  /** Values that make the istio-proxy it injects invalid: the API server refuses the pod. */
  readonly invalid: string[];
  /** Values some releases of this minor version, or the Go they are built with, refuse; or that pass into the pod unchecked. */
  readonly uncertain: string[];
  /** Names under Istio's sidecar prefixes that no release reads, each with the closest real one. */
  readonly unknown: string[];
}

/** Requests and limits the injection template writes from the pod's annotations. */
const resources = [
  { request: PROXY_CPU, limit: PROXY_CPU_LIMIT },
  { request: PROXY_MEMORY, limit: PROXY_MEMORY_LIMIT },
] as const;

/**
 * The injection template's "resources" (istio-discovery files/injection-template.yaml): once any
 * of the four annotations is set, they alone make istio-proxy's (and istio-init's) requests and
 * limits — the mesh's values.global.proxy.resources are not used. The API server then refuses a
 * negative quantity and a request above its limit (k8s.io/kubernetes pkg/apis/core/validation
 * ValidateResourceRequirements), and with it the pod.
 */
function resourceProblems(annotations: Readonly<Record<string, unknown>>, features: InjectorFeatures): string[] {
  const problems: string[] = [];
  const read = (name: string) => {
    const value = annotations[name];
    return typeof value === 'string' ? { value, q: quantityOf(value, features) } : undefined;
  };
  for (const pair of resources) {
    const request = read(pair.request);
    const limit = read(pair.limit);
    for (const [name, r] of [
      [pair.request, request],
      [pair.limit, limit],
    ] as const) {
      if (r?.q?.negative) problems.push(`${name}: ${quote(r.value)} is negative`);
    }
    if (request?.q && limit?.q && !request.q.negative && compareQuantities(request.q, limit.q) > 0) {
      problems.push(
        `${pair.request} ${quote(request.value)} is above ${pair.limit} ${quote(limit.value)} (a request above its limit)`,
      );
    }
  }
  return problems;
}

/** Judges a pod's annotations as the injector of a release with these features would. */
export function judgeSidecarAnnotations(
  annotations: Readonly<Record<string, unknown>>,
  features: InjectorFeatures,
): AnnotationFindings {
  const findings: AnnotationFindings = { refused: [], invalid: [], uncertain: [], unknown: [] };
  let resourcesSet = false;
  for (const name of Object.keys(annotations)) {
    const check = checks.get(name);
    const value = annotations[name];
    if (check && typeof value === 'string') {
      const problem = check(value, features);
      if (problem) findings[problem.kind].push(`${name}: ${problem.why}`);
      resourcesSet ||=
        name === PROXY_CPU || name === PROXY_CPU_LIMIT || name === PROXY_MEMORY || name === PROXY_MEMORY_LIMIT;
    } else if (!check && isSidecarAnnotation(name) && !known.has(name)) {
      findings.unknown.push(unknownName(name));
    }
  }
  if (resourcesSet) findings.invalid.push(...resourceProblems(annotations, features));
  return findings;
}
