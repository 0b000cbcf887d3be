{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "latchkey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name prefix: <release>-latchkey, or the release name alone when
it already contains the chart name. Truncated so that "<fullname>-<service>"
still fits in 63 characters.
*/}}
{{- define "latchkey.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: <name>-<version>.
*/}}
{{- define "latchkey.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of one service's resources. Call with (dict "root" $ "name" "registration").
*/}}
{{- define "latchkey.componentName" -}}
{{- printf "%s-%s" (include "latchkey.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of one service (immutable once deployed). Call with (dict "root" $ "name" <service>).
*/}}
{{- define "latchkey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "latchkey.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
Standard labels of one service. Call with (dict "root" $ "name" <service>).
*/}}
{{- define "latchkey.labels" -}}
helm.sh/chart: {{ include "latchkey.chart" .root }}
{{ include "latchkey.selectorLabels" . }}
app.kubernetes.io/part-of: latchkey
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/*
Container image of one service: repository:tag, where the tag falls back to
.Values.image.tag and then to the chart's appVersion.
Call with (dict "root" $ "name" <service> "svc" <service values>).
*/}}
{{- define "latchkey.image" -}}
{{- $repository := required (printf "services.%s.image.repository is required" .name) .svc.image.repository }}
{{- $tag := .svc.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository (toString $tag) }}
{{- end }}

{{/*
Name of the existing Secret that holds one service's DATABASE_URL
(default: <fullname>-<service>-db). Call with (dict "root" $ "name" <service> "svc" <service values>).
*/}}
{{- define "latchkey.databaseSecretName" -}}
{{- $db := .svc.database | default dict }}
{{- $db.existingSecret | default (printf "%s-db" (include "latchkey.componentName" .)) }}
{{- end }}

{{/*
Non-secret environment of one service, as a YAML map of strings: commonEnv,
overridden by services.<name>.env, then the values the chart controls (bind
address, ports, service name, gRPC addresses of the enabled services).
Empty values are dropped: an empty variable is not the same as an unset one
to the services' config validation.
Call with (dict "root" $ "name" <service> "svc" <service values>).
*/}}
{{- define "latchkey.env" -}}
{{- $env := dict }}
{{- range $k, $v := .root.Values.commonEnv }}
{{- $_ := set $env $k $v }}
{{- end }}
{{- range $k, $v := (.svc.env | default dict) }}
{{- $_ := set $env $k $v }}
{{- end }}
{{- range $peer, $peerSvc := .root.Values.services }}
{{- if $peerSvc.enabled }}
{{- $_ := set $env (printf "%s_GRPC_ADDRESS" (upper $peer)) (printf "%s:%v" (include "latchkey.componentName" (dict "root" $.root "name" $peer)) $peerSvc.ports.grpc) }}
{{- end }}
{{- end }}
{{- $_ := set $env "HOST" "0.0.0.0" }}
{{- $_ := set $env "HTTP_PORT" (required (printf "services.%s.ports.http is required" .name) .svc.ports.http) }}
{{- $_ := set $env "GRPC_PORT" (required (printf "services.%s.ports.grpc is required" .name) .svc.ports.grpc) }}
{{- $_ := set $env "OTEL_SERVICE_NAME" (printf "latchkey-%s" .name) }}
{{- range $k := keys $env | sortAlpha }}
{{- $v := get $env $k }}
{{- if and (ne $k "DATABASE_URL") (ne (toString $v) "") (ne (toString $v) "<nil>") }}
{{ $k }}: {{ toString $v | quote }}
{{- end }}
{{- end }}
{{- end }}
