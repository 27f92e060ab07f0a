import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Calls `onChange` with the new contents when any of `paths` changes. Mounted Secrets and
 * ConfigMaps change by swapping a symlink in their directory, which a watch on the file itself
 * misses, so this watches the directories and also polls (watches can drop events).
 * Returns a function that stops watching.
 */
export function watchFiles(
  paths: readonly string[],
  onChange: (contents: string[]) => void,
  opts: { pollMs?: number; onError?: (err: Error) => void } = {},
): () => void {
  let last: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let checking = false;

  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      const contents = await Promise.all(paths.map((p) => readFile(p, 'utf8')));
      const signature = contents.join('\0');
      if (last !== undefined && signature !== last) onChange(contents);
      last = signature;
    } catch (err) {
      // Half-written or briefly missing during a swap: the next event or poll sees the result.
      opts.onError?.(err as Error);
    } finally {
      checking = false;
    }
  };
  // Several events arrive per swap; look once they settle.
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(check, 50);
  };

  const watchers: FSWatcher[] = [];
  for (const dir of new Set(paths.map((p) => dirname(p)))) {
    try {
      watchers.push(watch(dir, soon).on('error', () => undefined));
    } catch {
      // No inotify here: polling alone still works.
    }
  }
  const poll = setInterval(check, opts.pollMs ?? 5000).unref();
  void check();
  return () => {
    clearInterval(poll);
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
