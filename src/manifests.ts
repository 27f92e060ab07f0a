import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import type { KubeObject } from './admission/types.js';

/** A Kubernetes object read from a manifest, with where it came from. */
export interface Manifest {
  source: string;
  /** 1-based position of the YAML document in its file (List items share it). */
  document: number;
  object: KubeObject;
}

export class InputError extends Error {}

const MANIFEST = /\.(ya?ml|json)$/i;

async function filesUnder(path: string): Promise<string[]> {
  const info = await stat(path);
  if (!info.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(child)));
    else if (MANIFEST.test(entry.name)) out.push(child);
  }
  return out;
}

function isObject(v: unknown): v is KubeObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** 1-based number of the YAML document holding a 0-based line. */
function documentAt(text: string, line: number): number {
  let document = 1;
  let content = false; // a `---` before any content opens the first document, not the second
  text.split('\n', line + 1).forEach((l, i) => {
    if (/^---(\s|$)/.test(l) && i <= line) {
      if (content) document++;
      content = true;
    } else if (!/^\s*(#.*)?$/.test(l)) {
      content = true;
    }
  });
  return document;
}

/** Objects of a multi-document YAML (or JSON) text; `kind: List` is unpacked. */
export function parseManifests(text: string, source: string): Manifest[] {
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text);
  } catch (err) {
    const line = (err as { mark?: { line?: number } }).mark?.line ?? 0;
    throw new InputError(`${source}: document ${documentAt(text, line)}: ${(err as Error).message.split('\n')[0]}`);
  }
  const out: Manifest[] = [];
  docs.forEach((doc, i) => {
    if (doc == null) return; // empty document, e.g. a trailing ---
    const document = i + 1;
    if (!isObject(doc) || typeof doc.kind !== 'string' || typeof doc.apiVersion !== 'string') {
      throw new InputError(`${source}: document ${document}: not a Kubernetes object (needs apiVersion and kind)`);
    }
    if (doc.kind.endsWith('List') && Array.isArray(doc.items)) {
      for (const item of doc.items) if (isObject(item)) out.push({ source, document, object: item });
    } else {
      out.push({ source, document, object: doc });
    }
  });
  return out;
}

/** Manifests from files, directories (recursively: *.yaml, *.yml, *.json) and `-` for stdin. */
export async function readManifests(paths: readonly string[], stdin: () => Promise<string>): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const path of paths) {
    if (path === '-') {
      out.push(...parseManifests(await stdin(), '<stdin>'));
      continue;
    }
    let files: string[];
    try {
      files = await filesUnder(path);
    } catch (err) {
      throw new InputError(
        `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`,
      );
    }
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new InputError(`${file}: ${(err as Error).message}`);
      }
      out.push(...parseManifests(text, file));
    }
  }
  return out;
}
