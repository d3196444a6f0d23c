#!/usr/bin/env bash
# Brings up the second test cluster (idempotent): a control plane only, beside the first cluster.
#   npm run cluster:second:up        (bash test/cluster/second/up.sh)
#  - etcd (127.0.0.1:2479, peer 2480, metrics 2481), kube-apiserver (https://10.244.0.1:6444, on the first
#    cluster's bridge, so that pods of the first cluster reach it) and kube-controller-manager (health on
#    127.0.0.1:10357; its tokens controller fills legacy token Secrets). No kubelet, scheduler, kube-proxy
#    or node. Its own CA, certificates and service-account keys (issuer https://second.authprobe.test), all
#    under /var/lib/authprobe-cluster/second/ (pki/, sa-keys.env, etcd/, logs/, pids/, kubeconfig).
#  - Needs the first cluster's bridge (npm run cluster:up) and binaries; it does not start the first cluster.
#  - A no-op (well under a second) when it is already up and healthy. Otherwise it stops whatever is left of
#    an earlier run (by pid file; certs, keys and etcd data are kept), starts the three, waits for /readyz
#    and for the tokens controller to fill a test token Secret.
#  - Use it: eval "$(npm run -s cluster:second:env)"  (KUBECONFIG2, AUTHPROBE_SECOND_CA, ..._SERVER, ..._ISSUER)
set -euo pipefail
START_TS=$(date +%s)
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/second.sh
source "$CLUSTER_SRC/lib/second.sh"

[[ $EUID -eq 0 ]] || die "run as root (the service-range route)"
for b in "$ETCD_BIN/etcd" "$K8S_BIN/kube-apiserver" "$K8S_BIN/kube-controller-manager" "$K8S_BIN/kubectl"; do
  [[ -x $b ]] || die "$b missing: npm run cluster:up builds it"
done
bridge_address_present ||
  die "$BRIDGE_IP is not on $BRIDGE: the second apiserver listens on the first cluster's bridge; run npm run cluster:up first"
mkdir -p "$STATE" "$LOGS" "$PIDS"
take_cluster_lock

if second_healthy; then
  log "second cluster already up and healthy; nothing to do"
  exit 0
fi

log "second cluster (state $STATE): clearing anything left from an earlier run"
stop_second_cluster
ensure_service_range_sink
ensure_second_pki
ensure_second_kubeconfigs

log "starting etcd (127.0.0.1:$ETCD_CLIENT_PORT)"
start_etcd
wait_for 60 etcd etcd_healthy || die "etcd did not become healthy; see $LOGS/etcd.log"

log "starting kube-apiserver ($APISERVER_URL, issuer $SA_ISSUER)"
start_apiserver
wait_for 180 kube-apiserver apiserver_ready || die "kube-apiserver not ready; see $LOGS/kube-apiserver.log"

log "starting kube-controller-manager"
start_controller_manager
wait_for 60 kube-controller-manager controller_manager_healthy || die "kube-controller-manager not healthy; see $LOGS/kube-controller-manager.log"

log "checking that the tokens controller fills a legacy token Secret"
check_tokens_controller

log "second cluster up: $APISERVER_URL, $K8S_VERSION, kubeconfig $ADMIN_KUBECONFIG, CA $PKI/ca.crt"
