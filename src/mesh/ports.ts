// Comma-separated port lists of Istio's traffic.sidecar.istio.io/* annotations.

export function portList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Appends ports (`8080,8087`) to a list annotation, keeping the existing text and order. */
export function appendPorts(value: string | undefined, ports: string): string {
  // Trailing separators, found by a scan: /[\s,]+$/ backtracks quadratically on a long run of
  // them that does not end the text, and the text is whatever the user wrote.
  const text = value ?? '';
  let end = text.length;
  while (end > 0 && /[\s,]/.test(text.charAt(end - 1))) end--;
  const kept = text.slice(0, end);
  return kept === '' ? ports : `${kept},${ports}`;
}
