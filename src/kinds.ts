import type { KubeObject } from './admission/types.js';

// Which kinds have no namespace. Built-in ones as the API server serves them (kubectl
// api-resources --namespaced=false); custom ones from the CustomResourceDefinitions among the inputs.
const builtIn: Record<string, readonly string[]> = {
  '': ['Namespace', 'Node', 'PersistentVolume', 'ComponentStatus'],
  'admissionregistration.k8s.io': [
    'MutatingWebhookConfiguration',
    'ValidatingWebhookConfiguration',
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
    'MutatingAdmissionPolicy',
    'MutatingAdmissionPolicyBinding',
  ],
  'apiextensions.k8s.io': ['CustomResourceDefinition'],
  'apiregistration.k8s.io': ['APIService'],
  'certificates.k8s.io': ['CertificateSigningRequest', 'ClusterTrustBundle'],
  'flowcontrol.apiserver.k8s.io': ['FlowSchema', 'PriorityLevelConfiguration'],
  'networking.k8s.io': ['IngressClass', 'IPAddress', 'ServiceCIDR'],
  'node.k8s.io': ['RuntimeClass'],
  policy: ['PodSecurityPolicy'],
  'rbac.authorization.k8s.io': ['ClusterRole', 'ClusterRoleBinding'],
  'resource.k8s.io': ['DeviceClass', 'ResourceSlice'],
  'scheduling.k8s.io': ['PriorityClass'],
  'storage.k8s.io': ['CSIDriver', 'CSINode', 'StorageClass', 'VolumeAttachment', 'VolumeAttributesClass'],
};

const groupOf = (apiVersion: unknown) =>
  typeof apiVersion === 'string' && apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.lastIndexOf('/')) : '';

export class KindScopes {
  private readonly cluster = new Set(Object.entries(builtIn).flatMap(([g, kinds]) => kinds.map((k) => `${g}/${k}`)));

  /** Learns the scope of custom kinds from CustomResourceDefinitions. */
  addObjects(objects: Iterable<KubeObject>): this {
    for (const o of objects) {
      if (o.kind !== 'CustomResourceDefinition' || groupOf(o.apiVersion) !== 'apiextensions.k8s.io') continue;
      const spec = o.spec as { group?: unknown; scope?: unknown; names?: { kind?: unknown } } | undefined;
      if (spec?.scope === 'Cluster' && typeof spec.group === 'string' && typeof spec.names?.kind === 'string')
        this.cluster.add(`${spec.group}/${spec.names.kind}`);
    }
    return this;
  }

  clusterScoped(object: KubeObject): boolean {
    return this.cluster.has(`${groupOf(object.apiVersion)}/${String(object.kind)}`);
  }

  /** The namespace an object lands in: "" for cluster-scoped kinds; null when neither it nor `given` says. */
  namespaceOf(object: KubeObject, given: string | undefined): string | null {
    if (this.clusterScoped(object)) return '';
    const own = object.metadata?.namespace;
    return typeof own === 'string' && own !== '' ? own : (given ?? null);
  }
}
