{{/*
Names. Everything the chart creates is named after the release ("fullname"), truncated to 63
characters because some fields are DNS labels.
*/}}
{{- define "authprobe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "authprobe.fullname" -}}
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

{{/*
Cluster-scoped objects (ClusterRoles and their bindings) carry the release namespace in their
name, so the same release name installed in two namespaces does not collide.
*/}}
{{- define "authprobe.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "authprobe.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "authprobe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "authprobe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authprobe.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/* Labels on every object the chart creates. */}}
{{- define "authprobe.labels" -}}
helm.sh/chart: {{ include "authprobe.chart" . | quote }}
{{ include "authprobe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: authprobe
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "authprobe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authprobe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference; the operator passes the same reference to its probe pods. */}}
{{- define "authprobe.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: forced by the value, else when replicaCount > 1. */}}
{{- define "authprobe.leaderElection" -}}
{{- if kindIs "bool" .Values.leaderElection.enabled }}
{{- .Values.leaderElection.enabled }}
{{- else }}
{{- gt (int .Values.replicaCount) 1 }}
{{- end }}
{{- end }}

{{/* "true" when the PodDisruptionBudget is created: forced by the value, else when replicaCount > 1. */}}
{{- define "authprobe.pdbEnabled" -}}
{{- if kindIs "bool" .Values.podDisruptionBudget.enabled }}
{{- .Values.podDisruptionBudget.enabled }}
{{- else }}
{{- gt (int .Values.replicaCount) 1 }}
{{- end }}
{{- end }}

{{/* A duration (500ms, 20s, 10m, 1h) as whole seconds, rounded up. */}}
{{- define "authprobe.seconds" -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 }}
{{- $unit := regexFind "(ms|s|m|h)$" . }}
{{- $factor := get (dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0) $unit }}
{{- mulf $number $factor | ceil | int }}
{{- end }}

{{/*
Rules for everything the operator does inside a watched namespace. In cluster mode they go into
the ClusterRole; in watchNamespaces mode into a Role in each listed namespace. Keep this list and
the permissions table in README.md identical (test/e2e/helm.e2e.test.ts compares both with
`kubectl auth can-i --list`).
*/}}
{{- define "authprobe.namespacedRules" -}}
# Watch AuthProbes; patch them to record a heal in progress (crash-safe healing).
- apiGroups: [authprobe.io]
  resources: [authprobes]
  verbs: [get, list, watch, patch]
- apiGroups: [authprobe.io]
  resources: [authprobes/status]
  verbs: [get, patch]
# Probe pods: create, watch (only the operator's own, by label), reap.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
# Check that the probed ServiceAccount exists and read its UID.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get]
# Read one token secret when needed and replace it when its token is proven invalid. No list or
# watch: the operator never caches Secrets.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, delete, patch]
# Events on AuthProbes.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.rbac.restartWorkloads }}
# Roll the workloads that mount a replaced secret (spec.heal.restartWorkloads).
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [list, patch]
{{- end }}
{{- end }}

{{/* Cluster-scoped rules: TokenReview confirms a rejection before anything is deleted. */}}
{{- define "authprobe.clusterRules" -}}
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
{{- end }}
