#!/usr/bin/env bash
# Builds the pinned Kubernetes, etcd and Helm binaries from the Go module proxy into
# $AUTHPROBE_CACHE/bin/<name>-<version>/ (outside the work tree). Reuses what is there.
# Each binary is built under a temporary name and renamed, so an interrupted build
# never leaves a half-written binary behind.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

build_one() { # <consumer module dir> <out dir> <name> <package> <ldflags>
  local mod=$1 out=$2 name=$3 pkg=$4 ldflags=$5
  [[ -x $out/$name ]] && return 0
  mkdir -p "$out"
  local t0=$SECONDS
  log "building $name ($pkg) ..."
  (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$out/.$name.tmp.$$" "$pkg")
  mv -f "$out/.$name.tmp.$$" "$out/$name"
  log "built $name in $((SECONDS - t0))s"
}

k8s_ldflags() {
  local minor; minor=$(cut -d. -f2 <<<"$K8S_VERSION")
  local major; major=$(cut -d. -f1 <<<"${K8S_VERSION#v}")
  local f="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    f+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$f"
}

t_all=$SECONDS
want=${*:-all}
if [[ $want == all || $want == *k8s* ]]; then
  lf=$(k8s_ldflags)
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    build_one "$CLUSTER_SRC/build/k8s" "$K8S_BIN" "$c" "k8s.io/kubernetes/cmd/$c" "$lf"
  done
fi
if [[ $want == all || $want == *etcd* ]]; then
  build_one "$CLUSTER_SRC/build/etcd" "$ETCD_BIN" etcd go.etcd.io/etcd/server/v3 "-s -w"
fi
if [[ $want == all || $want == *helm* ]]; then
  build_one "$CLUSTER_SRC/build/helm" "$HELM_BIN" helm helm.sh/helm/v3/cmd/helm \
    "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
fi
log "binaries ready ($((SECONDS - t_all))s)"
