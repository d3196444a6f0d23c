#!/usr/bin/env bash
# Shows the second test cluster (see second/up.sh): each process, its apiserver, tokens controller and SA keys.
#   npm run cluster:second:status          exit 0 only when it is up and healthy
#   bash test/cluster/second/status.sh --line   one line (the first cluster's status.sh prints it)
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/second.sh
source "$CLUSTER_SRC/lib/second.sh"

if [[ ${1:-} == --line ]]; then
  running=0
  for c in "${COMPONENTS[@]}"; do is_running "$c" && running=$((running + 1)); done
  if ((running == 0)); then
    printf '%-24s not running (npm run cluster:second:up)\n' "second cluster"
  elif second_healthy 2>/dev/null; then
    printf '%-24s %s ready, %s processes, kube-controller-manager healthy (npm run cluster:second:status)\n' \
      "second cluster" "$APISERVER_URL" "$running"
  else
    printf '%-24s DEGRADED: %s of %s processes running, apiserver or kube-controller-manager not healthy\n' \
      "second cluster" "$running" "${#COMPONENTS[@]}"
    exit 1
  fi
  exit 0
fi

healthy=1
for c in "${COMPONENTS[@]}"; do
  if is_running "$c"; then
    printf '%-24s running (pid %s, rss %s MiB)\n' "$c" "$(pid_of "$c")" "$(($(awk '/VmRSS/{print $2}' "/proc/$(pid_of "$c")/status") / 1024))"
  else
    printf '%-24s NOT running\n' "$c"; healthy=""
  fi
done
if [[ -s $ADMIN_KUBECONFIG ]] && apiserver_ready 2>/dev/null; then
  echo "apiserver                $APISERVER_URL ready ($(kubectl_ version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)), issuer $SA_ISSUER"
  echo "trusted key ids          $(trusted_kids 2>/dev/null || echo '?')"
else
  echo "apiserver                not ready"; healthy=""
fi
if controller_manager_healthy 2>/dev/null; then echo "kube-controller-manager  healthy (127.0.0.1:$KCM_SECURE_PORT)"; else echo "kube-controller-manager  not healthy"; healthy=""; fi
if load_sa_keys 2>/dev/null; then
  echo "service-account keys     signing $(basename "$SA_SIGNING_KEY"), verifying: $(for k in $SA_VERIFY_KEYS; do basename "$k"; done | tr '\n' ' ')"
fi
echo "state $STATE  logs $LOGS  kubeconfig $ADMIN_KUBECONFIG  CA $PKI/ca.crt"
if [[ -n $healthy ]]; then echo "second cluster: UP"; else echo "second cluster: DOWN or degraded"; exit 1; fi
