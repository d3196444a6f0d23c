#!/usr/bin/env bash
# Installs the Debian packages the node needs, only when a tool is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

declare -A pkg_for=(
  [containerd]=containerd [ctr]=containerd [runc]=runc
  [iptables]=iptables [conntrack]=conntrack [socat]=socat
  [openssl]=openssl [gcc]=gcc [curl]=curl [busybox]=busybox-static
  [faketime]=faketime # the fault suite skews one operator's wall clock (libfaketime)
)
missing=()
for tool in "${!pkg_for[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_for[$tool]}")
done
# CNI plugins (bridge, host-local, loopback, portmap) live in /usr/lib/cni, not on PATH.
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
  missing+=(containernetworking-plugins)
# libc6-dev provides the static libc for the pause binary.
[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || missing+=(libc6-dev)

if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # apt lists are fetched once per machine (the newest list file tells us whether that happened)
  if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null) ]]; then
    apt-get update -qq >&2
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
log "node packages present"
