import { errorCodes } from 'fastify';
import secureJsonParse from 'secure-json-parse';

const refusePoisoned = { protoAction: 'error', constructorAction: 'error' } as const;

/**
 * Whether a JSON text could hold a `__proto__` or `constructor` key: spelled out, or with any
 * character as a \u escape. secure-json-parse looks for those keys with two regular expressions
 * over the whole text; these plain searches cost a fraction of that and rule out most reviews
 * (cost and equivalence test: the ledger in bench/RESULTS.md).
 */
function mayBePoisoned(text: string): boolean {
  return (
    text.includes('__proto__') || text.includes('constructor') || text.includes('\\u') || text.charCodeAt(0) === 0xfeff
  );
}

/**
 * fastify's own JSON body parser with `onProtoPoisoning` and `onConstructorPoisoning` at 'error'
 * (the same errors; a `__proto__` key or a `constructor.prototype` anywhere is a 400: admission
 * reviews never legitimately carry them), minus secure-json-parse's scans of texts that cannot
 * hold a poisoned key. A byte-order mark also takes secure-json-parse's path, which strips it.
 */
export function parseJsonBody(
  _request: unknown,
  body: string,
  done: (err: Error | null, value?: unknown) => void,
): void {
  if (body.length === 0) {
    done(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY());
    return;
  }
  let value: unknown;
  try {
    value = mayBePoisoned(body) ? secureJsonParse.parse(body, undefined, refusePoisoned) : JSON.parse(body);
  } catch {
    done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY());
    return;
  }
  done(null, value);
}
