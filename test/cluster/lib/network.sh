# Pod bridge, service-range sink and the network guard.
# THE RULE: test traffic stays on this machine. Nothing a pod sends may leave
# through another interface (uplink), DNS included.
# shellcheck shell=bash

GUARD_CHAIN=AUTHPROBE-GUARD

check_ranges_free() {
  # refuse to start if the machine already routes our ranges (e.g. a different uplink network)
  local r
  for r in "$POD_CIDR" "$SERVICE_CIDR"; do
    if ip -4 route show to match "${r%/*}" | grep -v -e '^default' -e "dev $BRIDGE" | grep -q .; then
      die "$r overlaps a route on this machine: $(ip -4 route show to match "${r%/*}" | grep -v '^default')"
    fi
  done
}

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  # created before the apiserver starts (it binds to this address); the CNI bridge plugin reuses it
  ip addr replace "$BRIDGE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Service range sink: ClusterIPs that kube-proxy does not rewrite go to our own bridge,
  # where nobody answers, instead of following the default route out of the machine.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$BRIDGE_IP"
}

_ipt_ensure() { # <table> <chain> <position|A> <rule...>: add the rule once
  local table=$1 chain=$2 pos=$3; shift 3
  iptables -w -t "$table" -C "$chain" "$@" 2>/dev/null && return 0
  if [[ $pos == A ]]; then iptables -w -t "$table" -A "$chain" "$@"; else iptables -w -t "$table" -I "$chain" "$pos" "$@"; fi
}

install_guard() {
  # 1) mangle FORWARD runs before any filter rule (kube-proxy's KUBE-FORWARD accepts included):
  #    drop everything forwarded from the pod bridge to any other interface.
  _ipt_ensure mangle FORWARD 1 -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "authprobe guard: pod traffic stays on this machine" -j DROP
  # pods get no IPv6 address, but drop forwarded IPv6 from the bridge as well
  ip6tables -w -t mangle -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null ||
    ip6tables -w -t mangle -I FORWARD 1 -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  # 2) the same in filter FORWARD, answered with a reject (kept first, re-asserted after kube-proxy starts).
  iptables -w -N "$GUARD_CHAIN" 2>/dev/null || true
  iptables -w -F "$GUARD_CHAIN"
  iptables -w -A "$GUARD_CHAIN" -i "$BRIDGE" ! -o "$BRIDGE" -j REJECT --reject-with icmp-net-prohibited
  reassert_guard_first
}

reassert_guard_first() {
  # kube-proxy prepends its own FORWARD jumps; keep ours at position 1
  while iptables -w -D FORWARD -j "$GUARD_CHAIN" 2>/dev/null; do :; done
  iptables -w -I FORWARD 1 -j "$GUARD_CHAIN"
}

guard_installed() {
  iptables -w -t mangle -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "authprobe guard: pod traffic stays on this machine" -j DROP 2>/dev/null &&
    iptables -w -C FORWARD -j "$GUARD_CHAIN" 2>/dev/null
}

# Removes the guard, kube-proxy's and CNI's rules, the route and the bridge.
remove_network() {
  iptables -w -t mangle -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "authprobe guard: pod traffic stays on this machine" -j DROP 2>/dev/null || true
  ip6tables -w -t mangle -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null || true
  while iptables -w -D FORWARD -j "$GUARD_CHAIN" 2>/dev/null; do :; done
  iptables -w -F "$GUARD_CHAIN" 2>/dev/null || true
  iptables -w -X "$GUARD_CHAIN" 2>/dev/null || true
  # kube-proxy's rules: its own cleanup mode knows them all
  if [[ -x $K8S_BIN/kube-proxy ]]; then
    "$K8S_BIN/kube-proxy" --cleanup >>"$LOGS/kube-proxy-cleanup.log" 2>&1 || true
  fi
  _remove_kube_chains
  ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  # pod veths go with their network namespaces; delete any left-over ones on our bridge
  local v
  for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$v" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}

_remove_kube_chains() {
  # Chains named KUBE-* / CNI-* are created only by our kube-proxy, kubelet and CNI plugins
  # on this machine (there is no other Kubernetes here).
  local ipt t c
  for ipt in iptables ip6tables; do
  for t in filter nat mangle; do
    for c in $($ipt -w -t "$t" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/{print $2}'); do
      # remove jumps into the chain from every other chain, then the chain
      $ipt -w -t "$t" -S | awk -v c="$c" '$1=="-A" && / -j / { for(i=1;i<=NF;i++) if($i=="-j" && $(i+1)==c) print }' |
        while read -r rule; do
          # rules carry quoted comments, so let the shell re-parse iptables' own quoting
          eval "$ipt -w -t $t ${rule/-A /-D }" 2>/dev/null || true
        done
    done
    for c in $($ipt -w -t "$t" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/{print $2}'); do $ipt -w -t "$t" -F "$c" 2>/dev/null || true; done
    for c in $($ipt -w -t "$t" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/{print $2}'); do $ipt -w -t "$t" -X "$c" 2>/dev/null || true; done
  done
  done
}
