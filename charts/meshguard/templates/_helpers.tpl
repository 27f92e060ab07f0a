{{- define "meshguard.name" -}}
{{- .Release.Name | trunc 53 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshguard.labels" -}}
app.kubernetes.io/name: meshguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "meshguard.selector" -}}
app.kubernetes.io/name: meshguard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "meshguard.tlsSecret" -}}
{{- if .Values.certManager.enabled -}}{{ include "meshguard.name" . }}-tls{{- else -}}{{ required "tls.existingSecret is required without certManager.enabled" .Values.tls.existingSecret }}{{- end -}}
{{- end -}}

{{/* What every webhook shares: where to call, CA, selectors, timeouts. */}}
{{- define "meshguard.webhookCommon" -}}
{{- $spec := .Files.Get "files/webhooks.yaml" | fromYaml -}}
admissionReviewVersions: {{ toJson $spec.common.admissionReviewVersions }}
sideEffects: {{ $spec.common.sideEffects }}
matchPolicy: {{ $spec.common.matchPolicy }}
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
namespaceSelector:
  matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ toJson (append $spec.excludedNamespaces .Release.Namespace) }}
  - key: {{ $spec.ignoreLabel }}
    operator: NotIn
    values: ["true"]
{{- end -}}
