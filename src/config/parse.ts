import type { ErrorObject, ValidateFunction } from 'ajv';
import yaml from 'js-yaml';
import { validate as generated } from './config-validator.generated.js';
import type { Config } from './types.js';

// Compiled from policies/meshguard.schema.json ahead of time (npm run generate): compiling it at
// start-up took 50-100 ms.
const validate = generated as unknown as ValidateFunction<Config>;

export type Parsed = { ok: true; config: Config } | { ok: false; errors: string[] };

/** Keys of earlier versions, and what replaced them. */
const retired: Record<string, string> = {
  rootNamespace: 'moved to mesh.rootNamespace',
  nativeSidecars: 'replaced by mesh.nativeSidecars (enabled, auto or disabled)',
  'policies.probe-port-exclusion.probeTypes':
    "removed: the policy acts on every probe type, and only where Istio won't rewrite the probe",
};

/** `policies.probe-port-exclusion.mode: must be one of enforce, warn, off` */
function describe(err: ErrorObject): string {
  const at = err.instancePath.slice(1).replaceAll('/', '.').replaceAll('~1', '/').replaceAll('~0', '~');
  const where = (key: string) => (at ? `${at}.${key}` : key);
  switch (err.keyword) {
    case 'enum':
      return `${at || 'config'}: must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    case 'additionalProperties': {
      const key = (err.params as { additionalProperty: string }).additionalProperty;
      const moved = retired[where(key)];
      if (moved) return `${where(key)}: ${moved}`;
      return at === 'policies' ? `${where(key)}: unknown policy` : `${where(key)}: unknown key`;
    }
    case 'propertyNames':
      return `${at}.${(err.params as { propertyName: string }).propertyName}: unknown policy`;
    case 'required':
      return `${where((err.params as { missingProperty: string }).missingProperty)}: is required`;
    default:
      return `${at || 'config'}: ${err.message ?? 'is invalid'}`;
  }
}

/** Parses and validates configuration text (YAML or JSON); fills defaults from the schema. */
export function parseConfig(text: string): Parsed {
  let data: unknown;
  try {
    // CORE_SCHEMA: plain YAML 1.2 types, no timestamps, merge keys or custom tags.
    data = yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (err) {
    return { ok: false, errors: [`not valid YAML: ${(err as Error).message.split('\n')[0]}`] };
  }
  data ??= {}; // an empty document means all defaults
  if (validate(data)) return { ok: true, config: data };
  // propertyNames reports its inner enum error too; keep the one that names the key.
  const errors = (validate.errors ?? []).filter((e) => !e.propertyName || e.keyword === 'propertyNames').map(describe);
  return { ok: false, errors: [...new Set(errors)] };
}
