{{/* Names, labels, and the checks that refuse values the worker cannot run with. */}}

{{- define "winback.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "winback.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "winback.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "winback.selectorLabels" -}}
app.kubernetes.io/name: {{ include "winback.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /* The bridge's pods: a name of their own, so that no selector of the worker (Deployment,
disruption budget, Service, NetworkPolicy) counts them among the workers. */ -}}
{{- define "winback.bridgeSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-bridge" (include "winback.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "winback.labels" -}}
helm.sh/chart: {{ include "winback.chart" . }}
{{ include "winback.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: winback
{{- end }}

{{- define "winback.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "winback.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "winback.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding WINBACK_AMQP_URL: the chart's own when amqp.url is set. */}}
{{- define "winback.amqpSecretName" -}}
{{- if .Values.amqp.url }}
{{- printf "%s-amqp" (include "winback.fullname" .) }}
{{- else if .Values.amqp.existingSecret }}
{{- .Values.amqp.existingSecret }}
{{- else }}
{{- fail "amqp: set amqp.existingSecret (a Secret holding the AMQP URL) or amqp.url (the chart creates the Secret)" }}
{{- end }}
{{- end }}

{{- define "winback.amqpSecretKey" -}}
{{- if .Values.amqp.url }}url{{ else }}{{ .Values.amqp.secretKey }}{{ end }}
{{- end }}

{{/* Whether the chart creates the Salesforce Secret from inline values. */}}
{{- define "winback.salesforceInline" -}}
{{- if eq .Values.salesforce.auth "jwt" }}{{ if .Values.salesforce.privateKey }}true{{ end }}
{{- else }}{{ if .Values.salesforce.accessToken }}true{{ end }}
{{- end }}
{{- end }}

{{- define "winback.salesforceSecretName" -}}
{{- if include "winback.salesforceInline" . }}
{{- printf "%s-salesforce" (include "winback.fullname" .) }}
{{- else if .Values.salesforce.existingSecret }}
{{- .Values.salesforce.existingSecret }}
{{- else if eq .Values.salesforce.auth "jwt" }}
{{- fail "salesforce: auth jwt needs salesforce.existingSecret (holding the PEM key) or salesforce.privateKey" }}
{{- else }}
{{- fail "salesforce: auth token needs salesforce.existingSecret (holding the access token) or salesforce.accessToken" }}
{{- end }}
{{- end }}

{{- define "winback.salesforceSecretKey" -}}
{{- $inline := include "winback.salesforceInline" . }}
{{- if eq .Values.salesforce.auth "jwt" }}
{{- if $inline }}private-key.pem{{ else }}{{ .Values.salesforce.privateKeySecretKey }}{{ end }}
{{- else }}
{{- if $inline }}access-token{{ else }}{{ .Values.salesforce.accessTokenSecretKey }}{{ end }}
{{- end }}
{{- end }}

{{- define "winback.rulesConfigMapName" -}}
{{- default (printf "%s-rules" (include "winback.fullname" .)) .Values.rules.existingConfigMap }}
{{- end }}

{{/* The templates the chart ships (files/templates) overlaid with rules.templates, as JSON. */}}
{{- define "winback.ruleTemplates" -}}
{{- $templates := dict }}
{{- range $path, $bytes := .Files.Glob "files/templates/*.j2" }}
{{- $_ := set $templates (base $path) ($.Files.Get $path) }}
{{- end }}
{{- range $name, $text := .Values.rules.templates }}
{{- $_ := set $templates $name $text }}
{{- end }}
{{- toJson $templates }}
{{- end }}

{{/* The template keys mounted under templates/, sorted. */}}
{{- define "winback.ruleTemplateNames" -}}
{{- if and .Values.rules.existingConfigMap .Values.rules.templateNames }}
{{- toJson (sortAlpha .Values.rules.templateNames) }}
{{- else }}
{{- $names := list }}
{{- range $path, $bytes := .Files.Glob "files/templates/*.j2" }}
{{- $names = append $names (base $path) }}
{{- end }}
{{- if not .Values.rules.existingConfigMap }}
{{- $names = concat $names (keys .Values.rules.templates) }}
{{- end }}
{{- toJson (sortAlpha (uniq $names)) }}
{{- end }}
{{- end }}

{{/* A setting's value as the worker parses it: lists as JSON, whole numbers without exponent. */}}
{{- define "winback.envValue" -}}
{{- if or (kindIs "slice" .) (kindIs "map" .) }}
{{- toJson . }}
{{- else if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{- define "winback.pdbEnabled" -}}
{{- $enabled := .Values.podDisruptionBudget.enabled }}
{{- if eq (toString $enabled) "auto" }}
{{- $min := ternary .Values.keda.minReplicaCount .Values.replicas .Values.keda.enabled }}
{{- if gt (int $min) 1 }}true{{ end }}
{{- else if $enabled }}true
{{- end }}
{{- end }}

{{/* Refuse values the worker cannot run with, each with a message saying what to change. */}}
{{- define "winback.validate" -}}
{{- $grace := float64 .Values.config.gracePeriod }}
{{- $termination := float64 .Values.terminationGracePeriodSeconds }}
{{- if le $termination $grace }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be greater than config.gracePeriod (%v): Kubernetes kills the pod after terminationGracePeriodSeconds, before the worker has finished its batch" .Values.terminationGracePeriodSeconds .Values.config.gracePeriod) }}
{{- end }}
{{- if eq .Values.config.crm "local" }}
{{- if .Values.keda.enabled }}
{{- fail "config.crm=local keeps the CRM in one SQLite file that only one pod may write: keda.enabled must be false (use config.crm=salesforce to scale)" }}
{{- end }}
{{- if gt (int .Values.replicas) 1 }}
{{- fail (printf "config.crm=local keeps the CRM in one SQLite file that only one pod may write (SQLite on shared storage is unsafe, and separate volumes would be separate CRMs): set replicas to 1 (it is %v), or use config.crm=salesforce" .Values.replicas) }}
{{- end }}
{{- end }}
{{- if and .Values.rules.existingConfigMap (or .Values.rules.inline .Values.rules.templates) }}
{{- fail "rules: rules.existingConfigMap and rules.inline/rules.templates exclude each other: put the rules and templates in that ConfigMap" }}
{{- end }}
{{- if and .Values.salesforce.caBundle.configMap .Values.salesforce.caBundle.secret }}
{{- fail "salesforce.caBundle: set configMap or secret, not both" }}
{{- end }}
{{- if and .Values.amqp.caBundle.configMap .Values.amqp.caBundle.secret }}
{{- fail "amqp.caBundle: set configMap or secret, not both" }}
{{- end }}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicaCount) (int .Values.keda.maxReplicaCount)) }}
{{- fail (printf "keda.minReplicaCount (%v) must not exceed keda.maxReplicaCount (%v)" .Values.keda.minReplicaCount .Values.keda.maxReplicaCount) }}
{{- end }}
{{- if and .Values.keda.enabled (gt (int .Values.keda.maxReplicaCount) (int .Values.config.partitions)) }}
{{- fail (printf "keda.maxReplicaCount (%v) must not exceed config.partitions (%v): each partition is consumed by one replica at a time, so more replicas would only stand by" .Values.keda.maxReplicaCount .Values.config.partitions) }}
{{- end }}
{{- end }}
