{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "latchkey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name prefix: <release>-latchkey, or the release name alone when
it already contains the chart name. Truncated so that "<fullname>-<service>-migration"
still fits in 63 characters.
*/}}
{{- define "latchkey.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
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
Selector labels of one component (immutable once deployed). Call with (dict "root" $ "name" <component>).
*/}}
{{- define "latchkey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "latchkey.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
Standard labels of one component. Call with (dict "root" $ "name" <component>).
*/}}
{{- define "latchkey.labels" -}}
helm.sh/chart: {{ include "latchkey.chart" .root }}
{{ include "latchkey.selectorLabels" . }}
app.kubernetes.io/part-of: latchkey
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/*
Labels of chart-wide resources (no component). Call with the root context.
*/}}
{{- define "latchkey.commonLabels" -}}
helm.sh/chart: {{ include "latchkey.chart" . }}
app.kubernetes.io/name: {{ include "latchkey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: latchkey
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
An image reference: repository:tag, where the tag falls back to .Values.image.tag
and then to the chart's appVersion. Call with (dict "root" $ "image" <image values> "what" <values path>).
*/}}
{{- define "latchkey.image" -}}
{{- $repository := required (printf "%s.repository is required" .what) .image.repository }}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository (toString $tag) }}
{{- end }}

{{/*
A value as an environment variable string. YAML numbers reach templates as
float64, which toString would print as 2.592e+06: whole numbers print as integers.
*/}}
{{- define "latchkey.envString" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}
{{- int64 . | toString }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
Name of the chart-created Secret that holds inline (test-cluster) credentials.
*/}}
{{- define "latchkey.credentialsSecretName" -}}
{{- printf "%s-credentials" (include "latchkey.fullname" .) }}
{{- end }}

{{/*
Whether the chart creates the credentials Secret ("true" or "").
*/}}
{{- define "latchkey.hasInlineCredentials" -}}
{{- $v := .Values }}
{{- $inlineSigningKeys := false }}
{{- range $name, $svc := $v.services }}
{{- if and $svc.enabled $svc.calls (($svc.internalCalls | default dict).signingKeys | default dict).keys }}
{{- $inlineSigningKeys = true }}
{{- end }}
{{- end }}
{{- if or $v.postgresql.urls $v.keyEncryption.keys $inlineSigningKeys $v.redis.auth.password $v.kafka.sasl.password }}true{{ end }}
{{- end }}

{{/*
The Secret and key holding one service's DATABASE_URL, as "name/key".
Call with (dict "root" $ "name" <service> "svc" <service values>).
*/}}
{{- define "latchkey.databaseSecretRef" -}}
{{- $db := .svc.database | default dict }}
{{- $key := $db.secretKey | default (printf "%s_DATABASE_URL" (upper .name)) }}
{{- if $db.existingSecret }}
{{- printf "%s/%s" $db.existingSecret $key }}
{{- else if hasKey (.root.Values.postgresql.urls | default dict) .name }}
{{- printf "%s/%s_DATABASE_URL" (include "latchkey.credentialsSecretName" .root) (upper .name) }}
{{- else if .root.Values.postgresql.existingSecret }}
{{- printf "%s/%s" .root.Values.postgresql.existingSecret $key }}
{{- else }}
{{- fail (printf "services.%s needs a database URL: set postgresql.existingSecret (a Secret with key %s), services.%s.database.existingSecret, or postgresql.urls.%s on a test cluster" .name $key .name .name) }}
{{- end }}
{{- end }}

{{/*
The Secret and key holding one calling service's INTERNAL_CALL_SIGNING_KEYS (its own private
keys), as "name/key". Call with (dict "root" $ "name" <service> "svc" <service values>).
*/}}
{{- define "latchkey.internalCallSigningSecretRef" -}}
{{- $sk := ((.svc.internalCalls | default dict).signingKeys | default dict) }}
{{- if $sk.existingSecret }}
{{- printf "%s/%s" $sk.existingSecret ($sk.secretKey | default "INTERNAL_CALL_SIGNING_KEYS") }}
{{- else if $sk.keys }}
{{- printf "%s/%s_INTERNAL_CALL_SIGNING_KEYS" (include "latchkey.credentialsSecretName" .root) (upper .name | replace "-" "_") }}
{{- else }}
{{- fail (printf "services.%s.internalCalls.signingKeys.existingSecret is empty: %s calls %s and signs those calls with its own key. Create one with node tools/scripts/internal-call-keys.mjs %s (a Secret with key INTERNAL_CALL_SIGNING_KEYS, and the public key for services.%s.internalCalls.publicKeys); or set services.%s.internalCalls.signingKeys.keys on a test cluster" .name .name (join ", " .svc.calls) .name .name .name) }}
{{- end }}
{{- end }}

