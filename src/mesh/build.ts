import type { Logger } from 'pino';
import type { Connection } from '../cluster/connect.js';
import type { ClusterError } from '../cluster/list.js';
import { ConfigStore } from '../config/store.js';
import type { MeshSettings } from '../config/types.js';
import { discoverMesh } from './discover.js';
import { nothingDiscovered, type DiscoveredMesh } from './profile.js';
import { MeshStore } from './store.js';

// Where every command's mesh profile comes from (serve, audit, check, meshguard mesh): the
// configuration's `mesh:` over what Istio's own objects say — those among the manifests when they
// hold any, else the cluster's — else the newest release's defaults.

export interface ProfileSources {
  /** Manifests (check, meshguard mesh PATH…) and the paths they were read from. */
  manifests?: { objects: readonly unknown[]; paths: readonly string[] };
  /** A cluster, read once; or watched for as long as the profile lives when `watch` is its logger (serve). */
  cluster?: { connection: Connection; istioNamespace: string; watch?: Logger };
}

export interface BuiltProfile {
  /** The profile in force; `mesh.discovered` is what Istio's objects said. */
  mesh: MeshStore;
  /** Where the discovered part comes from, as meshguard mesh says it. */
  from: string;
  /** Set when the cluster was to be read and nothing at all could be. */
  unread?: ClusterError;
  /** Ends the watch, if any. */
  stop(): void;
}

const holdsIstio = (found: DiscoveredMesh) => found.webhooks.length > 0 || found.revisions.size > 0;

/** `declared` is the configuration's mesh: section, or the store whose configuration it follows (serve). */
export async function buildProfile(
  declared: MeshSettings | ConfigStore,
  { manifests, cluster }: ProfileSources,
): Promise<BuiltProfile> {
  const store = (found: DiscoveredMesh) =>
    declared instanceof ConfigStore ? MeshStore.following(declared, found) : new MeshStore(declared, found);
  const fixed = (found: DiscoveredMesh, from: string, unread?: ClusterError): BuiltProfile => ({
    mesh: store(found),
    from,
    ...(unread && { unread }),
    stop: () => undefined,
  });

  if (manifests) {
    const found = discoverMesh(manifests.objects);
    if (!cluster || holdsIstio(found)) return fixed(found, `Istio's objects in ${manifests.paths.join(', ')}`);
  }
  if (!cluster) return fixed(nothingDiscovered, 'configuration and defaults only');
  const from = `the cluster (${cluster.connection.from})`;
  // Loaded only when there is a cluster: the Kubernetes client is the heaviest import there is.
  const { listIstioObjects, watchIstioObjects } = await import('./cluster.js');
  if (cluster.watch) {
    const mesh = store(nothingDiscovered);
    const watch = watchIstioObjects(cluster.connection.kc, cluster.watch, cluster.istioNamespace, (objects) =>
      mesh.setDiscovered(discoverMesh(objects)),
    );
    return { mesh, from, stop: () => watch.stop() };
  }
  const read = await listIstioObjects(cluster.connection, cluster.istioNamespace);
  const found = discoverMesh(read.objects);
  return fixed({ ...found, problems: [...read.problems, ...found.problems] }, from, read.unread);
}
