# Bringing the whole cluster down (used by down.sh, and by up.sh to clear a stale run).
# shellcheck shell=bash

# Paths outside the cluster dir that the kubelet hard-codes; removed by down.sh only if
# up.sh found them absent (recorded in $STATE/created-paths).
HOST_PATHS=(/var/lib/kubelet /var/log/containers)

record_host_paths() {
  local p
  for p in "${HOST_PATHS[@]}"; do
    [[ -e $p ]] || grep -qxF "$p" "$STATE/created-paths" 2>/dev/null || echo "$p" >>"$STATE/created-paths"
  done
}

stop_everything() { # processes, pod containers, mounts, network. Keeps certs, keys and etcd data.
  stop_proc kubelet
  stop_pod_containers
  stop_proc containerd
  stop_pod_containers   # anything that outlived containerd (shims, container processes)
  stop_proc kube-proxy
  stop_proc kube-scheduler
  stop_proc kube-controller-manager
  stop_proc kube-apiserver
  stop_proc etcd
  unmount_under "$STATE"
  remove_network
  remove_pod_cgroups
}
