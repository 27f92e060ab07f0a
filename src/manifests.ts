import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import type { KubeObject } from './admission/types.js';

/** A Kubernetes object read from a manifest, with where it came from. */
export interface Manifest {
  source: string;
  /** 1-based position of the YAML document in its file (List items share it). */
  document: number;
  /** 1-based line where that document's content starts. */
  line: number;
  object: KubeObject;
}

/** A file that holds no Kubernetes object (Chart.yaml, values, CI workflows, Helm templates, …). */
export interface Skipped {
  source: string;
  reason: string;
}

/** Input that is meant as a manifest but cannot be read: named by file (and document). */
export class InputError extends Error {}

export interface Inputs {
  manifests: Manifest[];
  skipped: Skipped[];
  errors: InputError[];
}

const MANIFEST = /\.(ya?ml|json)$/i;
/** Never walked: version control and dependencies hold no manifests of the project. */
const NEVER_WALKED = new Set(['.git', 'node_modules']);
/**
 * The most nodes a document may have once its YAML aliases are expanded. Aliases are shared
 * references when parsed, but every consumer (a diff, JSON, the API server) expands them: a few
 * hundred bytes of nested aliases become gigabytes. The API server's YAML reader refuses such
 * documents too ("excessive aliasing"); real objects are a few thousand nodes.
 */