{{/*
INTERNAL_CALL_TRUSTED_KEYS of one service that serves internal calls: the public keys
(services.<caller>.internalCalls.publicKeys) of each enabled service whose `calls` name it, and
of no other service, as JSON. Call with (dict "root" $ "name" <service> "svc" <service values>).
*/}}
{{- define "latchkey.internalCallTrustedKeys" -}}
{{- $trusted := dict }}
{{- range $caller, $c := .root.Values.services }}
{{- if and $c.enabled (has $.name ($c.calls | default list)) }}
{{- $pub := (($c.internalCalls | default dict).publicKeys | default list) }}
{{- if not $pub }}
{{- fail (printf "services.%s.internalCalls.publicKeys is empty: %s calls %s, which must trust %s's public signing key (a JWK: node tools/scripts/internal-call-keys.mjs %s prints a new pair)" $caller $caller $.name $caller $caller) }}
{{- end }}
{{- $_ := set $trusted $caller (dict "keys" $pub) }}
{{- end }}
{{- end }}
{{- if not $trusted }}
{{- fail (printf "services.%s.internalCalls.serves is true but no enabled service calls it: set it to false, or enable its callers" .name) }}
{{- end }}
{{- toJson $trusted }}
{{- end }}

{{/*
The Secret and key holding KEY_ENCRYPTION_KEYS, as "name/key".
*/}}
{{- define "latchkey.kekSecretRef" -}}
{{- $kek := .Values.keyEncryption }}
{{- if $kek.existingSecret }}
{{- printf "%s/%s" $kek.existingSecret ($kek.secretKey | default "KEY_ENCRYPTION_KEYS") }}
{{- else if $kek.keys }}
{{- printf "%s/KEY_ENCRYPTION_KEYS" (include "latchkey.credentialsSecretName" .) }}
{{- else }}
{{- fail "keyEncryption.existingSecret is empty: name the Secret that holds KEY_ENCRYPTION_KEYS (\"<kid>:<base64 of 32 bytes>\"), e.g. kubectl create secret generic latchkey-key-encryption --from-literal=KEY_ENCRYPTION_KEYS=k1:$(openssl rand -base64 32); or set keyEncryption.keys on a test cluster" }}
{{- end }}
{{- end }}

{{/*
The Secret and key holding the Redis password, as "name/key" ('' without auth).
*/}}
{{- define "latchkey.redisSecretRef" -}}
{{- $auth := .Values.redis.auth }}
{{- if $auth.enabled }}
{{- if $auth.existingSecret }}
{{- printf "%s/%s" $auth.existingSecret ($auth.passwordKey | default "redis-password") }}
{{- else if $auth.password }}
{{- printf "%s/REDIS_PASSWORD" (include "latchkey.credentialsSecretName" .) }}
{{- else }}
{{- fail "redis.auth.enabled is true but redis.auth.existingSecret is empty: name the Secret that holds the Redis password (or set redis.auth.password on a test cluster)" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Secret and key holding the Kafka SASL password, as "name/key" ('' without SASL).
*/}}
{{- define "latchkey.kafkaSaslSecretRef" -}}
{{- $sasl := .Values.kafka.sasl }}
{{- if $sasl.enabled }}
{{- if $sasl.existingSecret }}
{{- printf "%s/%s" $sasl.existingSecret ($sasl.passwordKey | default "password") }}
{{- else if $sasl.password }}
{{- printf "%s/KAFKA_SASL_PASSWORD" (include "latchkey.credentialsSecretName" .) }}
{{- else }}
{{- fail "kafka.sasl.enabled is true but kafka.sasl.existingSecret is empty: name the Secret that holds the SASL password (Strimzi: the KafkaUser's Secret, key password)" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A secretKeyRef env entry from a "name/key" reference. Call with (dict "env" <VAR> "ref" <name/key>).
*/}}
{{- define "latchkey.secretEnv" -}}
{{- $parts := splitList "/" .ref }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ first $parts }}
      key: {{ last $parts }}
{{- end }}

