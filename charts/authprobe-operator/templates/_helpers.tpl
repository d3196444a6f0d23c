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

{{/*
The image reference; the operator passes the same reference to its probe pods. There is no default
repository: the project publishes no image under a registry namespace it controls, and a default
pointing at someone else's namespace would run whatever they push there with the operator's powers.
*/}}
{{- define "authprobe.image" -}}
{{- $repository := required "image.repository is required: set it to the registry/repository you pushed the authprobe-operator image to (see the Dockerfile), e.g. --set image.repository=registry.example.com/authprobe-operator" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The ServiceAccount name the operator's requests carry (excluded from the admission policy). */}}
{{- define "authprobe.serviceAccountUsername" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "authprobe.serviceAccountName" .) }}
{{- end }}

{{/* The permission-less ServiceAccount whose token secrets prove the tokens controller works. */}}
{{- define "authprobe.canaryServiceAccountName" -}}
{{- default (printf "%s-canary" (include "authprobe.fullname" .) | trunc 63 | trimSuffix "-") .Values.operator.canaryServiceAccount }}
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
the permissions table in README.md identical (test/e2e/rbac-table.e2e.test.ts compares both with
`kubectl auth can-i --list`).
*/}}
{{- define "authprobe.namespacedRules" -}}
# Watch AuthProbes; patch them to hold the heal-in-flight finalizer while a heal is under way.
- apiGroups: [authprobe.io]
  resources: [authprobes]
  verbs: [get, list, watch, patch, update]
# Probe pods carry an owner reference with blockOwnerDeletion to their AuthProbe, which clusters with
# the OwnerReferencesPermissionEnforcement admission plugin allow only with this.
- apiGroups: [authprobe.io]
  resources: [authprobes/finalizers]
  verbs: [update]
# Conditions, the last probe and the heal intent: written by the operator only.
- apiGroups: [authprobe.io]
  resources: [authprobes/status]
  verbs: [get, patch, update]
# Probe pods: create, watch (only the operator's own, by label), reap.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
# Check that the probed ServiceAccount exists and read its UID; watch them (metadata only) so that an
# AuthProbe waiting for its account is checked again as soon as the account is created.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, watch]
# Read one token secret when needed and replace it when its token is proven invalid; read a copy of a
# token (check Copy) and patch the new token into it. No list or watch: the operator never caches Secrets.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, delete, patch]
# check Copy: a new token of the AuthProbe's ServiceAccount for a copy proven invalid or due for renewal.
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
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

{{/* The heal ledger's ConfigMap in the release namespace (its name is fixed in the operator). */}}
{{- define "authprobe.healLedgerName" -}}
authprobe-heal-ledger
{{- end }}

{{/*
Rules in the operator's own (release) namespace, in both modes: the tokens-controller canary (a
token secret of a permission-less ServiceAccount, created, awaited and deleted before any heal
deletes a secret) and the heal ledger that survives restarts.
*/}}
{{- define "authprobe.ownNamespaceRules" -}}
# The canary token secrets (generated names, so no resourceNames).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, delete]
# The canary's ServiceAccount, which the chart creates: the operator only checks that it exists.
- apiGroups: [""]
  resources: [serviceaccounts]
  resourceNames: [{{ include "authprobe.canaryServiceAccountName" . | quote }}]
  verbs: [get]
# The heal ledger: created once, then read and patched by name only.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [{{ include "authprobe.healLedgerName" . | quote }}]
  verbs: [get, patch, update]
{{- end }}
