import { readFile } from 'node:fs/promises';
import { defaultConfigPath } from '../paths.js';
import { parseConfig } from './parse.js';
import type { Config } from './types.js';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly errors: string[],
  ) {
    super(`invalid configuration in ${source}:\n  ${errors.join('\n  ')}`);
  }
}

/** The configuration from a file, or the embedded defaults; invalid is an error, never a fallback. */
export async function loadConfig(file?: string): Promise<{ config: Config; source: string; text: string }> {
  const source = file ?? 'embedded defaults';
  let text: string;
  try {
    text = await readFile(file ?? defaultConfigPath, 'utf8');
  } catch (err) {
    throw new ConfigError(source, [(err as Error).message]);
  }
  const parsed = parseConfig(text);
  if (!parsed.ok) throw new ConfigError(source, parsed.errors);
  return { config: parsed.config, source, text };
}
