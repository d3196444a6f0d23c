#!/usr/bin/env bash
# Restarts the kubelet. It keeps issued projected tokens in memory only, so a restart makes it
# request fresh ones for every running pod at once: what would otherwise happen at 80% of each
# token's lifetime. Tests use it to re-issue tokens after an abrupt key change without waiting.
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/components.sh"

exec 9>"$STATE/.lock"
flock -w 900 9 || die "another up/down/rotate is running"
is_running kubelet || die "the kubelet is not running (npm run cluster:up)"
stop_proc kubelet
start_kubelet
wait_for 120 "node Ready" node_ready || die "node not Ready after the kubelet restart; see $LOGS/kubelet.log"
log "kubelet restarted; projected tokens are being re-issued"
