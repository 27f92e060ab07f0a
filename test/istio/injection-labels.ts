// The analyzer codes that concern how injection is asked for, and the findings of meshguard's
// sidecar-inject-label and namespace-injection that answer them (conformance.ts compares the two
// per resource). Istio's analyzers, under pkg/config/analysis/analyzers/:
//   injection/injection.go    IST0123 NamespaceMultipleInjectionLabels: istio-injection (absent or
//                             enabled) beside istio.io/rev or istio.io/dataplane-mode. IST0102
//                             NamespaceNotInjected (a namespace with neither label) is advice, not a
//                             trap: meshguard says nothing on such namespaces, so it is not compared.
//   annotations/annotations.go IST0107 MisplacedAnnotation (an annotation on a kind it does not
//                             apply to: sidecar.istio.io/inject is for Pods) and IST0135
//                             DeprecatedAnnotation (sidecar.istio.io/inject as an annotation, unless
//                             the label is set too), as far as they concern sidecar.istio.io/inject.
import type { KubeObject } from '../../src/admission/types.js';
import type { AnalyzerInput } from './conformance.js';

interface Counterpart {
  codes: readonly string[];
  counterpart: string;
  findings: (input: AnalyzerInput) => Map<string, string[]>;
}

/** How namespace-injection says both injection labels are set. */
const BOTH_LABELS = /webhooks follow istio-injection=/;
/** How sidecar-inject-label speaks of an annotation, or of the key on a workload's or namespace's own metadata. */
const ANNOTATION_OR_MISPLACED = /: (the annotation sidecar\.istio\.io\/inject=|sidecar\.istio\.io\/inject on (a|the))/;

const resourceOf = (o: KubeObject) =>
  `${o.kind ?? '?'} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name ?? '?'}`;

/** Objects of these kinds on which `policy` warned (or denied) with a message matching `message`. */
function warnedOn(input: AnalyzerInput, policy: string, kinds: readonly string[], message: RegExp) {
  const out = new Map<string, string[]>();
  input.reports.forEach((r, i) => {
    const object = input.objects[i] as KubeObject;
    if (!kinds.includes(object.kind ?? '')) return;
    for (const f of r.findings) {
      if (f.policy !== policy) continue;
      if (f.action === 'error') input.errors.push(`${policy} threw on ${resourceOf(object)}: ${f.message}`);
      if ((f.action === 'warn' || f.action === 'deny') && message.test(f.message))
        out.set(resourceOf(object), [...(out.get(resourceOf(object)) ?? []), f.message]);
    }
  });
  return out;
}

/** Per analyzer, the codes compared and meshguard's counterpart (beside conformance.ts's own table). */
export const injectionLabels: Readonly<Record<string, readonly Counterpart[]>> = {
  'injection.Analyzer': [
    {
      codes: ['IST0123'],
      counterpart: 'namespace-injection findings that both injection labels are set',
      findings: (input) => warnedOn(input, 'namespace-injection', ['Namespace'], BOTH_LABELS),
    },
  ],
  'annotations.K8sAnalyzer': [
    {
      codes: ['IST0107', 'IST0135'],
      counterpart:
        "sidecar-inject-label findings on a sidecar.istio.io/inject annotation, or on the key on a Deployment's or Namespace's own metadata",
      findings: (input) =>
        warnedOn(input, 'sidecar-inject-label', ['Pod', 'Deployment', 'Namespace', 'Service'], ANNOTATION_OR_MISPLACED),
    },
  ],
};
