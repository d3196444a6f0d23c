#!/usr/bin/env bash
# Stops or starts kube-controller-manager, whose tokens controller fills token Secrets: a cluster where
# a deleted token secret would never be replaced. Tests use it to show that nothing is deleted then.
#   tokens-controller.sh stop | start
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/components.sh"

exec 9>"$STATE/.lock"
flock -w 900 9 || die "another up/down/rotate is running"
case ${1:-} in
  stop)
    stop_proc kube-controller-manager
    log "kube-controller-manager stopped: token Secrets are not filled until it starts again"
    ;;
  start)
    is_running kube-controller-manager || start_controller_manager
    log "kube-controller-manager running"
    ;;
  *) die "usage: tokens-controller.sh stop|start" ;;
esac
