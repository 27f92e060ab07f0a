import { EventEmitter } from 'node:events';
import type { ConfigStore } from '../config/store.js';
import type { MeshSettings } from '../config/types.js';
import { nothingDiscovered, resolveProfile, type DiscoveredMesh, type MeshProfile } from './profile.js';

interface Events {
  change: [MeshProfile];
}

/**
 * The mesh profile in force, resolved again only when the configuration's `mesh:` or what was
 * discovered changes: a review reads `current`, never resolves.
 */
export class MeshStore extends EventEmitter<Events> {
  private profile: MeshProfile;

  constructor(
    private declared: MeshSettings,
    private found: DiscoveredMesh = nothingDiscovered,
  ) {
    super();
    this.profile = resolveProfile(declared, found);
  }

  /** A store whose declared part follows the configuration in force. */
  static following(config: ConfigStore, discovered?: DiscoveredMesh): MeshStore {
    const store = new MeshStore(config.current.config.mesh, discovered);
    config.on('change', (active) => store.setDeclared(active.config.mesh));
    return store;
  }

  get current(): MeshProfile {
    return this.profile;
  }

  /** What Istio's own objects said, last (meshguard mesh shows it beside the profile). */
  get discovered(): DiscoveredMesh {
    return this.found;
  }

  setDeclared(declared: MeshSettings): void {
    if (declared === this.declared) return;
    this.declared = declared;
    this.update();
  }

  setDiscovered(discovered: DiscoveredMesh): void {
    this.found = discovered;
    this.update();
  }

  private update(): void {
    this.profile = resolveProfile(this.declared, this.found);
    this.emit('change', this.profile);
  }
}
