# Starting, stopping and checking the cluster's processes.
# Every process is started detached, logs to $LOGS/<name>.log and is tracked by $PIDS/<name>.pid.
# shellcheck shell=bash

# the apiserver and controller-manager flags need the SA key set (load_sa_keys)
# shellcheck source=pki.sh
source "$CLUSTER_SRC/lib/pki.sh"

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kube-proxy kubelet)

start_proc() { # <name> <binary> <args...>
  local name=$1 bin=$2; shift 2
  mkdir -p "$LOGS" "$PIDS"
  if is_running "$name"; then return 0; fi
  echo "=== $(date -Is) starting: $bin $*" >>"$LOGS/$name.log"
  # setsid: own session, so the caller's terminal / process group never takes it down.
  # Only stdin/stdout/stderr are handed down: a daemon that inherits another descriptor (the scripts'
  # lock on fd 9, or a lock a caller such as `flock FILE cmd` holds) keeps that lock for its lifetime.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid "$bin" "$@" </dev/null >>"$LOGS/$name.log" 2>&1
  ) &
  echo $! >"$PIDS/$name.pid"
  disown $! # tracked by its pid file, not as a job of this shell
  echo "$bin" >"$PIDS/$name.exe"
}

stop_proc() { # <name> [grace seconds, default 15]: TERM, wait, then KILL
  local name=$1 grace=${2:-15} pid i
  pid=$(pid_of "$name") || { rm -f "$PIDS/$name.pid" "$PIDS/$name.exe"; return 0; }
  if is_running "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.exe"
}

wait_for() { # <seconds> <description> <command...>: poll until the command succeeds
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 1
  done
}

# ---------- etcd ----------
start_etcd() {
  # plain HTTP on loopback only; nothing else can reach it
  start_proc etcd "$ETCD_BIN/etcd" \
    --name authprobe --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "authprobe=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT" \
    --quota-backend-bytes 2147483648 --log-level warn
}
etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }

