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
    private discovered: DiscoveredMesh = nothingDiscovered,
  ) {
    super();
    this.profile = resolveProfile(declared, discovered);
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

  setDeclared(declared: MeshSettings): void {
    if (declared === this.declared) return;
    this.declared = declared;
    this.update();
  }

  setDiscovered(discovered: DiscoveredMesh): void {
    this.discovered = discovered;
    this.update();
  }

  private update(): void {
    this.profile = resolveProfile(this.declared, this.discovered);
    this.emit('change', this.profile);
  }
}
