import type { AdmissionRequest } from '../admission/types.js';
import type { Decision } from '../engine/types.js';
import { jsonString, jsonValue } from '../json-text.js';
import { lineWriter, type Logger } from '../log.js';
import type { Metrics } from './metrics.js';

/** The object's name, not checked by the review validator; a pod being created often has only a generateName. */
const requestName = (req: AdmissionRequest): unknown =>
  req.name ?? req.object?.metadata?.name ?? req.object?.metadata?.generateName;

/** What a decision line says about the request it decided on, as an object for pino's lines (policy errors). */
function requestFields(req: AdmissionRequest) {
  return {
    uid: req.uid,
    kind: req.kind.kind,
    namespace: req.namespace,
    name: requestName(req),
    operation: req.operation,
    dryRun: req.dryRun,
  };
}

/**
 * The same fields as JSON text (`"uid":…,"kind":…`), as JSON.stringify writes them, the undefined
 * ones left out. Written field by field in one template: every piece joined is a string the log
 * batch later copies piece by piece. The operation is one of the four the review validator accepts.
 */
function requestJson(req: AdmissionRequest): string {
  const name = jsonValue(requestName(req));
  return `"uid":${jsonString(req.uid)},"kind":${jsonString(req.kind.kind)}${req.namespace === undefined ? '' : `,"namespace":${jsonString(req.namespace)}`}${
    name === undefined ? '' : `,"name":${name}`
  },"operation":"${req.operation}"${req.dryRun === undefined ? '' : `,"dryRun":${req.dryRun}`}`;
}

/**
 * Counts each decision and logs it: one line per decision that is not a pass (passes and skips at
 * debug). The request's fields are written once, shared by its lines; a decision's own fields are
 * ids and enum values of meshguard's, written as they are. Policy errors go through pino, for its
 * err serialiser.
 */
export function decisionRecorder(
  logger: Logger,
  metrics: Metrics,
): (decisions: readonly Decision[], req: AdmissionRequest) => void {
  const decisionLine = lineWriter(logger, 'decision');
  return (decisions, req) => {
    let requestText: string | undefined;
    // Most decisions pass or skip, logged at debug: whether debug is on is asked once per request.
    let debug: boolean | undefined;
    for (const d of decisions) {
      const { result } = d.outcome;
      metrics.countPolicyResult(d.policy, result);
      const level = result === 'error' ? 'error' : result === 'pass' || result === 'skip' ? 'debug' : 'info';
      if (!(level === 'debug' ? (debug ??= logger.isLevelEnabled('debug')) : logger.isLevelEnabled(level))) continue;
      if (d.outcome.result === 'error') {
        logger.error(
          { ...requestFields(req), policy: d.policy, result, mode: d.mode, subject: d.subject, err: d.outcome.error },
          'policy error',
        );
      } else {
        requestText ??= requestJson(req);
        // A skip says why (its reason quotes what the object holds, so it is JSON-escaped).
        const why = d.outcome.result === 'skip' ? `,"reason":${jsonString(d.outcome.reason)}` : '';
        decisionLine(
          level,
          `${requestText},"policy":"${d.policy}","result":"${result}","mode":"${d.mode}","subject":"${d.subject}"${why}`,
        );
      }
    }
  };
}
