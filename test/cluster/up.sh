#!/usr/bin/env bash
# Brings up the single-node test cluster (idempotent). See test/cluster/README section in the project README.
#  - a no-op when everything is already up and healthy;
#  - after a run that was killed without down.sh, clears stale pid files, mounts,
#    interfaces and iptables rules first (certs, SA keys and etcd data are kept);
#  - builds missing binaries and installs missing Debian packages.
set -euo pipefail
START_TS=$(date +%s)
export START_TS # so deps.sh and build.sh count from the same start
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/pki.sh"
source "$CLUSTER_SRC/lib/network.sh"
source "$CLUSTER_SRC/lib/components.sh"
source "$CLUSTER_SRC/lib/lifecycle.sh"
source "$CLUSTER_SRC/lib/images.sh"

[[ $EUID -eq 0 ]] || die "run as root (bridges, iptables, mounts, containerd)"
mkdir -p "$STATE" "$LOGS" "$PIDS"
take_cluster_lock

log "test cluster $K8S_VERSION (state $STATE, cache $CACHE)"
bash "$CLUSTER_SRC/deps.sh"
bash "$CLUSTER_SRC/build.sh"

if all_running && apiserver_ready && node_ready && guard_installed; then
  log "already up and healthy; nothing to do"
  exit 0
fi

log "clearing anything left from an earlier run"
stop_everything

check_ranges_free
ensure_pki
ensure_kubeconfigs
record_host_paths

# The guard goes in before anything that could start a pod.
log "network: bridge $BRIDGE $BRIDGE_IP/24, service range $SERVICE_CIDR -> bridge sink, FORWARD guard"
ensure_bridge
install_guard

log "starting etcd"
start_etcd
wait_for 60 etcd etcd_healthy || die "etcd did not become healthy; see $LOGS/etcd.log"

log "starting kube-apiserver"
start_apiserver
wait_for 180 kube-apiserver apiserver_ready || die "kube-apiserver not ready; see $LOGS/kube-apiserver.log"
# the apiserver's client identity for exec/logs/port-forward on the kubelet
kubectl_ apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: authprobe:apiserver-kubelet-client}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
YAML

log "starting kube-controller-manager and kube-scheduler"
start_controller_manager
start_scheduler

log "starting containerd"
start_containerd
wait_for 60 containerd containerd_ready || die "containerd not ready; see $LOGS/containerd.log"
ensure_base_images

# The kubelet registers the node first, so kube-proxy finds it at once (it otherwise waits 30 s).
# Pods that start before kube-proxy's rules exist are still held in by the guard and the sink route.
log "starting kubelet"
start_kubelet
wait_for 120 "node $NODE_NAME registered" kubectl_ get node "$NODE_NAME" || die "node did not register; see $LOGS/kubelet.log"

log "starting kube-proxy"
start_kube_proxy
wait_for 60 kube-proxy kube_proxy_ready || die "kube-proxy not healthy; see $LOGS/kube-proxy.log"
# wait until kube-proxy has written the kubernetes Service rule, then put our guard back on top
wait_for 60 "kubernetes Service rules" sh -c "iptables -w -t nat -S KUBE-SERVICES | grep -q '$KUBERNETES_SVC_IP/32'" ||
  die "kube-proxy wrote no rule for $KUBERNETES_SVC_IP; see $LOGS/kube-proxy.log"
reassert_guard_first

wait_for 180 "node $NODE_NAME Ready" node_ready || die "node not Ready; see $LOGS/kubelet.log"
guard_installed || die "network guard missing after start"

wait_for 60 "the kubernetes Service from this host" service_path_ready || die "https://$KUBERNETES_SVC_IP not reachable; see $LOGS/kube-proxy.log"

log "checking that a pod reaches the apiserver through the kubernetes Service"
smoke_ns=kube-system smoke_pod=authprobe-smoke-$RANDOM
wait_for 60 "default service account" kubectl_ -n "$smoke_ns" get serviceaccount default
kubectl_ -n "$smoke_ns" run "$smoke_pod" --image="$TOOLBOX_IMAGE" --restart=Never --image-pull-policy=Never \
  --command -- sh -c "curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt https://$KUBERNETES_SVC_IP/version" >/dev/null
ok=""
for _ in $(seq 90); do
  phase=$(kubectl_ -n "$smoke_ns" get pod "$smoke_pod" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  if [[ $phase == Succeeded || $phase == Failed ]]; then
    # an unauthenticated request must come back 401 over TLS verified with the mounted CA
    [[ $(kubectl_ -n "$smoke_ns" logs "$smoke_pod" 2>/dev/null) == 401 ]] && ok=1
    break
  fi
  sleep 1
done
kubectl_ -n "$smoke_ns" delete pod "$smoke_pod" --wait=false >/dev/null 2>&1 || true
[[ -n $ok ]] || die "pod could not reach https://$KUBERNETES_SVC_IP (phase ${phase:-none}); see $LOGS/kubelet.log, $LOGS/kube-proxy.log, $LOGS/containerd.log"

log "cluster up: node $NODE_NAME Ready, $K8S_VERSION, pods reach the apiserver at https://$KUBERNETES_SVC_IP"
log "use it:  eval \"\$(bash $CLUSTER_SRC/env.sh)\"   (KUBECONFIG=$ADMIN_KUBECONFIG)"
