# Shared settings and helpers for the test-cluster scripts. Source it; do not run it.
# shellcheck shell=bash

CLUSTER_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$CLUSTER_SRC/../.." && pwd)
# shellcheck source=../versions.env
source "$CLUSTER_SRC/versions.env"

CACHE=${AUTHPROBE_CACHE:-/var/cache/authprobe}
STATE=${AUTHPROBE_CLUSTER_DIR:-/var/lib/authprobe-cluster}
K8S_BIN=$CACHE/bin/k8s-$K8S_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
HELM_BIN=$CACHE/bin/helm-$HELM_VERSION

# Network layout. The machine's uplink is 192.0.2.0/24; these ranges do not overlap it.
NODE_NAME=authprobe-node
BRIDGE=authprobe0
POD_CIDR=10.244.0.0/24
BRIDGE_IP=10.244.0.1          # the apiserver listens and advertises here: an address on our own bridge
SERVICE_CIDR=10.96.0.0/24
KUBERNETES_SVC_IP=10.96.0.1
APISERVER_PORT=6443
APISERVER_URL=https://$BRIDGE_IP:$APISERVER_PORT
# More per-cluster settings that lib/components.sh and lib/pki.sh read when they start a component or
# write a kubeconfig. lib/second.sh sets its own (and the optional SA_JWKS_URI, KCM_SECURE_PORT,
# KCM_CONTROLLERS, CONTROL_PLANE_ONLY) for the second, control-plane-only cluster.
CLUSTER_NAME=authprobe        # cluster and context name in its kubeconfigs
ETCD_CLIENT_PORT=2379 ETCD_PEER_PORT=2380 ETCD_METRICS_PORT=2381
SA_ISSUER=https://kubernetes.default.svc.cluster.local

LOGS=$STATE/logs
PIDS=$STATE/pids
PKI=$STATE/pki
KUBELET_DIR=$STATE/kubelet
CONTAINERD_DIR=$STATE/containerd
CONTAINERD_SOCK=$CONTAINERD_DIR/run/containerd.sock
ADMIN_KUBECONFIG=$STATE/kubeconfig

START_TS=${START_TS:-$(date +%s)}
# Progress goes to stderr so stdout stays clean for callers (image.sh prints its reference last).
log() { printf '[%4ss] %s\n' "$(($(date +%s) - START_TS))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The cluster lock (fd 9): up, down, rotations and restarts never run at the same time. A script run by
# one that holds the lock (stress-rotate.sh) inherits fd 9, and with it the lock.
take_cluster_lock() {
  [[ $(readlink "/proc/$$/fd/9" 2>/dev/null) == "$STATE/.lock" ]] || exec 9>"$STATE/.lock"
  flock -w 900 9 || die "another up/down/rotate is running"
}

kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
ctr_() { ctr --connect-timeout 5s --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# pid file helpers: every process we start is tracked by a pid file under $PIDS.
pid_of() { local f=$PIDS/$1.pid; [[ -s $f ]] && cat "$f"; }
is_running() {
  local pid; pid=$(pid_of "$1") || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  # guard against pid reuse after a machine-wide kill: the process must be the binary we started
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *"$(basename "$(cat "$PIDS/$1.exe" 2>/dev/null || echo x)")"* ]]
}
