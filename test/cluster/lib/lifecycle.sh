# Bringing the whole cluster down (used by down.sh, and by up.sh to clear a stale run).
# shellcheck shell=bash

# Paths outside the cluster dir that the kubelet hard-codes; removed by down.sh only if
# up.sh found them absent (recorded in $STATE/created-paths).
# containerd 1.6 likewise keeps shim sockets in /run/containerd/s (not configurable).
HOST_PATHS=(/var/lib/kubelet /var/log/containers /run/containerd)

record_host_paths() {
  local p
  for p in "${HOST_PATHS[@]}"; do
    [[ -e $p ]] || grep -qxF "$p" "$STATE/created-paths" 2>/dev/null || echo "$p" >>"$STATE/created-paths"
  done
}

stop_everything() { # processes, pod containers, mounts, network. Keeps certs, keys and etcd data.
  # the kubelet first, so it does not restart containers we are stopping
  stop_proc kubelet
  stop_pod_containers
  # the rest need no order (each takes ~2 s to shut down gracefully): stop them together
  stop_proc containerd &
  stop_proc kube-proxy &
  stop_proc kube-scheduler &
  stop_proc kube-controller-manager &
  stop_proc kube-apiserver "$APISERVER_STOP_GRACE" &
  stop_proc etcd &
  wait
  stop_pod_containers   # anything that outlived containerd (shims, container processes)
  unmount_under "$STATE"
  remove_network
  remove_pod_cgroups
}
