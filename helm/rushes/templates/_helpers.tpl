{{/*
Helpers, all prefixed with the chart's name. Names follow Bitnami's: `rushes.fullname`
is `<release>-rushes` (or the release name when it already holds the chart's), each
component adds a suffix.
*/}}

{{- define "rushes.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rushes.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rushes.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rushes.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Component names. */}}
{{- define "rushes.api.fullname" -}}
{{- printf "%s-api" (include "rushes.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "rushes.migrations.fullname" -}}
{{- printf "%s-migrate" (include "rushes.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "rushes.background.fullname" -}}
{{- printf "%s-background" (include "rushes.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "rushes.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "rushes.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "rushes.minio.fullname" -}}
{{- printf "%s-minio" (include "rushes.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{/*
A worker pool's name: `<fullname>-worker-<pool>`. Not truncated: validation refuses one
over 47 characters, so that its pods' host names (which start every lease the workers
take, and which the KEDA queries match) are never cut short by Kubernetes.
Call with (dict "context" $ "pool" $pool).
*/}}
{{- define "rushes.worker.fullname" -}}
{{- printf "%s-worker-%s" (include "rushes.fullname" .context) .pool.name -}}
{{- end -}}

{{/* Labels. */}}
{{- define "rushes.labels.standard" -}}
helm.sh/chart: {{ include "rushes.chart" . }}
{{ include "rushes.labels.matchLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "rushes.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "rushes.labels.matchLabels" -}}
app.kubernetes.io/name: {{ include "rushes.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Annotations every resource carries; call with the context. */}}
{{- define "rushes.annotations.common" -}}
{{- with .Values.commonAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Images: registry/repository:tag, or @digest. Call with
(dict "image" .Values.image "context" $).
*/}}
{{- define "rushes.image" -}}
{{- $registry := default .image.registry .context.Values.global.imageRegistry -}}
{{- $ref := .image.repository -}}
{{- if $registry -}}{{- $ref = printf "%s/%s" $registry $ref -}}{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (toString (default .context.Chart.AppVersion .image.tag)) -}}
{{- end -}}
{{- end -}}

{{- define "rushes.imagePullSecrets" -}}
{{- $secrets := concat .Values.global.imagePullSecrets .Values.image.pullSecrets | uniq -}}
{{- if $secrets -}}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "rushes.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rushes.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- secrets -- */}}

{{/*
Keep a generated secret across upgrades: the value already in the cluster if there is
one, else a new random one, cached for the rest of this render so that every template
that needs it gets the same. Call with
(dict "context" $ "secret" NAME "key" KEY "length" N).
*/}}
{{- define "rushes.secrets.generated" -}}
{{- $cache := .context.Values._generated | default dict -}}
{{- $_ := set .context.Values "_generated" $cache -}}
{{- $id := printf "%s/%s" .secret .key -}}
{{- if not (hasKey $cache $id) -}}
{{- $existing := lookup "v1" "Secret" (include "rushes.namespace" .context) .secret -}}
{{- $value := "" -}}
{{- if and $existing (hasKey ($existing.data | default dict) .key) -}}
{{- $value = index $existing.data .key | b64dec -}}
{{- else -}}
{{- $value = randAlphaNum (int .length) -}}
{{- end -}}
{{- $_ := set $cache $id $value -}}
{{- end -}}
{{- index $cache $id -}}
{{- end -}}

{{/* The Secret this chart writes the app's secrets into. */}}
{{- define "rushes.secretName" -}}
{{- include "rushes.fullname" . -}}
{{- end -}}

{{- define "rushes.database.secretName" -}}
{{- default (include "rushes.secretName" .) .Values.database.existingSecret -}}
{{- end -}}
{{- define "rushes.database.urlKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretUrlKey }}{{- else -}}database-url{{- end -}}
{{- end -}}
{{- define "rushes.database.kedaConnectionKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKedaConnectionKey }}{{- else -}}keda-connection{{- end -}}
{{- end -}}

{{- define "rushes.s3.secretName" -}}
{{- if .Values.s3.existingSecret -}}
{{- .Values.s3.existingSecret -}}
{{- else if and .Values.minio.enabled .Values.minio.auth.existingSecret -}}
{{- .Values.minio.auth.existingSecret -}}
{{- else -}}
{{- include "rushes.secretName" . -}}
{{- end -}}
{{- end -}}
{{- define "rushes.s3.accessKeyKey" -}}
{{- if .Values.s3.existingSecret -}}{{ .Values.s3.existingSecretAccessKeyKey }}
{{- else if and .Values.minio.enabled .Values.minio.auth.existingSecret -}}root-user
{{- else -}}s3-access-key{{- end -}}
{{- end -}}
{{- define "rushes.s3.secretKeyKey" -}}
{{- if .Values.s3.existingSecret -}}{{ .Values.s3.existingSecretSecretKeyKey }}
{{- else if and .Values.minio.enabled .Values.minio.auth.existingSecret -}}root-password
{{- else -}}s3-secret-key{{- end -}}
{{- end -}}

{{- define "rushes.webhooks.secretName" -}}
{{- default (include "rushes.secretName" .) .Values.webhooks.existingSecret -}}
{{- end -}}
{{- define "rushes.webhooks.secretKey" -}}
{{- if .Values.webhooks.existingSecret -}}{{ .Values.webhooks.existingSecretKey }}{{- else -}}webhook-signing-key{{- end -}}
{{- end -}}

{{- define "rushes.billing.secretName" -}}
{{- default (include "rushes.secretName" .) .Values.billing.existingSecret -}}
{{- end -}}
{{- define "rushes.billing.apiKeyKey" -}}
{{- if .Values.billing.existingSecret -}}{{ .Values.billing.existingSecretApiKeyKey }}{{- else -}}stripe-api-key{{- end -}}
{{- end -}}
{{- define "rushes.billing.webhookSecretKey" -}}
{{- if .Values.billing.existingSecret -}}{{ .Values.billing.existingSecretWebhookSecretKey }}{{- else -}}stripe-webhook-secret{{- end -}}
{{- end -}}

{{- define "rushes.metrics.secretName" -}}
{{- default (include "rushes.secretName" .) .Values.metrics.existingSecret -}}
{{- end -}}
{{- define "rushes.metrics.secretKey" -}}
{{- if .Values.metrics.existingSecret -}}{{ .Values.metrics.existingSecretKey }}{{- else -}}metrics-token{{- end -}}
{{- end -}}

{{/* The evaluation PostgreSQL's password and the evaluation MinIO's credentials. */}}
{{- define "rushes.postgresql.secretName" -}}
{{- default (include "rushes.postgresql.fullname" .) .Values.postgresql.auth.existingSecret -}}
{{- end -}}
{{- define "rushes.postgresql.passwordKey" -}}
{{- if .Values.postgresql.auth.existingSecret -}}{{ .Values.postgresql.auth.existingSecretPasswordKey }}{{- else -}}password{{- end -}}
{{- end -}}
{{- define "rushes.postgresql.password" -}}
{{- if .Values.postgresql.auth.existingSecret -}}
{{- $existing := lookup "v1" "Secret" (include "rushes.namespace" .) .Values.postgresql.auth.existingSecret -}}
{{- index ($existing.data | default dict) .Values.postgresql.auth.existingSecretPasswordKey | default "" | b64dec -}}
{{- else if .Values.postgresql.auth.password -}}
{{- .Values.postgresql.auth.password -}}
{{- else -}}
{{- include "rushes.secrets.generated" (dict "context" . "secret" (include "rushes.postgresql.fullname" .) "key" "password" "length" 32) -}}
{{- end -}}
{{- end -}}
{{- define "rushes.minio.secretName" -}}
{{- default (include "rushes.minio.fullname" .) .Values.minio.auth.existingSecret -}}
{{- end -}}
{{- define "rushes.minio.rootUser" -}}
{{- if .Values.minio.auth.rootUser -}}
{{- .Values.minio.auth.rootUser -}}
{{- else -}}
{{- include "rushes.secrets.generated" (dict "context" . "secret" (include "rushes.minio.fullname" .) "key" "root-user" "length" 20) -}}
{{- end -}}
{{- end -}}
{{- define "rushes.minio.rootPassword" -}}
{{- if .Values.minio.auth.rootPassword -}}
{{- .Values.minio.auth.rootPassword -}}
{{- else -}}
{{- include "rushes.secrets.generated" (dict "context" . "secret" (include "rushes.minio.fullname" .) "key" "root-password" "length" 40) -}}
{{- end -}}
{{- end -}}

{{/* The database URLs the chart's Secret holds (when no existingSecret is named). */}}
{{- define "rushes.database.url" -}}
{{- if .Values.postgresql.enabled -}}
{{- printf "postgresql+asyncpg://%s:%s@%s:5432/%s" .Values.postgresql.auth.username (include "rushes.postgresql.password" . | urlquery) (include "rushes.postgresql.fullname" .) .Values.postgresql.auth.database -}}
{{- else -}}
{{- .Values.database.url -}}
{{- end -}}
{{- end -}}
{{- define "rushes.database.kedaConnection" -}}
{{- if .Values.database.kedaConnection -}}
{{- .Values.database.kedaConnection -}}
{{- else if .Values.postgresql.enabled -}}
{{- printf "postgresql://%s:%s@%s.%s.svc:5432/%s?sslmode=disable" .Values.postgresql.auth.username (include "rushes.postgresql.password" . | urlquery) (include "rushes.postgresql.fullname" .) (include "rushes.namespace" .) .Values.postgresql.auth.database -}}
{{- else -}}
{{- $url := include "rushes.database.url" . | replace "postgresql+asyncpg://" "postgresql://" -}}
{{- regexReplaceAll "([?&])ssl=" $url "${1}sslmode=" -}}
{{- end -}}
{{- end -}}

{{/* ------------------------------------------------------------ app settings -- */}}

{{- define "rushes.s3.endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "%s:9000" (include "rushes.minio.fullname" .) -}}
{{- else -}}
{{- .Values.s3.endpoint -}}
{{- end -}}
{{- end -}}

{{/*
The secret settings every Rushes container reads, as env entries. Call with
(dict "context" $ "database" true "s3" true "webhooks" true), and "metrics" true for the
API, the one that asks for the metrics token. With billing on, "billing" true gives the
Stripe key (the API and the background roles, never GPU pools) and "billingWebhook" true
the webhook signing secret (the API alone verifies Stripe's webhook).
*/}}
{{- define "rushes.env.secrets" -}}
{{- $ := .context -}}
{{- if .database }}
- name: RUSHES_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "rushes.database.secretName" $ }}
      key: {{ include "rushes.database.urlKey" $ }}
{{- end }}
{{- if .s3 }}
- name: RUSHES_STORAGE__S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "rushes.s3.secretName" $ }}
      key: {{ include "rushes.s3.accessKeyKey" $ }}
- name: RUSHES_STORAGE__S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "rushes.s3.secretName" $ }}
      key: {{ include "rushes.s3.secretKeyKey" $ }}
{{- end }}
{{- if .webhooks }}
- name: RUSHES_WEBHOOKS__SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "rushes.webhooks.secretName" $ }}
      key: {{ include "rushes.webhooks.secretKey" $ }}
{{- end }}
{{- if and .metrics $.Values.metrics.enabled }}
- name: RUSHES_METRICS__TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "rushes.metrics.secretName" $ }}
      key: {{ include "rushes.metrics.secretKey" $ }}
{{- end }}
{{- if and .billing $.Values.billing.enabled }}
- name: RUSHES_BILLING__STRIPE_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "rushes.billing.secretName" $ }}
      key: {{ include "rushes.billing.apiKeyKey" $ }}
{{- end }}
{{- if and .billingWebhook $.Values.billing.enabled }}
- name: RUSHES_BILLING__WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "rushes.billing.secretName" $ }}
      key: {{ include "rushes.billing.webhookSecretKey" $ }}
{{- end }}
{{- end -}}

{{/* Annotations that roll pods when their configuration changes. */}}
{{- define "rushes.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}

{{/*
The writable places of a read-only root filesystem, as volumes and mounts: the data
folder and /tmp (emptyDir), and the bases volume when there is one. Call with
(dict "context" $ "data" SIZE "tmp" SIZE "bases" BOOL "shm" SIZE-or-empty).
*/}}
{{- define "rushes.volumes" -}}
- name: data
  emptyDir:
    sizeLimit: {{ .data }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmp }}
{{- if .shm }}
- name: shm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .shm }}
{{- end }}
{{- if and .bases .context.Values.bases.volume.enabled }}
- name: bases
  {{- toYaml .context.Values.bases.volume.source | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "rushes.volumeMounts" -}}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- if .shm }}
- name: shm
  mountPath: /dev/shm
{{- end }}
{{- if and .bases .context.Values.bases.volume.enabled }}
- name: bases
  mountPath: {{ .context.Values.bases.volume.mountPath }}
  readOnly: true
  {{- with .context.Values.bases.volume.subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* ----------------------------------------------------------------- workers -- */}}

{{/*
The pools with their defaults filled in, as YAML (read it back with fromYamlArray): a
pool's own keys win, `keda` key by key. (sprig's merge would drop a pool's 0 or "".)
*/}}
{{- define "rushes.worker.pools" -}}
{{- $defaults := .Values.workers.poolDefaults -}}
{{- $pools := list -}}
{{- range .Values.workers.pools -}}
{{- $pool := deepCopy $defaults -}}
{{- range $key, $value := . -}}
{{- if and (eq $key "keda") (kindIs "map" $value) -}}
{{- $keda := deepCopy $defaults.keda -}}
{{- range $k, $v := $value -}}{{- $_ := set $keda $k $v -}}{{- end -}}
{{- $_ := set $pool "keda" $keda -}}
{{- else if not (kindIs "invalid" $value) -}}
{{- $_ := set $pool $key $value -}}
{{- end -}}
{{- end -}}
{{- $pools = append $pools $pool -}}
{{- end -}}
{{- toYaml $pools -}}
{{- end -}}

{{/* Bytes in a memory size as `rushes-server worker --memory` reads it (80GiB, 24GB, 512MiB). */}}
{{- define "rushes.memoryBytes" -}}
{{- $number := regexFind "^[0-9]+" . -}}
{{- $unit := lower (trimPrefix $number .) -}}
{{- $units := dict "" 1 "b" 1 "kib" 1024 "mib" 1048576 "gib" 1073741824 "kb" 1000 "mb" 1000000 "gb" 1000000000 -}}
{{- mul (int64 $number) (int64 (get $units $unit)) -}}
{{- end -}}

{{- define "rushes.worker.hasRole" -}}
{{- if has .role .pool.roles -}}true{{- end -}}
{{- end -}}

{{/*
How a pool runs: ScaledJob (KEDA, train alone: each worker exits once idle), ScaledObject
(KEDA, any pool that generates: its resident process is never idle by itself; scale-in
sends SIGTERM, and a fine-tune checkpoints and goes back to the queue within the grace
period) or Deployment.
*/}}
{{- define "rushes.worker.kind" -}}
{{- if not .context.Values.keda.enabled -}}Deployment
{{- else if eq (join "," .pool.roles) "train" -}}ScaledJob
{{- else -}}ScaledObject
{{- end -}}
{{- end -}}

{{- define "rushes.worker.args" -}}
{{- $device := .pool.device | default (ternary "cuda" "cpu" (gt (int .pool.gpus) 0)) -}}
- worker
- --roles
- {{ join "," .pool.roles }}
- --device
- {{ $device }}
- --memory
- {{ .pool.memory | quote }}
- --max-jobs
- {{ .pool.maxJobs | quote }}
{{- if eq (include "rushes.worker.kind" .) "ScaledJob" }}
- --exit-when-idle
- {{ .pool.keda.exitWhenIdleSeconds | quote }}
{{- end }}
{{- end -}}

{{/*
The pool's queue depth for KEDA's PostgreSQL scaler: the work waiting that this pool
can take, plus the work its own workers hold. A worker's lease owner starts with its
host name, which is its pod's name, `<pool fullname>-<hash or job suffix>-<suffix>`, so
the running part counts only this pool's work.
- train: queued fine-tunes (`fine_tune_job`) whose estimate fits the pool's `--memory`;
- generate: queued generations (`generation`) on the pool's bases (all when none named).
Statuses are matched in both spellings: the enum's name is what the tables hold today
('QUEUED'), its value ('queued') is what the app's contract names.
*/}}
{{- define "rushes.worker.query" -}}
{{- if .pool.keda.query -}}
{{- .pool.keda.query -}}
{{- else -}}
{{- $owner := printf "lease_owner ~ '^%s-[a-z0-9]+-[a-z0-9]+:'" (include "rushes.worker.fullname" .) -}}
{{- $queued := "status IN ('QUEUED', 'queued')" -}}
{{- $running := "status IN ('RUNNING', 'running')" -}}
{{- $parts := list -}}
{{- if has "train" .pool.roles -}}
{{- $parts = append $parts (printf "SELECT COUNT(*) FROM fine_tune_job WHERE (%s AND estimated_bytes <= %s) OR (%s AND %s)" $queued (include "rushes.memoryBytes" .pool.memory) $running $owner) -}}
{{- end -}}
{{- if has "generate" .pool.roles -}}
{{- $bases := "" -}}
{{- if and .pool.bases (not (has "train" .pool.roles)) -}}
{{- $quoted := list -}}
{{- range .pool.bases -}}{{- $quoted = append $quoted (printf "'%s'" .) -}}{{- end -}}
{{- $bases = printf " AND base_id IN (%s)" (join ", " $quoted) -}}
{{- end -}}
{{- $parts = append $parts (printf "SELECT COUNT(*) FROM generation WHERE (%s%s) OR (%s AND %s)" $queued $bases $running $owner) -}}
{{- end -}}
{{- if eq (len $parts) 1 -}}
{{- first $parts -}}
{{- else -}}
{{- printf "SELECT (%s) + (%s)" (index $parts 0) (index $parts 1) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rushes.worker.target" -}}
{{- if .pool.keda.targetQueueLength -}}
{{- .pool.keda.targetQueueLength -}}
{{- else if has "train" .pool.roles -}}
{{- .pool.maxJobs -}}
{{- else -}}
4
{{- end -}}
{{- end -}}

{{/*
The environment a pool's worker overrides: a generate-only pool that names bases is
given just those (the worker serves the bases its settings offer).
*/}}
{{- define "rushes.worker.env" -}}
{{- if and .pool.bases (not (has "train" .pool.roles)) }}
{{- $folders := dict -}}
{{- range .pool.bases -}}
{{- if hasKey $.context.Values.bases.folders . -}}
{{- $_ := set $folders . (get $.context.Values.bases.folders .) -}}
{{- end -}}
{{- end }}
- name: RUSHES_BASES__FOLDERS
  value: {{ toJson $folders | quote }}
- name: RUSHES_BASES__TINY
  value: {{ has "tiny" .pool.bases | quote }}
{{- end }}
{{- end -}}

{{/*
The deployment's C2PA signing certificate, the same in every worker pod (without it each
pod would make its own local CA in its emptyDir). The Secret's two keys are mounted as
files the settings name; defaultMode 0400 with the pod's fsGroup: the kubelet hands the
files to that group, readable by it (0440), so the non-root worker reads the key and no
other user can. Call with the context; each renders nothing without provenance.existingSecret.
*/}}
{{- define "rushes.provenance.mountPath" -}}/etc/rushes/provenance{{- end -}}

{{- define "rushes.provenance.env" -}}
{{- if .Values.provenance.existingSecret }}
- name: RUSHES_PROVENANCE__CERTIFICATE_FILE
  value: {{ include "rushes.provenance.mountPath" . }}/chain.pem
- name: RUSHES_PROVENANCE__PRIVATE_KEY_FILE
  value: {{ include "rushes.provenance.mountPath" . }}/key.pem
{{- end }}
{{- end -}}

{{- define "rushes.provenance.volumeMount" -}}
{{- if .Values.provenance.existingSecret }}
- name: provenance
  mountPath: {{ include "rushes.provenance.mountPath" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "rushes.provenance.volume" -}}
{{- if .Values.provenance.existingSecret }}
- name: provenance
  secret:
    secretName: {{ .Values.provenance.existingSecret }}
    defaultMode: 0400
    items:
      - key: {{ .Values.provenance.existingSecretCertificateKey }}
        path: chain.pem
      - key: {{ .Values.provenance.existingSecretPrivateKeyKey }}
        path: key.pem
{{- end }}
{{- end -}}

{{/*
A worker pod's template, the same for a Deployment and a ScaledJob's Jobs. Call with
(dict "context" $ "pool" $pool "restartPolicy" "Always"|"Never").
*/}}
{{- define "rushes.worker.podTemplate" -}}
{{- $ := .context -}}
{{- $pool := .pool -}}
{{- $name := include "rushes.worker.fullname" . -}}
metadata:
  labels:
    {{- include "rushes.labels.standard" $ | nindent 4 }}
    app.kubernetes.io/component: worker
    rushes.dev/pool: {{ $pool.name }}
    {{- with $.Values.workers.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- include "rushes.checksums" $ | nindent 4 }}
    {{- with $.Values.workers.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with include "rushes.imagePullSecrets" $ }}
  {{- . | nindent 2 }}
  {{- end }}
  serviceAccountName: {{ include "rushes.serviceAccountName" $ }}
  automountServiceAccountToken: false
  restartPolicy: {{ .restartPolicy }}
  terminationGracePeriodSeconds: {{ $.Values.workers.terminationGracePeriodSeconds }}
  {{- with $.Values.workers.runtimeClassName }}
  runtimeClassName: {{ . }}
  {{- end }}
  {{- with $.Values.workers.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $.Values.podSecurityContext | nindent 4 }}
  {{- with $pool.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $pool.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $pool.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $.Values.workers.initContainers }}
  initContainers:
    {{- tpl (toYaml .) $ | nindent 4 }}
  {{- end }}
  containers:
    - name: worker
      image: {{ include "rushes.image" (dict "image" $.Values.workers.image "context" $) }}
      imagePullPolicy: {{ $.Values.workers.image.pullPolicy }}
      securityContext:
        {{- toYaml $.Values.containerSecurityContext | nindent 8 }}
      args:
        {{- include "rushes.worker.args" . | nindent 8 }}
      envFrom:
        - configMapRef:
            name: {{ include "rushes.fullname" $ }}
      env:
        {{- include "rushes.env.secrets" (dict "context" $ "database" true "s3" true "webhooks" true) | trim | nindent 8 }}
        {{- with include "rushes.worker.env" . | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with include "rushes.provenance.env" $ | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- if $.Values.metrics.enabled }}
        # The worker serves its metrics on the pod's address (worker/metrics.py).
        - name: RUSHES_METRICS__WORKER_PORT
          value: {{ $.Values.metrics.workerPort | quote }}
        - name: RUSHES_METRICS__WORKER_HOST
          value: "0.0.0.0"
        {{- end }}
        {{- with $.Values.workers.extraEnvVars }}
        {{- tpl (toYaml .) $ | nindent 8 }}
        {{- end }}
      {{- if $.Values.metrics.enabled }}
      ports:
        - name: metrics
          containerPort: {{ $.Values.metrics.workerPort }}
          protocol: TCP
      {{- end }}
      resources:
        {{- $resources := deepCopy ($pool.resources | default dict) -}}
        {{- if gt (int $pool.gpus) 0 -}}
        {{- $limits := $resources.limits | default dict -}}
        {{- $_ := set $limits $.Values.workers.gpuResourceName (int $pool.gpus) -}}
        {{- $_ := set $resources "limits" $limits -}}
        {{- end }}
        {{- toYaml $resources | nindent 8 }}
      volumeMounts:
        {{- include "rushes.volumeMounts" (dict "context" $ "bases" true "shm" $.Values.workers.shmSizeLimit) | nindent 8 }}
        {{- with include "rushes.provenance.volumeMount" $ | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $.Values.workers.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    {{- include "rushes.volumes" (dict "context" $ "data" $.Values.workers.dataDirSizeLimit "tmp" $.Values.workers.tmpSizeLimit "bases" true "shm" $.Values.workers.shmSizeLimit) | nindent 4 }}
    {{- with include "rushes.provenance.volume" $ | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $.Values.workers.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* -------------------------------------------------------------- validation -- */}}

{{/* Every problem in the values at once, in words, before anything is rendered. */}}
{{- define "rushes.validateValues" -}}
{{- $messages := list -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.database.existingSecret) (not .Values.database.url) -}}
{{- $messages = append $messages "database: set database.url (postgresql+asyncpg://user:password@host:5432/db), or database.existingSecret, or postgresql.enabled=true for an evaluation database" -}}
{{- end -}}
{{- if and .Values.postgresql.enabled (or .Values.database.url .Values.database.existingSecret) -}}
{{- $messages = append $messages "database: postgresql.enabled runs an in-chart database; leave database.url and database.existingSecret empty with it" -}}
{{- end -}}
{{- if and (not .Values.minio.enabled) (not .Values.s3.endpoint) -}}
{{- $messages = append $messages "s3: set s3.endpoint (host or host:port, no scheme), or minio.enabled=true for an evaluation MinIO" -}}
{{- end -}}
{{- if and (not .Values.minio.enabled) (not .Values.s3.existingSecret) (or (not .Values.s3.accessKey) (not .Values.s3.secretKey)) -}}
{{- $messages = append $messages "s3: set s3.accessKey and s3.secretKey, or s3.existingSecret" -}}
{{- end -}}
{{- if and .Values.minio.enabled (or .Values.s3.endpoint .Values.s3.existingSecret) -}}
{{- $messages = append $messages "s3: minio.enabled runs an in-chart MinIO; leave s3.endpoint and s3.existingSecret empty with it" -}}
{{- end -}}
{{- if and .Values.webhooks.signingKey (lt (len .Values.webhooks.signingKey) 32) -}}
{{- $messages = append $messages "webhooks: webhooks.signingKey must be at least 32 characters" -}}
{{- end -}}
{{- if and .Values.bases.folders (not .Values.bases.volume.enabled) (not .Values.workers.extraVolumes) -}}
{{- $messages = append $messages "bases: bases.folders names folders, but no volume holds them: set bases.volume (or mount one with api/workers extraVolumes)" -}}
{{- end -}}
{{- if and .Values.bases.volume.enabled (not .Values.bases.volume.source) -}}
{{- $messages = append $messages "bases: bases.volume.enabled needs bases.volume.source (e.g. persistentVolumeClaim: {claimName: rushes-bases, readOnly: true})" -}}
{{- end -}}
{{- if and .Values.billing.enabled (not .Values.billing.existingSecret) (not .Values.billing.stripeApiKey) -}}
{{- $messages = append $messages "billing: billing.enabled needs billing.stripeApiKey (sk_... or rk_...), or billing.existingSecret" -}}
{{- end -}}
{{- if and .Values.billing.enabled (not .Values.billing.existingSecret) (not .Values.billing.webhookSecret) -}}
{{- $messages = append $messages "billing: billing.enabled needs billing.webhookSecret (the whsec_... of the Stripe webhook endpoint at /v1/billing/stripe/webhook), or billing.existingSecret: without it every webhook is refused, and payments and subscriptions never reach Rushes" -}}
{{- end -}}
{{- if and .Values.provenance.existingSecret (not .Values.podSecurityContext.fsGroup) -}}
{{- $messages = append $messages "provenance: provenance.existingSecret mounts the signing key readable by the pod's fsGroup only: set podSecurityContext.fsGroup (the chart's default is 10001)" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- $messages = append $messages "metrics: metrics.serviceMonitor.enabled scrapes what metrics.enabled serves: set metrics.enabled=true too" -}}
{{- end -}}
{{- $offered := keys .Values.bases.folders -}}
{{- if .Values.bases.tiny -}}{{- $offered = append $offered "tiny" -}}{{- end -}}
{{- $seen := dict -}}
{{- range (include "rushes.worker.pools" . | fromYamlArray) -}}
{{- $pool := . -}}
{{- if hasKey $seen $pool.name -}}
{{- $messages = append $messages (printf "workers: two pools are named %q" $pool.name) -}}
{{- end -}}
{{- $_ := set $seen $pool.name true -}}
{{- $name := include "rushes.worker.fullname" (dict "context" $ "pool" $pool) -}}
{{- if gt (len $name) 47 -}}
{{- $messages = append $messages (printf "workers: pool %q makes the name %q, over 47 characters: shorten the pool or release name (or set fullnameOverride), so that pod host names stay whole" $pool.name $name) -}}
{{- end -}}
{{- if and $pool.bases (has "train" $pool.roles) -}}
{{- $messages = append $messages (printf "workers: pool %q takes fine-tunes, which may be on any base: only generate-only pools may name bases" $pool.name) -}}
{{- end -}}
{{- range $pool.bases -}}
{{- if not (has . $offered) -}}
{{- $messages = append $messages (printf "workers: pool %q names base %q, which bases.folders (or bases.tiny) does not offer" $pool.name .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $messages -}}
{{- printf "\nVALUES VALIDATION:\n  - %s" (join "\n  - " $messages) | fail -}}
{{- end -}}
{{- end -}}
