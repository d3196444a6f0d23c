#!/usr/bin/env bash
# Stops kube-apiserver for N seconds, then starts it again with the same flags and waits until it is
# ready: an apiserver outage, for tests that check the operator rides it out.
# The cluster's own components do not ride it out on their own (client-go back-off): kube-proxy, the
# scheduler and the controller-manager are stopped and the kubelet frozen meanwhile (lib/restart.sh),
# so pods reach the apiserver through the kubernetes Service again as soon as it is back.
#   usage: apiserver-outage.sh SECONDS
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/components.sh"
source "$CLUSTER_SRC/lib/restart.sh"

secs=${1:?usage: apiserver-outage.sh SECONDS}
[[ $secs =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$secs'"
take_cluster_lock
is_running kube-apiserver || die "kube-apiserver is not running (npm run cluster:up)"
log "stopping kube-apiserver for ${secs}s"
restart_apiserver "$secs"
log "kube-apiserver is back; pods reach it through the kubernetes Service $((SECONDS - APISERVER_READY_AT))s after it was ready"
