#!/usr/bin/env bash
# Restarts the kubelet. It keeps issued projected tokens in memory only, so a restart makes it
# request fresh ones for every running pod at once: what would otherwise happen at 80% of each
# token's lifetime. Tests use it to re-issue tokens after an abrupt key change without waiting.
# Returns once the new kubelet serves, has renewed its node lease (it reaches the apiserver) and the
# node is Ready; the tokens themselves are written by its pod workers right after.
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/components.sh"
source "$CLUSTER_SRC/lib/restart.sh"

take_cluster_lock
is_running kubelet || die "the kubelet is not running (npm run cluster:up)"
restart_kubelet
log "kubelet restarted; projected tokens are being re-issued"
