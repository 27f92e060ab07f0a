import type { KubeObject } from '../admission/types.js';
import { isRecord } from '../guards.js';

// Narrow, read-only views of the parts of a Pod the policies read. The object comes from the
// network: every field is checked before use, nothing is copied.

export interface ContainerPort {
  name?: string;
  containerPort: number;
}

export type ProbeHandler = 'tcpSocket' | 'httpGet' | 'grpc' | 'exec';

export interface Probe {
  kind: 'livenessProbe' | 'readinessProbe' | 'startupProbe';
  handler: ProbeHandler;
  /** tcpSocket/httpGet: number or name; grpc: number. */
  port: number | string | undefined;
}

export interface Container {
  name: string;
  command?: unknown;
  args?: unknown;
  ports?: unknown;
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  startupProbe?: unknown;
}

export function podSpec(pod: KubeObject): Record<string, unknown> {
  return isRecord(pod.spec) ? pod.spec : {};
}

/** `spec.containers` (not initContainers), each with its index in the array. */
export function containers(pod: KubeObject): { container: Container; index: number }[] {
  const list = podSpec(pod).containers;
  if (!Array.isArray(list)) return [];
  const out: { container: Container; index: number }[] = [];
  list.forEach((c: unknown, index) => {
    if (isRecord(c) && typeof c.name === 'string') out.push({ container: c as unknown as Container, index });
  });
  return out;
}

export function containerPorts(container: Container): ContainerPort[] {
  if (!Array.isArray(container.ports)) return [];
  return container.ports.filter((p: unknown): p is ContainerPort => isRecord(p) && typeof p.containerPort === 'number');
}

const probeKinds = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;
const handlers = ['tcpSocket', 'httpGet', 'grpc', 'exec'] as const;

export function probes(container: Container): Probe[] {
  const out: Probe[] = [];
  for (const kind of probeKinds) {
    const probe = container[kind];
    if (!isRecord(probe)) continue;
    const handler = handlers.find((h) => isRecord(probe[h]));
    if (!handler) continue;
    const port = (probe[handler] as Record<string, unknown>).port;
    out.push({ kind, handler, port: typeof port === 'number' || typeof port === 'string' ? port : undefined });
  }
  return out;
}

/**
 * Whether an annotation can be set by a JSON Patch: `metadata` is a map and `annotations` a map or
 * absent. The API server always sends such a pod; anyone else who reaches the webhook may not, and
 * a patch against another shape would not apply.
 */
export function annotationsPatchable(pod: KubeObject): boolean {
  const metadata: unknown = pod.metadata;
  if (!isRecord(metadata)) return false;
  const annotations = metadata.annotations;
  return annotations == null || isRecord(annotations);
}

export function annotation(pod: KubeObject, key: string): string | undefined {
  const value = pod.metadata?.annotations?.[key];
  return typeof value === 'string' ? value : undefined;
}

export function label(pod: KubeObject, key: string): string | undefined {
  const value = pod.metadata?.labels?.[key];
  return typeof value === 'string' ? value : undefined;
}
