// AdmissionReview admission.k8s.io/v1 (v1beta1 has the same shape for what we use).
// Objects stay `unknown`-ish records: policies narrow what they read.
import type { PatchOp } from './patch.js';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** A Kubernetes object as received: only metadata is given a shape. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: unknown;
  [key: string]: unknown;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
  controller?: boolean;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo?: unknown;
  object?: KubeObject | null;
  oldObject?: KubeObject | null;
  dryRun?: boolean;
  options?: unknown;
}

export type ReviewVersion = 'admission.k8s.io/v1' | 'admission.k8s.io/v1beta1';

export interface AdmissionReview {
  apiVersion: ReviewVersion;
  kind: 'AdmissionReview';
  request: AdmissionRequest;
}

/** What meshguard decided on one request: the answer before it is written for the API server. */
export interface Verdict {
  allowed: boolean;
  /** Shown to the user on denial, one line per failing policy. */
  denials: string[];
  warnings: string[];
  patch: PatchOp[];
}

/** Base64 text, made by encoding bytes (respond.ts): nothing in it needs escaping in JSON. */
export type Base64 = string & { readonly encoding: 'base64' };

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  /** An HTTP status code (an integer) and its message. */
  status?: { code: number; message: string };
  warnings?: string[];
  /** The JSON Patch's JSON text, base64. */
  patch?: Base64;
  patchType?: 'JSONPatch';
}

export interface AdmissionReviewResponse {
  apiVersion: ReviewVersion;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}
