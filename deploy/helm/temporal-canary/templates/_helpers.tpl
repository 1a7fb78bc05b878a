{{/* The release's name for every object: <release>, or <release>-temporal-canary when the release name lacks it. */}}
{{- define "temporal-canary.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "temporal-canary.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "temporal-canary.labels" -}}
{{ include "temporal-canary.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "temporal-canary.serviceAccountName" -}}
{{- default (printf "%s-worker" (include "temporal-canary.fullname" .)) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "temporal-canary.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/* The ClusterRole suffix of a router as CANARY_ROUTER names it (gatewayAPI: gateway-api). */}}
{{- define "temporal-canary.roleOf" -}}
{{- $r := lower . -}}
{{- if or (eq $r "gatewayapi") (eq $r "gateway-api") (eq $r "gateway") -}}gateway-api
{{- else if has $r (list "istio" "nginx" "smi" "replicas") -}}{{ $r }}
{{- else -}}{{ fail (printf "unknown router %q in rollouts.namespaces: use istio, nginx, gatewayAPI, smi or replicas" .) }}
{{- end -}}
{{- end -}}

{{/* Fails the render with what to set, before anything is applied. */}}
{{- define "temporal-canary.validate" -}}
{{- if not .Values.temporal.address -}}
{{- fail "temporal.address is required: the Temporal frontend's host:port, e.g. --set temporal.address=temporal-frontend.temporal.svc.cluster.local:7233" -}}
{{- end -}}
{{- if contains "://" .Values.temporal.address -}}
{{- fail (printf "temporal.address %q has a URL scheme, which gRPC addresses do not take; use host:port" .Values.temporal.address) -}}
{{- end -}}
{{- range $k := list "router" "workloads" "metrics" -}}
{{- if not (index $.Values.providers $k) -}}
{{- fail (printf "providers.%s is required: a worker outside the demo has no default provider (router: istio, nginx, gatewayAPI, smi or replicas; workloads: kubernetes; metrics: prometheus)" $k) -}}
{{- end -}}
{{- end -}}
{{- if and (eq (lower .Values.providers.metrics) "prometheus") (not .Values.prometheus.url) -}}
{{- fail "prometheus.url is required with providers.metrics=prometheus: the Prometheus that targets without metrics.prometheus.url query" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "serviceMonitor.enabled needs metrics.enabled: the worker serves /metrics only on metrics.port" -}}
{{- end -}}
{{- $port := int .Values.metrics.port -}}
{{- if and .Values.metrics.enabled (or (lt $port 1) (gt $port 65535)) -}}
{{- fail (printf "metrics.port %v is not a port number (1-65535), e.g. 9464" .Values.metrics.port) -}}
{{- end -}}
{{- if and .Values.versioning.buildId (not .Values.versioning.deploymentName) -}}
{{- fail "versioning.buildId is set but versioning.deploymentName is not; Worker Versioning needs the deployment name" -}}
{{- end -}}
{{- end -}}
