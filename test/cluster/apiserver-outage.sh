#!/usr/bin/env bash
# Stops kube-apiserver for N seconds, then starts it again with the same flags and waits until it is
# ready: an apiserver outage, for tests that check the operator rides it out.
#   usage: apiserver-outage.sh SECONDS
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/components.sh"

secs=${1:?usage: apiserver-outage.sh SECONDS}
[[ $secs =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$secs'"
exec 9>"$STATE/.lock"
flock -w 900 9 || die "another up/down/rotate is running"
is_running kube-apiserver || die "kube-apiserver is not running (npm run cluster:up)"
log "stopping kube-apiserver for ${secs}s"
stop_proc kube-apiserver "$APISERVER_STOP_GRACE"
sleep "$secs"
start_apiserver
wait_for 90 "kube-apiserver ready" apiserver_ready || die "kube-apiserver did not come back; see $LOGS/kube-apiserver.log"
# The apiserver re-adds itself to the kubernetes Service a moment after /readyz: wait for pods' path.
wait_for 60 "the kubernetes Service" service_path_ready || die "https://$KUBERNETES_SVC_IP not reachable; see $LOGS/kube-proxy.log"
log "kube-apiserver is back"
