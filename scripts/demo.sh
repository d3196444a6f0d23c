#!/usr/bin/env bash
# The authprobe demo, from a fresh machine to a healed token, in one command:   npm run demo
#
# Brings up the local test cluster (building it the first time), installs the operator with Helm,
# creates a service account with a legacy token secret and an AuthProbe for it, rotates the
# cluster's service-account signing key, and shows the operator noticing the rejected token and
# replacing the secret. Re-runnable: every step converges on the same state. No token is printed.
#
# Environment: DEMO_HEAL_TIMEOUT (seconds to wait for the heal, default 180),
#              DEMO_READY_TIMEOUT (seconds to wait for the first Ready, default 120).
set -euo pipefail
cd "$(dirname "$0")/.."

START_TS=$(date +%s)
NS=authprobe-demo
RELEASE=authprobe
RELEASE_NS=authprobe-system
HEAL_TIMEOUT=${DEMO_HEAL_TIMEOUT:-180}
READY_TIMEOUT=${DEMO_READY_TIMEOUT:-120}

# bold headers on a terminal only, so a captured log stays plain text
if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[1;31m' PLAIN=$'\033[0m'; else BOLD="" RED="" PLAIN=""; fi
elapsed() { echo $(($(date +%s) - START_TS)); }
step() { printf '\n%s==> [%4ss] %s%s\n' "$BOLD" "$(elapsed)" "$*" "$PLAIN"; }
info() { printf '    %s\n' "$*"; }
fail() {
  printf '\n%sdemo failed after %ss: %s%s\n' "$RED" "$(elapsed)" "$*" "$PLAIN" >&2
  exit 1
}

# Where things went wrong, when they did: the operator's last log lines (never a token: the
# operator's logs are redacted).
on_error() {
  local rc=$?
  ((rc == 0)) && return
  if command -v kubectl >/dev/null 2>&1 && [[ -n ${KUBECONFIG:-} ]]; then
    echo "---- last 30 lines of the operator's log ----" >&2
    kubectl -n "$RELEASE_NS" logs "deployment/$RELEASE-authprobe-operator" --tail=30 >&2 2>/dev/null || true
  fi
}
trap on_error EXIT

step "1/11 dependencies"
if [[ ! -d node_modules ]]; then
  info "node_modules is missing: npm ci"
  npm ci --no-audit --no-fund
else
  info "node_modules present"
fi

step "2/11 local Kubernetes cluster (npm run cluster:up; the first run builds it and takes a while)"
cluster_start=$(date +%s)
npm run -s cluster:up
info "cluster up in $(($(date +%s) - cluster_start))s"

step "3/11 cluster environment (kubectl, helm, KUBECONFIG)"
eval "$(npm run -s cluster:env)"
export KUBECONFIG PATH
info "kubectl $(kubectl version --client -o json | jq -r .clientVersion.gitVersion), helm $(helm version --template '{{.Version}}')"
info "apiserver $(kubectl version -o json | jq -r .serverVersion.gitVersion)"

step "4/11 build the operator and its image (npm run build, npm run cluster:image)"
npm run -s build
image_out=$(mktemp)
npm run -s cluster:image | tee "$image_out"
IMAGE=$(tail -n 1 "$image_out")
rm -f "$image_out"
[[ $IMAGE == *:* ]] || fail "npm run cluster:image did not print an image reference on its last line (got: '$IMAGE')"
REPO=${IMAGE%:*}
TAG=${IMAGE##*:}
info "image $IMAGE"

step "5/11 install the operator with Helm (release $RELEASE in namespace $RELEASE_NS)"
helm upgrade --install "$RELEASE" charts/authprobe-operator \
  -n "$RELEASE_NS" --create-namespace \
  --set image.repository="$REPO" --set image.tag="$TAG" \
  --wait --timeout 5m
kubectl -n "$RELEASE_NS" get deployment,pods -l app.kubernetes.io/instance="$RELEASE"

step "6/11 a service account with a legacy token secret, and an AuthProbe for it (namespace $NS)"
kubectl apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: dashboard
  namespace: $NS
YAML
# A long-lived token secret, as dashboards and CI runners use; kube-controller-manager fills it.
# Created only when missing: after a heal it is the operator's replacement, which a re-run keeps.
if kubectl get secret dashboard-token -n "$NS" >/dev/null 2>&1; then
  info "secret/dashboard-token exists (kept as it is)"
else
  kubectl create -f - <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: dashboard-token
  namespace: $NS
  annotations:
    kubernetes.io/service-account.name: dashboard
type: kubernetes.io/service-account-token
YAML
fi
kubectl apply -f - <<YAML
apiVersion: authprobe.io/v1alpha1
kind: AuthProbe
metadata:
  name: dashboard
  namespace: $NS
spec:
  serviceAccountName: dashboard
  token:
    source: Secret
    secretName: dashboard-token
  interval: 30s
  timeout: 10s
YAML

step "7/11 wait for the probe to prove the token works (kubectl get authprobes -n $NS)"
ready_of() { kubectl get authprobe dashboard -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null; }
reason_of() { kubectl get authprobe dashboard -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}' 2>/dev/null; }
heals_of() { local n; n=$(kubectl get authprobe dashboard -n "$NS" -o jsonpath='{.status.heals.count}' 2>/dev/null); echo "${n:-0}"; }
deadline=$((SECONDS + READY_TIMEOUT))
until [[ $(ready_of) == True ]]; do
  ((SECONDS < deadline)) || {
    kubectl describe authprobe dashboard -n "$NS" || true
    fail "the AuthProbe did not become Ready within ${READY_TIMEOUT}s (reason: $(reason_of))"
  }
  sleep 2
done
kubectl get authprobes -n "$NS"
heals_before=$(heals_of)

step "8/11 rotate the service-account signing key (npm run cluster:rotate-sa-key)"
info "This removes the key that signed the old legacy token: the apiserver will reject it (401) forever,"
info "while running pods get fresh projected tokens. Nobody recreates such a secret; the operator will."
npm run -s cluster:rotate-sa-key

step "9/11 watch the probe: rejected -> healed -> Ready (every 3s, at most ${HEAL_TIMEOUT}s)"
deadline=$((SECONDS + HEAL_TIMEOUT))
last="" saw_rejected="" healed=""
while :; do
  ready=$(ready_of || true) reason=$(reason_of || true) heals=$(heals_of || echo 0)
  state="Ready=${ready:-?} reason=${reason:-?} heals=$heals"
  if [[ $state != "$last" ]]; then
    printf '    [%4ss] %s\n' "$(elapsed)" "$state"
    kubectl get authprobe dashboard -n "$NS" -o wide --no-headers 2>/dev/null | sed 's/^/           /' || true
    last=$state
  fi
  [[ $ready == False ]] && saw_rejected=1
  ((heals > heals_before)) && healed=1
  [[ -n $healed && $ready == True ]] && break
  if ((SECONDS >= deadline)); then
    kubectl describe authprobe dashboard -n "$NS" || true
    fail "no heal within ${HEAL_TIMEOUT}s after the rotation (last: $state). See the Events above and the operator's log below."
  fi
  sleep 3
done
if [[ -n $saw_rejected ]]; then
  info "the operator saw the token rejected, replaced the secret, and the new token authenticates"
else
  info "the operator replaced the secret between two polls; the Events below show the rejection and the heal"
fi
kubectl get authprobes -n "$NS" -o wide

step "10/11 what a person reads: kubectl describe authprobe dashboard -n $NS"
kubectl describe authprobe dashboard -n "$NS"

step "11/11 done in $(elapsed)s. To clean up:"
printf '    %-44s # %s\n' \
  "helm uninstall $RELEASE -n $RELEASE_NS" "the operator (the AuthProbe CRD stays: charts/authprobe-operator/README.md)" \
  "kubectl delete namespace $NS" "the demo service account, token secret and AuthProbe" \
  "npm run cluster:down" "the local cluster"
