#!/usr/bin/env bash
# Tears the test cluster down and leaves nothing behind: processes (by pid file), pod
# containers, mounts under the cluster dir, the bridge, the route, iptables rules, and
# the cluster dir itself. Build caches stay. --keep-state keeps certs, keys, etcd data and logs.
# The second cluster (second/up.sh), if any, is stopped first; its state dir is inside the cluster dir.
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/pki.sh"
source "$CLUSTER_SRC/lib/network.sh"
source "$CLUSTER_SRC/lib/components.sh"
source "$CLUSTER_SRC/lib/lifecycle.sh"

[[ $EUID -eq 0 ]] || die "run as root"
keep=""
[[ ${1:-} == --keep-state ]] && keep=1
mkdir -p "$STATE"
take_cluster_lock

log "stopping the test cluster"
mkdir -p "$LOGS"
# the second, control-plane-only cluster (second/up.sh) first: its apiserver listens on our bridge
if [[ -d $STATE/second ]]; then bash "$CLUSTER_SRC/second/down.sh" --keep-state; fi
stop_everything
if [[ -z $keep ]]; then
  if [[ -s $STATE/created-paths ]]; then
    while read -r p; do [[ -n $p ]] && rm -rf --one-file-system "$p"; done <"$STATE/created-paths"
  fi
  if findmnt -rn -o TARGET | grep -qF "$STATE"; then
    die "still mounted under $STATE: $(findmnt -rn -o TARGET | grep -F "$STATE" | head -3 | tr '\n' ' ')"
  fi
  # --one-file-system: never follow a mount out of the cluster dir
  rm -rf --one-file-system "$STATE"
fi
log "down"
