// What the load and instruction benchmarks send, to which server, and how each answer is checked.
import jsonpatch from 'fast-json-patch';
import type { AdmissionReviewResponse, KubeObject } from '../src/admission/types.js';
import { REVIEWS, review, reviewText } from './common.js';

export type TargetName = 'bare' | 'mutate' | 'validate' | 'mutate-quiet' | 'mutate-live';
/**
 * bare: fastify alone; meshguard(-quiet): bench/server.ts with the in-memory cluster view (info,
 * warn); meshguard-live: `meshguard serve` itself with cluster lookups on against a real API server
 * (bench/stack.ts), its view filled by the watches as deployed.
 */
export type ServerKind = 'bare' | 'meshguard' | 'meshguard-quiet' | 'meshguard-live';

export const LABELS: Record<TargetName, string> = {
  bare: 'bare fastify (limit)',
  mutate: 'meshguard /mutate (pod)',
  validate: 'meshguard /validate (DR)',
  'mutate-quiet': 'meshguard /mutate, no decision logs',
  'mutate-live': 'meshguard serve /mutate, live view',
};

/** Targets that need the e2e control plane (bench/stack.ts). */
export const LIVE_TARGETS: readonly TargetName[] = ['mutate-live'];

export interface Target {
  name: TargetName;
  label: string;
  server: ServerKind;
  path: string;
  body: string;
  /** Checks the one verified answer; returns a problem or null. */
  verify(answer: AdmissionReviewResponse): string | null;
}

export function targets(): Target[] {
  const pod = review(REVIEWS.pod);
  const dr = review(REVIEWS.destinationRule);
  const mutate = (name: TargetName, server: ServerKind): Target => ({
    name,
    label: LABELS[name],
    server,
    path: '/mutate',
    body: reviewText(REVIEWS.pod),
    verify(a) {
      if (a.response.uid !== pod.request.uid || a.response.allowed !== true || a.response.patchType !== 'JSONPatch')
        return 'expected an allowed JSONPatch answer echoing the uid';
      const ops = JSON.parse(Buffer.from(a.response.patch ?? '', 'base64').toString()) as jsonpatch.Operation[];
      const patched = jsonpatch.applyPatch(
        structuredClone(pod.request.object as KubeObject),
        ops,
        true,
        false,
      ).newDocument;
      const want = {
        'proxy.istio.io/config': 'terminationDrainDuration: 20s\nholdApplicationUntilProxyStarts: true\n',
        'traffic.sidecar.istio.io/excludeInboundPorts': '8087',
      };
      return JSON.stringify(patched.metadata?.annotations) === JSON.stringify(want)
        ? null
        : `unexpected patch result ${JSON.stringify(patched.metadata?.annotations)}`;
    },
  });
  return [
    {
      name: 'bare',
      label: LABELS.bare,
      server: 'bare',
      path: '/mutate',
      body: reviewText(REVIEWS.pod),
      verify: (a) =>
        a.response.uid === pod.request.uid && a.response.allowed === true
          ? null
          : 'expected an allowed answer echoing the uid',
    },
    mutate('mutate', 'meshguard'),
    {
      name: 'validate',
      label: LABELS.validate,
      server: 'meshguard',
      path: '/validate',
      body: reviewText(REVIEWS.destinationRule),
      verify: (a) =>
        a.response.uid === dr.request.uid &&
        a.response.allowed === false &&
        a.response.status?.code === 403 &&
        /destinationrule-placement/.test(a.response.status.message)
          ? null
          : 'expected a 403 denial by destinationrule-placement echoing the uid',
    },
    mutate('mutate-quiet', 'meshguard-quiet'),
    mutate('mutate-live', 'meshguard-live'),
  ];
}
