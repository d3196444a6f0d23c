#!/usr/bin/env bash
# Shows whether each component runs, the apiserver and node health, and the network guard.
# Exit status 0 only when the cluster is fully up.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/pki.sh"
source "$CLUSTER_SRC/lib/network.sh"
source "$CLUSTER_SRC/lib/components.sh"

healthy=1
for c in "${COMPONENTS[@]}"; do
  if is_running "$c"; then
    printf '%-24s running (pid %s, rss %s MiB)\n' "$c" "$(pid_of "$c")" "$(($(awk '/VmRSS/{print $2}' "/proc/$(pid_of "$c")/status") / 1024))"
  else
    printf '%-24s NOT running\n' "$c"; healthy=""
  fi
done
if [[ -s $ADMIN_KUBECONFIG ]] && apiserver_ready; then
  echo "apiserver                $APISERVER_URL ready ($(kubectl_ version -o json 2>/dev/null | jq -r .serverVersion.gitVersion))"
  kubectl_ get nodes -o wide 2>/dev/null || true
  node_ready || healthy=""
else
  echo "apiserver                not ready"; healthy=""
fi
if guard_installed 2>/dev/null; then echo "network guard            installed"; else echo "network guard            MISSING"; healthy=""; fi
load_sa_keys 2>/dev/null && echo "service-account keys     signing $(basename "$SA_SIGNING_KEY"), verifying: $(for k in $SA_VERIFY_KEYS; do basename "$k"; done | tr '\n' ' ')" || true
echo "state $STATE  logs $LOGS  kubeconfig $ADMIN_KUBECONFIG"
# one line for the second, control-plane-only cluster (second/status.sh); it does not change the exit status
bash "$CLUSTER_SRC/second/status.sh" --line || true
[[ -n $healthy ]] && echo "status: UP" || { echo "status: DOWN or degraded"; exit 1; }
