// Comma-separated port lists of Istio's traffic.sidecar.istio.io/* annotations.

export function portList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Appends ports to a list annotation, keeping the existing text and order. */
export function appendPorts(value: string | undefined, ports: readonly number[]): string {
  const kept = (value ?? '').replace(/[\s,]+$/, '');
  return kept === '' ? ports.join(',') : `${kept},${ports.join(',')}`;
}