# ---------- kube-apiserver ----------
apiserver_args() { # prints one argument per line, built from the current SA key set
  load_sa_keys
  local k
  printf '%s\n' \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address="$BRIDGE_IP" --advertise-address="$BRIDGE_IP" --secure-port="$APISERVER_PORT" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt"
  # its client identity towards the kubelet; a control-plane-only cluster (lib/second.sh) has no node
  [[ -n ${CONTROL_PLANE_ONLY:-} ]] || printf '%s\n' \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP
  printf '%s\n' \
    --service-account-issuer="$SA_ISSUER" \
    ${SA_JWKS_URI:+"--service-account-jwks-uri=$SA_JWKS_URI"} \
    --service-account-signing-key-file="$SA_SIGNING_KEY.key" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --anonymous-auth=false \
    --allow-privileged=true \
    --profiling=false \
    --shutdown-watch-termination-grace-period=5s
  # every key listed here verifies tokens; during a rotation there are two
  for k in $SA_VERIFY_KEYS; do echo "--service-account-key-file=$k.pub"; done
}
start_apiserver() {
  # built first and checked: an apiserver started without its flags would serve something else entirely
  local text args
  text=$(apiserver_args) || die "cannot build the kube-apiserver flags (SA keys in $STATE/sa-keys.env?)"
  mapfile -t args <<<"$text"
  ((${#args[@]} > 10)) || die "kube-apiserver flags incomplete"
  start_proc kube-apiserver "$K8S_BIN/kube-apiserver" "${args[@]}"
}
# On TERM the apiserver stops listening at once and (--shutdown-watch-termination-grace-period) ends
# every watch cleanly, then exits: 3 s here (without that flag it drains watches for well over 15 s
# and was always killed). etcd holds everything that matters, so a short grace is enough.
APISERVER_STOP_GRACE=5
# The apiserver through the kubernetes Service, as pods reach it: the host's own traffic to the
# ClusterIP goes through kube-proxy's rules too. After an apiserver restart there is a window where
# the Service has no endpoint (the apiserver removes itself on shutdown) although /readyz is ok.
service_path_ready() {
  curl -fsS --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$KUBERNETES_SVC_IP/readyz" | grep -q ok
}
apiserver_ready() { kubectl_ get --raw /readyz --request-timeout=3s | grep -q ok; }

# ---------- controller-manager / scheduler ----------
start_controller_manager() {
  load_sa_keys
  local kc=$STATE/config/controller-manager.kubeconfig
  # --service-account-private-key-file signs the tokens of legacy token secrets (the tokens controller);
  # the apiserver's signing key, except after rotate-sa-key.sh --wrong-order (see pki.sh)
  start_proc kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --service-account-private-key-file="$SA_KCM_SIGNING_KEY.key" \
    --root-ca-file="$PKI/ca.crt" --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --allocate-node-cidrs=false \
    --profiling=false \
    ${KCM_SECURE_PORT:+"--secure-port=$KCM_SECURE_PORT"} ${KCM_CONTROLLERS:+"--controllers=$KCM_CONTROLLERS"}
}
controller_manager_healthy() { curl -fsSk --max-time 2 "https://127.0.0.1:${KCM_SECURE_PORT:-10257}/healthz" | grep -q ok; }
start_scheduler() {
  local kc=$STATE/config/scheduler.kubeconfig
  start_proc kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false
}

# ---------- containerd ----------
write_containerd_config() {
  mkdir -p "$CONTAINERD_DIR"/{root,state,run} "$STATE/cni/net.d" "$STATE/cni/ipam"
  cat >"$CONTAINERD_DIR/config.toml" <<TOML
# Our own containerd: own config, socket, root and state under the cluster dir
# (a system containerd, if any, is left alone).
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"
oom_score = 0

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_DIR/run/containerd.sock.ttrpc"

[debug]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj
  restrict_oom_score_adj = true
  # network namespaces live under our state dir, so down.sh finds and unmounts them
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CONTAINERD_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
TOML
  # CNI: the bridge plugin reuses our bridge and its address as the pods' gateway; no masquerade
  # (pods only ever talk to this machine). host-local keeps its leases under the cluster dir.
  cat >"$STATE/cni/net.d/10-authprobe.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "authprobe",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
JSON
}
start_containerd() {
  write_containerd_config
  # Image pulls must never leave the machine (all images are imported locally): point every
  # registry request at a closed loopback port through the proxy variables containerd honours.
  HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY='' \
    start_proc containerd "$(command -v containerd)" --config "$CONTAINERD_DIR/config.toml"
}
containerd_ready() { [[ -S $CONTAINERD_SOCK ]] && ctr --connect-timeout 2s --address "$CONTAINERD_SOCK" version; }

# ---------- kube-proxy ----------
start_kube_proxy() {
  mkdir -p "$STATE/config"
  cat >"$STATE/config/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $STATE/config/kube-proxy.kubeconfig
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $BRIDGE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$BRIDGE_IP/32"]
oomScoreAdj: 0
iptables:
  localhostNodePorts: false
# 0 = leave the kernel's conntrack settings alone (writing them fails here)
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML
  start_proc kube-proxy "$K8S_BIN/kube-proxy" --config="$STATE/config/kube-proxy.yaml"
}
# /livez: /healthz also reports whether the node is eligible for traffic, which is not our concern here
kube_proxy_ready() { curl -fsS --max-time 2 http://127.0.0.1:10256/livez; }

# ---------- kubelet ----------
start_kubelet() {
  mkdir -p "$KUBELET_DIR" "$STATE/config"
  # pods get this resolv.conf (no cluster DNS): a loopback nameserver, which inside a pod is the
  # pod's own loopback where nothing listens, so no DNS query ever leaves the machine
  printf 'nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n' >"$STATE/config/resolv.conf"
  cat >"$STATE/config/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $BRIDGE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# hybrid cgroup v1 here; containerd 1.6 has no RuntimeConfig so the kubelet uses this driver
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
# root here lacks CAP_SYS_RESOURCE
oomScoreAdj: 0
# images are imported, never pulled: never garbage-collect them
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
# short: after a restart the kubelet re-syncs pods (and re-mounts projected tokens) quickly
syncFrequency: 10s
resolvConf: $STATE/config/resolv.conf
# pod logs under the cluster dir (down.sh removes them)
podLogsDir: $STATE/pod-logs
clusterDomain: cluster.local
registerNode: true
serializeImagePulls: false
maxPods: 60
YAML
  start_proc kubelet "$K8S_BIN/kubelet" \
    --config="$STATE/config/kubelet.yaml" \
    --kubeconfig="$STATE/config/kubelet.kubeconfig" \
    --root-dir="$KUBELET_DIR" \
    --hostname-override="$NODE_NAME" --node-ip="$BRIDGE_IP" \
    --v=1
}
kubelet_healthy() { curl -fsS --max-time 2 http://127.0.0.1:10248/healthz; }
node_ready() {
  [[ $(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' --request-timeout=3s 2>/dev/null) == True ]]
}

all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do is_running "$c" || return 1; done
}

# ---------- stopping the node side ----------
stop_pod_containers() {
  # Stop every container and sandbox of our containerd (gracefully through its API while it runs),
  # then end any shim / container process still alive, by the pid files containerd writes.
  if containerd_ready >/dev/null 2>&1; then
    local t
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
    sleep 1
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1 || true; done
  fi
  local f pid
  # shims of OUR containerd: containerd-shim-runc-v2 processes whose command line names our socket
  # (containerd 1.6 writes no pid file for them)
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */containerd-shim* ]] || continue
    if grep -qaF "$CONTAINERD_SOCK" "$f" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  # container processes live in the kubelet's pod cgroups (only our kubelet runs on this machine)
  local procs
  procs=$(find /sys/fs/cgroup/ -path '*/kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
  for pid in $procs; do kill -KILL "$pid" 2>/dev/null || true; done
}

remove_pod_cgroups() {
  # empty cgroup directories the kubelet created (deepest first)
  find /sys/fs/cgroup/ -depth -type d -path '*/kubepods*' -exec rmdir {} \; 2>/dev/null || true
}

unmount_under() { # <dir>: unmount everything mounted below dir, deepest first
  local dir=$1 m
  [[ -d $dir ]] || return 0
  for m in $(findmnt -rn -o TARGET | grep -F "$dir" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}
