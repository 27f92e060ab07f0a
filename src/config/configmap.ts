import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Reflector } from '../cluster/reflector.js';
import type { ConfigStore } from './store.js';

export const CONFIG_KEY = 'config.yaml';

interface ConfigMapLike {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

/**
 * Watches one ConfigMap. While it exists, its `config.yaml` replaces the base configuration;
 * when it is deleted, the base comes back. An invalid edit is refused by the store (the last good
 * configuration stays) and recorded as a Warning Event on the ConfigMap, reason InvalidConfig.
 */
export function watchConfigMap(
  kc: KubeConfig,
  namespace: string,
  name: string,
  store: ConfigStore,
  logger: Logger,
): Reflector {
  const source = `configmap ${namespace}/${name}`;
  const events = kc.makeApiClient(CoreV1Api);
  let applied: string | null | undefined; // the text in force from this ConfigMap; re-lists repeat it
  let refused: string | undefined; // resourceVersion already reported, so a re-list adds no Event

  const recordEvent = (cm: ConfigMapLike, errors: string[]) => {
    const version = cm.metadata?.resourceVersion;
    if (version !== undefined && version === refused) return;
    refused = version;
    const now = new Date();
    const message = `invalid ${CONFIG_KEY}, the last good configuration stays in force: ${errors.join('; ')}`.slice(
      0,
      1024,
    );
    events
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.` },
          involvedObject: {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            namespace,
            name,
            uid: cm.metadata?.uid,
            resourceVersion: version,
          },
          reason: 'InvalidConfig',
          message,
          type: 'Warning',
          source: { component: 'meshguard' },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((err: unknown) =>
        logger.warn({ err: (err as Error).message, configMap: source }, 'could not record the InvalidConfig event'),
      );
  };

  const apply = (obj: unknown) => {
    const cm = obj as ConfigMapLike;
    const text = cm.data?.[CONFIG_KEY];
    if (text === undefined) {
      recordEvent(cm, store.refuse(source, [`${CONFIG_KEY}: missing from the ConfigMap`]));
      return;
    }
    if (text === applied) return;
    const errors = store.setOverlay(text, source);
    if (errors.length > 0) recordEvent(cm, errors);
    else applied = text;
  };
  const gone = () => {
    if (applied === null) return;
    applied = null;
    store.setOverlay(null, source);
    logger.info({ configMap: source }, 'configuration ConfigMap gone: back to the base configuration');
  };

  return new Reflector(
    kc,
    {
      name: `configmap ${namespace}/${name}`,
      kind: 'ConfigMap',
      apiVersions: ['v1'],
      namespace,
      fieldSelector: `metadata.name=${name}`,
      path: () => `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
    },
    {
      keep: (o) => o,
      reset: (objects) => (objects[0] ? apply(objects[0]) : gone()),
      upsert: apply,
      remove: gone,
    },
    logger,
  ).start();
}
