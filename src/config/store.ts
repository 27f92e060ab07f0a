import { EventEmitter } from 'node:events';
import { compileScope, type Scope } from './scope.js';
import { parseConfig } from './parse.js';
import type { Config } from './types.js';

/** The configuration in force, swapped as a whole: a request reads it once, never a mix. */
export interface ActiveConfig {
  readonly config: Config;
  readonly scope: Scope;
  /** Increases with every configuration that takes effect. */
  readonly generation: number;
  /** Where it came from: a file path, `configmap NS/NAME`, or `embedded defaults`. */
  readonly source: string;
}

interface Events {
  change: [ActiveConfig];
  rejected: [source: string, errors: string[]];
}

/**
 * Holds the configuration in force. A base (file or embedded defaults) and, while one exists, an
 * overlay (the ConfigMap) that replaces it. Invalid text never takes effect: the last good
 * configuration stays and the rejection is reported to listeners.
 */
export class ConfigStore extends EventEmitter<Events> {
  private base: { config: Config; source: string };
  private overlay: { config: Config; source: string } | null = null;
  private active: ActiveConfig;

  constructor(
    base: Config,
    source: string,
    private readonly selfNamespace?: string,
  ) {
    super();
    this.base = { config: base, source };
    this.active = { config: base, scope: compileScope(base, selfNamespace), generation: 1, source };
  }

  get current(): ActiveConfig {
    return this.active;
  }

  /** New base text (the --config file changed). Returns the errors when refused. */
  setBase(text: string, source: string): string[] {
    const parsed = parseConfig(text);
    if (!parsed.ok) return this.refuse(source, parsed.errors);
    this.base = { config: parsed.config, source };
    if (!this.overlay) this.activate(this.base);
    return [];
  }

  /** The overlay's text, or null when it is gone (back to the base). */
  setOverlay(text: string | null, source: string): string[] {
    if (text === null) {
      if (!this.overlay) return [];
      this.overlay = null;
      this.activate(this.base);
      return [];
    }
    const parsed = parseConfig(text);
    if (!parsed.ok) return this.refuse(source, parsed.errors);
    this.overlay = { config: parsed.config, source };
    this.activate(this.overlay);
    return [];
  }

  /** Reports configuration that cannot take effect; what is in force stays. */
  refuse(source: string, errors: string[]): string[] {
    this.emit('rejected', source, errors);
    return errors;
  }

  private activate({ config, source }: { config: Config; source: string }): void {
    this.active = {
      config,
      scope: compileScope(config, this.selfNamespace),
      generation: this.active.generation + 1,
      source,
    };
    this.emit('change', this.active);
  }
}