{{/*
REDIS_URL of the services that use Redis in standalone mode: redis[s]://host:port/db,
without credentials (the service reads REDIS_USERNAME and REDIS_PASSWORD itself).
*/}}
{{- define "latchkey.redisUrl" -}}
{{- $r := .Values.redis }}
{{- $scheme := ternary "rediss" "redis" (eq (toString $r.tls.enabled) "true") }}
{{- printf "%s://%s:%s/%s" $scheme $r.host (include "latchkey.envString" $r.port) (include "latchkey.envString" $r.database) }}
{{- end }}

{{/*
Non-secret environment of one service, as a YAML map of strings (its ConfigMap):
commonEnv, then services.<name>.env, then what the chart derives from its
settings. Empty values are dropped: an empty variable is not the same as an
unset one to the services' config validation.
Call with (dict "root" $ "name" <service> "svc" <service values>).
*/}}
{{- define "latchkey.env" -}}
{{- $v := .root.Values }}
{{- $env := dict }}
{{- range $k, $val := $v.commonEnv }}
{{- $_ := set $env $k $val }}
{{- end }}
{{- range $k, $val := (.svc.env | default dict) }}
{{- $_ := set $env $k $val }}
{{- end }}
{{- $_ := set $env "HOST" "0.0.0.0" }}
{{- $_ := set $env "HTTP_PORT" (required (printf "services.%s.ports.http is required" .name) .svc.ports.http) }}
{{- $_ := set $env "GRPC_PORT" (required (printf "services.%s.ports.grpc is required" .name) .svc.ports.grpc) }}
{{- $_ := set $env "KAFKA_BROKERS" (join "," (required "kafka.brokers is empty: list the bootstrap brokers as host:port" $v.kafka.brokers)) }}
{{- $_ := set $env "KAFKA_CLIENT_ID" (printf "%s%s" $v.kafka.clientIdPrefix .name) }}
{{- $_ := set $env "KAFKA_SSL" (ternary "true" "false" (eq (toString $v.kafka.tls.enabled) "true")) }}
{{- if $v.kafka.tls.enabled }}
{{- if $v.kafka.tls.caSecret }}
{{- $_ := set $env "KAFKA_SSL_CA_FILE" (printf "/etc/latchkey/kafka/%s" $v.kafka.tls.caKey) }}
{{- end }}
{{- if $v.kafka.tls.clientCertSecret }}
{{- $_ := set $env "KAFKA_SSL_CERT_FILE" (printf "/etc/latchkey/kafka-client/%s" $v.kafka.tls.certKey) }}
{{- $_ := set $env "KAFKA_SSL_KEY_FILE" (printf "/etc/latchkey/kafka-client/%s" $v.kafka.tls.keyKey) }}
{{- end }}
{{- end }}
{{- if $v.kafka.sasl.enabled }}
{{- $_ := set $env "KAFKA_SASL_MECHANISM" $v.kafka.sasl.mechanism }}
{{- $_ := set $env "KAFKA_SASL_USERNAME" (required "kafka.sasl.username is required with SASL" $v.kafka.sasl.username) }}
{{- end }}
{{- if .svc.redis }}
{{- $r := $v.redis }}
{{- $_ := set $env "REDIS_MODE" $r.mode }}
{{- if eq $r.mode "sentinel" }}
{{- $_ := set $env "REDIS_SENTINELS" (join "," (required "redis.sentinel.nodes is empty: list the Sentinels as host:port" $r.sentinel.nodes)) }}
{{- $_ := set $env "REDIS_SENTINEL_MASTER_NAME" (required "redis.sentinel.masterName is required in sentinel mode" $r.sentinel.masterName) }}
{{- $_ := set $env "REDIS_DATABASE" $r.database }}
{{- else if eq $r.mode "cluster" }}
{{- $_ := set $env "REDIS_CLUSTER_NODES" (join "," (required "redis.cluster.nodes is empty: list the seed nodes as host:port" $r.cluster.nodes)) }}
{{- if ne (int64 $r.database) 0 }}
{{- fail (printf "redis.database is %v but a Redis Cluster has database 0 only: set redis.database=0" $r.database) }}
{{- end }}
{{- else }}
{{- $_ := set $env "REDIS_URL" (include "latchkey.redisUrl" .root) }}
{{- end }}
{{- if and $r.auth.enabled $r.auth.username }}
{{- $_ := set $env "REDIS_USERNAME" $r.auth.username }}
{{- end }}
{{- $_ := set $env "REDIS_TLS" (ternary "true" "false" (eq (toString $r.tls.enabled) "true")) }}
{{- if $r.tls.enabled }}
{{- if $r.tls.caSecret }}
{{- $_ := set $env "REDIS_TLS_CA_FILE" (printf "/etc/latchkey/redis/%s" $r.tls.caKey) }}
{{- end }}
{{- if $r.tls.clientCertSecret }}
{{- $_ := set $env "REDIS_TLS_CERT_FILE" (printf "/etc/latchkey/redis-client/%s" $r.tls.certKey) }}
{{- $_ := set $env "REDIS_TLS_KEY_FILE" (printf "/etc/latchkey/redis-client/%s" $r.tls.keyKey) }}
{{- end }}
{{- if $r.tls.serverName }}
{{- $_ := set $env "REDIS_TLS_SERVERNAME" $r.tls.serverName }}
{{- end }}
{{- end }}
{{- end }}
{{- range $callee := .svc.calls }}
{{- $calleeSvc := get $v.services $callee }}
{{- $_ := set $env (printf "%s_GRPC_ADDRESS" (upper $callee | replace "-" "_")) (printf "%s:%s" (include "latchkey.componentName" (dict "root" $.root "name" $callee)) (include "latchkey.envString" $calleeSvc.ports.grpc)) }}
{{- end }}
{{- if (.svc.internalCalls | default dict).serves }}
{{- $_ := set $env "INTERNAL_CALL_TRUSTED_KEYS" (include "latchkey.internalCallTrustedKeys" .) }}
{{- end }}
{{- if ne .svc.tokens "none" }}
{{- $_ := set $env "AUTH_ISSUER" (required "tokens.issuer is required: the public base URL of auth (e.g. https://auth.example.com)" $v.tokens.issuer) }}
{{- $_ := set $env "AUTH_AUDIENCE" $v.tokens.audience }}
{{- end }}
{{- if eq .svc.tokens "verifier" }}
{{- $auth := required "services.auth must exist: verifiers fetch its JWKS" $v.services.auth }}
{{- $jwks := $v.tokens.jwksUrl | default (printf "http://%s:%v/.well-known/jwks.json" (include "latchkey.componentName" (dict "root" .root "name" "auth")) (include "latchkey.envString" $auth.ports.http)) }}
{{- $_ := set $env "AUTH_JWKS_URL" $jwks }}
{{- end }}
{{- range $k := keys $env | sortAlpha }}
{{- $s := include "latchkey.envString" (get $env $k) }}
{{- if and (ne $s "") (ne $s "<nil>") }}
{{ $k }}: {{ $s | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Effective SHUTDOWN_TIMEOUT_MS of one service in whole seconds (rounded up).
*/}}
{{- define "latchkey.shutdownSeconds" -}}
{{- $ms := get (.svc.env | default dict) "SHUTDOWN_TIMEOUT_MS" | default (get .root.Values.commonEnv "SHUTDOWN_TIMEOUT_MS") | default 10000 }}
{{- div (add (int64 $ms) 999) 1000 }}
{{- end }}

{{/*
Checks that span several values and that the schema cannot express. Included once
(by secret.yaml) so that a bad combination fails with one clear message.
*/}}
{{- define "latchkey.validate" -}}
{{- $v := .Values }}
{{- if and $v.ingress.enabled $v.gateway.enabled }}
{{- fail "ingress.enabled and gateway.enabled are both true: route device traffic through one of them" }}
{{- end }}
{{- if and $v.gateway.enabled (not $v.gateway.parentRefs) }}
{{- fail "gateway.enabled is true but gateway.parentRefs is empty: name the Gateway (and listener) to attach the routes to" }}
{{- end }}
{{- range $name, $svc := $v.services }}
{{- if $svc.enabled }}
{{- range $svc.calls }}
{{- if not (hasKey $v.services .) }}
{{- fail (printf "services.%s.calls names %q, which is not a service of this chart" $name .) }}
{{- end }}
{{- end }}
{{- if and $svc.autoscaling.enabled (gt (int64 $svc.autoscaling.minReplicas) (int64 $svc.autoscaling.maxReplicas)) }}
{{- fail (printf "services.%s.autoscaling.minReplicas (%v) is greater than maxReplicas (%v)" $name $svc.autoscaling.minReplicas $svc.autoscaling.maxReplicas) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
