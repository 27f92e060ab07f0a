import type { AdmissionRequest } from '../admission/types.js';
import type { Decision } from '../engine/types.js';
import { jsonString, jsonValue } from '../json-text.js';
import { lineWriter, type Logger } from '../log.js';
import type { Metrics } from './metrics.js';

/** What a decision line says about the request it decided on. */
interface RequestFields {
  uid: string;
  kind: string;
  namespace?: string;
  /** The object's name; a pod being created often has only a generateName. Not checked by the review validator. */
  name?: unknown;
  operation: AdmissionRequest['operation'];
  dryRun?: boolean;
}

function requestFields(req: AdmissionRequest): RequestFields {
  return {
    uid: req.uid,
    kind: req.kind.kind,
    namespace: req.namespace,
    name: req.name ?? req.object?.metadata?.name ?? req.object?.metadata?.generateName,
    operation: req.operation,
    dryRun: req.dryRun,
  };
}

/**
 * The fields as JSON text (`"uid":…,"kind":…`), as JSON.stringify writes them, the undefined ones
 * left out. Written field by field in one template: every piece joined is a string the log batch
 * later copies piece by piece. The operation is one of the four the review validator accepts.
 */
function requestJson(r: RequestFields): string {
  const name = r.name === undefined ? undefined : jsonValue(r.name);
  return `"uid":${jsonString(r.uid)},"kind":${jsonString(r.kind)}${r.namespace === undefined ? '' : `,"namespace":${jsonString(r.namespace)}`}${
    name === undefined ? '' : `,"name":${name}`
  },"operation":"${r.operation}"${r.dryRun === undefined ? '' : `,"dryRun":${r.dryRun}`}`;
}

/**
 * Counts each decision and logs it: one line per decision that is not a pass (passes and skips at
 * debug). The request's fields are written once, shared by its lines; a decision's own fields are
 * ids and enum values of meshguard's, written as they are. Policy errors go through pino, for its
 * err serialiser.
 */
export function decisionRecorder(logger: Logger, metrics: Metrics): (decisions: readonly Decision[], req: AdmissionRequest) => void {
  const decisionLine = lineWriter(logger, 'decision');
  return (decisions, req) => {
    let request: RequestFields | undefined;
    let requestText = '';
    for (const d of decisions) {
      const { result } = d.outcome;
      metrics.countPolicyResult(d.policy, result);
      const level = result === 'error' ? 'error' : result === 'pass' || result === 'skip' ? 'debug' : 'info';
      if (!logger.isLevelEnabled(level)) continue;
      if (request === undefined) {
        request = requestFields(req);
        requestText = requestJson(request);
      }
      if (d.outcome.result === 'error') {
        logger.error({ ...request, policy: d.policy, result, mode: d.mode, subject: d.subject, err: d.outcome.error }, 'policy error');
      } else {
        decisionLine(level, `${requestText},"policy":"${d.policy}","result":"${result}","mode":"${d.mode}","subject":"${d.subject}"`);
      }
    }
  };
}
