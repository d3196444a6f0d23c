#!/usr/bin/env bash
# Stops or starts etcd under a running kube-apiserver: an etcd outage, for the fault suite.
# While etcd is away the apiserver answers reads from its watch cache at best and fails writes;
# kube-controller-manager and kube-scheduler may lose their leader leases and exit. `start` brings
# etcd back, waits until the apiserver is ready again, and starts any of those two that exited.
#   etcd.sh stop | start
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/components.sh"

take_cluster_lock
case ${1:-} in
  stop)
    stop_proc etcd
    log "etcd stopped"
    ;;
  start)
    is_running etcd || start_etcd
    wait_for 60 etcd etcd_healthy || die "etcd not healthy; see $LOGS/etcd.log"
    wait_for 120 kube-apiserver apiserver_ready || die "kube-apiserver not ready after etcd came back; see $LOGS/kube-apiserver.log"
    is_running kube-controller-manager || start_controller_manager
    is_running kube-scheduler || start_scheduler
    wait_for 60 "kube-controller-manager healthy" controller_manager_healthy || die "kube-controller-manager not healthy; see $LOGS/kube-controller-manager.log"
    log "etcd running, kube-apiserver ready"
    ;;
  *) die "usage: etcd.sh stop|start" ;;
esac
