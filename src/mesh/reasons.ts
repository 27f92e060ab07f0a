import type { Sidecar } from './injection.js';

/** How a skip for want of knowing what Istio does begins (the engine then says why, once). */
export const CANNOT_TELL = 'cannot tell what sidecar Istio injects';

/** Why a policy that needs a classic sidecar has nothing to do on this pod. */
export function skipReason(sidecar: Sidecar): string {
  switch (sidecar.proxy) {
    case 'none':
      return `no sidecar: ${sidecar.why}`;
    case 'unknown':
      return `${CANNOT_TELL}: ${sidecar.why}`;
    case 'native':
      return `native sidecar (revision ${sidecar.revision.name})`;
    case 'classic':
      return 'classic sidecar';
  }
}
