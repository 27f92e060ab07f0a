import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The same code runs from src/ (tests, tsx) and dist/src/ (production): find the package root
// instead of counting `..`.
function findRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`meshguard: no package.json above ${from}`);
    dir = up;
  }
  return dir;
}

export const packageRoot = findRoot(dirname(fileURLToPath(import.meta.url)));
export const defaultConfigPath = join(packageRoot, 'policies', 'meshguard.yaml');
export const configSchemaPath = join(packageRoot, 'policies', 'meshguard.schema.json');