export const MAX_NODES = 1_000_000;
/** Go template actions as Helm writes them: `{{ .Values.x }}`, `{{- include … }}`. */
const TEMPLATE_ACTION = /\{\{-?\s*[-.$\w"(/]/;
const LOOKS_LIKE_MANIFEST = /^\s*["']?apiVersion["']?\s*:/m;

function isObject(v: unknown): v is KubeObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isKubeObject(v: unknown): v is KubeObject {
  return isObject(v) && typeof v.kind === 'string' && v.kind !== '' && typeof v.apiVersion === 'string';
}

/** Files to read under a path; files in a Helm chart's templates/ folder are skipped. */
async function walk(path: string, skipped: Skipped[]): Promise<string[]> {
  const info = await stat(path);
  if (!info.isDirectory()) return [path];
  const out: string[] = [];
  const entries = (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  const chart = entries.some((e) => e.isFile() && e.name === 'Chart.yaml');
  for (const entry of entries) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) {
      if (NEVER_WALKED.has(entry.name)) continue;
      if (chart && entry.name === 'templates') {
        skipped.push({ source: child, reason: 'Helm chart templates (check `helm template` output instead)' });
        continue;
      }
      out.push(...(await walk(child, skipped)));
    } else if (MANIFEST.test(entry.name)) {
      out.push(child);
    }
  }
  return out;
}

/**
 * The YAML documents of a text, split at `---` lines as js-yaml splits them (a `---` before any
 * content opens the first document), each with the line its content starts on. Parsed one by one,
 * a broken document costs only itself.
 */
function splitDocuments(text: string): { text: string; line: number; first: number }[] {
  const docs: { text: string; line: number; first: number }[] = [];
  let lines: string[] = [];
  let content = false;
  let blank = true; // nothing but the separator, blank lines and comments so far in this document
  let line = 1;
  let first = 1;
  text.split('\n').forEach((l, i) => {
    if (/^---(\s|$)/.test(l)) {
      if (content) {
        docs.push({ text: lines.join('\n'), line, first });
        lines = [];
        first = i + 1;
      }
      content = true;
      blank = true;
      line = i + 2;
    } else if (blank && !/^\s*(#.*)?$/.test(l)) {
      line = i + 1;
      content = true;
      blank = false;
    }
    lines.push(l);
  });
  docs.push({ text: lines.join('\n'), line, first });
  return docs;
}

/** Whether a value has more than `max` nodes, counting each alias as the copy it stands for. */
function tooLarge(root: unknown, max: number): boolean {
  let budget = max;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (--budget < 0) return true;
    if (typeof v === 'object' && v !== null) for (const child of Object.values(v)) stack.push(child);
  }
  return false;
}

/**
 * Objects of a multi-document YAML (or JSON) text; `kind: List` is unpacked. A text with no
 * Kubernetes object at all is skipped (it is something else: values, a chart, a workflow); in one
 * that has objects, a document that is not one is an error.
 *
 * `only` leaves out documents that cannot hold what the caller wants (they are not parsed), where
 * that changes no object kept: not in a text that could be skipped whole (a broken document there
 * decides it). The skipped files and errors of such a reading are not the text's.
 */
export function parseManifests(text: string, source: string, only?: (document: string) => boolean): Inputs {
  const result: Inputs = { manifests: [], skipped: [], errors: [] };
  const docs: { document: number; line: number; value?: unknown; error?: string }[] = [];
  const filter = only && !TEMPLATE_ACTION.test(text) && LOOKS_LIKE_MANIFEST.test(text) ? only : undefined;
  splitDocuments(text).forEach((d, i) => {
    if (filter && !filter(d.text)) return;
    try {
      docs.push({ document: i + 1, line: d.line, value: yaml.load(d.text) });
    } catch (err) {
      const mark = (err as { mark?: { line?: number } }).mark;
      const reason = (err as Error).message.split('\n')[0]?.replace(/ \(\d+:\d+\)$/, '') ?? 'unreadable';
      const at = mark?.line !== undefined ? ` (line ${d.first + mark.line})` : '';
      docs.push({ document: i + 1, line: d.line, error: `${reason}${at}` });
    }
  });
  const broken = docs.filter((d) => d.error !== undefined);
  if (broken.length > 0 && TEMPLATE_ACTION.test(text)) {
    result.skipped.push({ source, reason: 'a template (not YAML until rendered)' });
    return result;
  }
  if (broken.length > 0 && !LOOKS_LIKE_MANIFEST.test(text)) {
    result.skipped.push({ source, reason: 'not YAML or JSON with Kubernetes objects' });
    return result;
  }
  const notObjects: number[] = [];
  for (const { document, line, value: doc, error } of docs) {
    if (error !== undefined) {
      result.errors.push(new InputError(`${source}: document ${document}: ${error}`));
    } else if (doc == null) {
      // empty document, e.g. a trailing ---
    } else if (!isKubeObject(doc)) {
      notObjects.push(document);
    } else if (tooLarge(doc, MAX_NODES)) {
      result.errors.push(
        new InputError(
          `${source}: document ${document}: more than ${MAX_NODES} nodes once its YAML aliases are expanded`,
        ),
      );
    } else if (String(doc.kind).endsWith('List') && Array.isArray(doc.items)) {
      for (const item of doc.items)
        if (isKubeObject(item)) result.manifests.push({ source, document, line, object: item });
    } else {
      result.manifests.push({ source, document, line, object: doc });
    }
  }
  if (result.manifests.length === 0 && result.errors.length === 0) {
    result.skipped.push({
      source,
      reason: docs.some((d) => d.value != null) ? 'no Kubernetes objects (apiVersion and kind)' : 'empty',
    });
  } else {
    for (const document of notObjects)
      result.errors.push(
        new InputError(`${source}: document ${document}: not a Kubernetes object (needs apiVersion and kind)`),
      );
  }
  return result;
}

/** Kustomize's own files look like objects but are instructions to kustomize, not to the cluster. */
function isKustomize(m: Manifest): boolean {
  return typeof m.object.apiVersion === 'string' && m.object.apiVersion.startsWith('kustomize.config.k8s.io/');
}

/**
 * Where manifests come from, in the order they are read: a file or stdin (read once), or what
 * walking a path found instead (a chart's templates skipped, a path that cannot be read).
 */
export type Source = { name: string; text(): Promise<string> } | { skipped: Skipped } | { error: InputError };

/**
 * The sources under `paths`, in order: files, directories (recursively: *.yaml, *.yml, *.json;
 * never .git or node_modules) and `-` for stdin. Listing them reads no file.
 */
export async function manifestSources(paths: readonly string[], stdin: () => Promise<string>): Promise<Source[]> {
  const out: Source[] = [];
  for (const path of paths) {
    if (path === '-') {
      let text: Promise<string> | undefined;
      out.push({ name: '<stdin>', text: () => (text ??= stdin()) });
      continue;
    }
    const skipped: Skipped[] = [];
    try {
      const files = await walk(path, skipped);
      out.push(...skipped.map((s) => ({ skipped: s })));
      for (const file of files) out.push({ name: file, text: () => readFile(file, 'utf8') });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      out.push({
        error: new InputError(`${path}: ${code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`),
      });
    }
  }
  return out;
}

/**
 * A source's objects as `check` takes them (kustomize's own files skipped); what cannot be read is
 * in `errors`. `only`: see parseManifests.
 */
export async function sourceInputs(source: Source, only?: (document: string) => boolean): Promise<Inputs> {
  if ('skipped' in source) return { manifests: [], skipped: [source.skipped], errors: [] };
  if ('error' in source) return { manifests: [], skipped: [], errors: [source.error] };
  let text: string;
  try {
    text = await source.text();
  } catch (err) {
    return { manifests: [], skipped: [], errors: [new InputError(`${source.name}: ${(err as Error).message}`)] };
  }
  const r = parseManifests(text, source.name, only);
  const kustomize = r.manifests.filter(isKustomize);
  if (kustomize.length > 0 && kustomize.length === r.manifests.length)
    return {
      manifests: [],
      skipped: [
        { source: kustomize[0]?.source ?? '', reason: 'kustomize configuration (check `kubectl kustomize` output)' },
        ...r.skipped,
      ],
      errors: r.errors,
    };
  return { manifests: r.manifests.filter((m) => !isKustomize(m)), skipped: r.skipped, errors: r.errors };
}

/**
 * Manifests from files, directories (recursively: *.yaml, *.yml, *.json; never .git or
 * node_modules) and `-` for stdin. Nothing stops the reading: what cannot be read is in `errors`.
 */
export async function readManifests(paths: readonly string[], stdin: () => Promise<string>): Promise<Inputs> {
  const all: Inputs = { manifests: [], skipped: [], errors: [] };
  for (const source of await manifestSources(paths, stdin)) {
    const r = await sourceInputs(source);
    all.manifests.push(...r.manifests);
    all.skipped.push(...r.skipped);
    all.errors.push(...r.errors);
  }
  return all;
}
