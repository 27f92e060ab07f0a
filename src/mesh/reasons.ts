import type { Sidecar } from './injection.js';

/** Why a policy that needs a classic sidecar has nothing to do on this pod. */
export function skipReason(sidecar: Sidecar): string {
  switch (sidecar.proxy) {
    case 'none':
      return `no sidecar: ${sidecar.why}`;
    case 'unknown':
      return `cannot tell what sidecar Istio injects: ${sidecar.why}`;
    case 'native':
      return `native sidecar (revision ${sidecar.revision.name})`;
    case 'classic':
      return 'classic sidecar';
  }
}
