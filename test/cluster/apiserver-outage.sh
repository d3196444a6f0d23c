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

ready_at=$SECONDS
# The apiserver removes itself from the kubernetes Service when it stops and adds itself back once it
# runs again; pods reach it only after kube-proxy has seen that. kube-proxy's watches failed during
# the outage (and often once more with 403 while the new apiserver loads its RBAC caches), so
# client-go's reflector may be sleeping in its back-off: up to 30 s with a jitter factor of 1, i.e.
# 60 s, before it watches again. Measured after 60 s outages: 3 s to more than 60 s.
wait_for 150 "the kubernetes Service" service_path_ready || die "https://$KUBERNETES_SVC_IP not reachable; see $LOGS/kube-proxy.log"
log "kube-apiserver is back; pods reach it through the kubernetes Service $((SECONDS - ready_at))s after it was ready"
