#!/usr/bin/env bash
# Runs a command against a cluster: if KUBECONFIG points at a cluster that answers, use it
# as is (kind, a cloud cluster, or ours); otherwise bring ours up and use it.
# When the command fails on our cluster, prints the tail of each component log.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
(($#)) || die "usage: with-cluster.sh <command...>"

kubectl_bin=$K8S_BIN/kubectl
[[ -x $kubectl_bin ]] || kubectl_bin=$(command -v kubectl || true)
if [[ -n ${KUBECONFIG:-} && -n $kubectl_bin ]] && "$kubectl_bin" get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
  # another cluster (kind, a cloud cluster): just run the command there
  [[ $KUBECONFIG == "$ADMIN_KUBECONFIG" ]] || exec "$@"
else
  # progress on stderr only, so the command's own output stays readable
  bash "$CLUSTER_SRC/up.sh" >&2
fi
# our cluster: its KUBECONFIG, and its kubectl and helm first on PATH
eval "$(bash "$CLUSTER_SRC/env.sh")"
export KUBECONFIG PATH

rc=0
"$@" || rc=$?
if ((rc != 0)); then
  for f in "$LOGS"/*.log; do
    [[ -s $f ]] || continue
    echo "----- last 40 lines of $f -----" >&2
    tail -n 40 "$f" >&2
  done
fi
exit "$rc"
