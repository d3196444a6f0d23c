#!/usr/bin/env bash
# Stops the second test cluster (see second/up.sh) and removes its state dir.
#   npm run cluster:second:down [-- --keep-state]     (bash test/cluster/second/down.sh)
#  - stops kube-controller-manager, kube-apiserver and etcd by their pid files under
#    /var/lib/authprobe-cluster/second/pids (nothing else is touched; the first cluster keeps running);
#  - removes the unreachable route of its service range (10.97.0.0/24);
#  - removes /var/lib/authprobe-cluster/second/ (CA, certs, SA keys, etcd data, logs, kubeconfig), unless
#    --keep-state: then the next up reuses them.
# The first cluster's down.sh runs it with --keep-state before stopping its own processes (and then removes
# the whole cluster dir, this one included, unless it was given --keep-state itself).
set -euo pipefail
START_TS=$(date +%s)
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/second.sh
source "$CLUSTER_SRC/lib/second.sh"

[[ $EUID -eq 0 ]] || die "run as root"
keep=""
case ${1:-} in
  --keep-state) keep=1 ;;
  "") ;;
  *) die "usage: second/down.sh [--keep-state]" ;;
esac
if [[ ! -d $STATE ]]; then
  remove_service_range_sink
  log "second cluster: nothing to stop"
  exit 0
fi
take_cluster_lock

log "stopping the second cluster"
stop_second_cluster
remove_service_range_sink
if [[ -z $keep ]]; then
  rm -rf --one-file-system "$STATE"
fi
log "second cluster down"
