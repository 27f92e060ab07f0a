/**
 * A function's results kept by their argument, for inputs that repeat from request to request (an
 * annotation text, a namespace, a patch): the pods of one workload all bring the same ones.
 * Bounded, since the inputs come from callers: past `entries` the memo starts over, and keys
 * longer than `maxKeyLength` are computed every time.
 */
export function memoize<T>(compute: (key: string) => T, entries: number, maxKeyLength = Infinity): (key: string) => T {
  const kept = new Map<string, T>();
  return (key) => {
    const known = kept.get(key);
    if (known !== undefined || kept.has(key)) return known as T;
    const value = compute(key);
    if (key.length <= maxKeyLength) {
      if (kept.size >= entries) kept.clear();
      kept.set(key, value);
    }
    return value;
  };
}
