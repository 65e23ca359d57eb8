{{/*
Named templates. The ones meant for your own charts take a dict:
  (dict "root" $ "values" .Values.guardrail)
"root" is the calling chart's top-level context (its Release and its Files: in "chart" rules
mode the rules ConfigMap is rendered from the CALLING chart's rules/ directory), "values" the
guardrail-proxy values (a dependency's values, merged with this chart's defaults).

  guardrail-proxy.container       the proxy container (a list item, for `containers:`)
  guardrail-proxy.volumes         its volumes (list items, for `volumes:`)
  guardrail-proxy.podAnnotations  prometheus.io/* scrape annotations (map entries)
  guardrail-proxy.rulesConfigMap  the rules ConfigMap (a whole document)
*/}}

{{- define "guardrail-proxy.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "guardrail-proxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "guardrail-proxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "guardrail-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "guardrail-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guardrail-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The rules ConfigMap's name: the same from this chart and from a calling chart. */}}
{{- define "guardrail-proxy.rulesConfigMapName" -}}
{{- if eq .values.rules.source "existing" -}}
{{- required "rules.existingConfigMap is required when rules.source is existing" .values.rules.existingConfigMap -}}
{{- else -}}
{{- printf "%s-guardrail-rules" .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Relative path → content of every rule file (calling chart's rules/*.yaml, then overrides), as YAML. */}}
{{- define "guardrail-proxy.ruleFiles" -}}
{{- $files := dict -}}
{{- range $path, $_ := .root.Files.Glob "rules/**.{yaml,yml}" -}}
{{- if not (hasPrefix "rules/schema/" $path) -}}
{{- $_ := set $files (trimPrefix "rules/" $path) ($.root.Files.Get $path) -}}
{{- end -}}
{{- end -}}
{{- range $path, $content := .values.rules.overrides -}}
{{- $_ := set $files $path $content -}}
{{- end -}}
{{- toYaml $files -}}
{{- end -}}

{{/* ConfigMap keys cannot hold "/": injection/override.yaml is stored as injection__override.yaml. */}}
{{- define "guardrail-proxy.ruleKey" -}}
{{- . | replace "/" "__" -}}
{{- end -}}

{{- define "guardrail-proxy.rulesConfigMap" -}}
{{- if eq .values.rules.source "chart" }}
{{- $files := include "guardrail-proxy.ruleFiles" . | fromYaml }}
{{- if not $files }}
{{- fail "rules.source is chart but the calling chart has no rules/*.yaml files (use rules.source=image or existing)" }}
{{- end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "guardrail-proxy.rulesConfigMapName" . }}
  labels:
    app.kubernetes.io/name: guardrail-proxy
    app.kubernetes.io/instance: {{ .root.Release.Name }}
    app.kubernetes.io/component: rules
data:
{{- range $path := keys $files | sortAlpha }}
  {{ include "guardrail-proxy.ruleKey" $path }}: {{ get $files $path | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "guardrail-proxy.image" -}}
{{- $tag := .values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" .values.image.repository $tag -}}
{{- end -}}

{{- define "guardrail-proxy.container" -}}
{{- $v := .values -}}
- name: guardrail-proxy
  image: {{ include "guardrail-proxy.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args: ["serve", "--host", "0.0.0.0", "--port", {{ $v.port | toString | quote }}]
  ports:
    - name: guardrail
      containerPort: {{ $v.port }}
      protocol: TCP
  env:
    - name: GUARDRAIL_UPSTREAM_URL
      value: {{ $v.upstream.url | quote }}
    - name: GUARDRAIL_UPSTREAM_API_KEY
      valueFrom:
        secretKeyRef:
          name: {{ required "upstream.apiKeySecret.name is required" $v.upstream.apiKeySecret.name }}
          key: {{ $v.upstream.apiKeySecret.key }}
    {{- if $v.redis.urlSecret.name }}
    - name: GUARDRAIL_REDIS_URL
      valueFrom:
        secretKeyRef:
          name: {{ $v.redis.urlSecret.name }}
          key: {{ $v.redis.urlSecret.key }}
    {{- else if $v.redis.url }}
    - name: GUARDRAIL_REDIS_URL
      value: {{ $v.redis.url | quote }}
    {{- end }}
    {{- if ne $v.rules.source "image" }}
    - name: GUARDRAIL_RULES_DIR
      value: {{ $v.rules.mountPath | quote }}
    {{- end }}
    - name: GUARDRAIL_RELOAD_INTERVAL_S
      value: {{ $v.rules.reloadIntervalSeconds | toString | quote }}
    - name: GUARDRAIL_LOG_LEVEL
      value: {{ $v.logLevel | quote }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:
    httpGet:
      path: /healthz
      port: guardrail
    periodSeconds: {{ $v.probes.startup.periodSeconds }}
    failureThreshold: {{ $v.probes.startup.failureThreshold }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: guardrail
    periodSeconds: {{ $v.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ $v.probes.liveness.failureThreshold }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: guardrail
    periodSeconds: {{ $v.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ $v.probes.readiness.failureThreshold }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    {{- if ne $v.rules.source "image" }}
    - name: guardrail-rules
      mountPath: {{ $v.rules.mountPath }}
      readOnly: true
    {{- end }}
    - name: guardrail-tmp
      mountPath: /tmp
{{- end -}}

{{- define "guardrail-proxy.volumes" -}}
{{- include "guardrail-proxy.volumeList" . | trim -}}
{{- end -}}

{{- define "guardrail-proxy.volumeList" -}}
{{- $v := .values -}}
{{- if eq $v.rules.source "chart" }}
- name: guardrail-rules
  configMap:
    name: {{ include "guardrail-proxy.rulesConfigMapName" . }}
    items:
      {{- $files := include "guardrail-proxy.ruleFiles" . | fromYaml }}
      {{- range $path := keys $files | sortAlpha }}
      - key: {{ include "guardrail-proxy.ruleKey" $path }}
        path: {{ $path }}
      {{- end }}
{{- else if eq $v.rules.source "existing" }}
- name: guardrail-rules
  configMap:
    name: {{ include "guardrail-proxy.rulesConfigMapName" . }}
    {{- with $v.rules.existingItems }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
- name: guardrail-tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
{{- end -}}

{{- define "guardrail-proxy.podAnnotations" -}}
{{- if .values.metrics.annotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .values.port | toString | quote }}
prometheus.io/path: {{ .values.metrics.path | quote }}
{{- end -}}
{{- end -}}
