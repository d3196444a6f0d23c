# The second test cluster: a control plane only (etcd, kube-apiserver, kube-controller-manager; no node,
# no kubelet, scheduler or kube-proxy) with its own CA, certificates, service-account keys, ports, state
# dir and lock. Source it after common.sh: it points the shared settings (STATE, PIDS, LOGS, PKI, ports,
# service range, issuer) at the second cluster, so that the helpers of common.sh, pki.sh and
# components.sh (take_cluster_lock, start_proc, stop_proc, wait_for, _mkcert, new_sa_key, start_etcd,
# start_apiserver, ...) serve it unchanged. Only the scripts in second/ source it; the first cluster's
# scripts run those as child processes (down.sh, status.sh), so the two sets of settings never mix.
# shellcheck shell=bash

FIRST_STATE=$STATE
STATE=$FIRST_STATE/second     # its lock is $STATE/.lock (take_cluster_lock), apart from the first's
LOGS=$STATE/logs
PIDS=$STATE/pids
PKI=$STATE/pki
ADMIN_KUBECONFIG=$STATE/kubeconfig
CLUSTER_NAME=authprobe-second
# The apiserver listens on the first cluster's bridge address (pods of the first cluster reach it there,
# and so does this host), on another port. Nothing listens on an address that leaves the machine.
APISERVER_PORT=6444
APISERVER_URL=https://$BRIDGE_IP:$APISERVER_PORT
# Apart from the first cluster's pod and service ranges (10.244.0.0/24, 10.96.0.0/24). Nothing routes
# to it: the unreachable route below makes the host's packets to it fail here instead of leaving.
SERVICE_CIDR=10.97.0.0/24
KUBERNETES_SVC_IP=10.97.0.1
ETCD_CLIENT_PORT=2479 ETCD_PEER_PORT=2480 ETCD_METRICS_PORT=2481
SA_ISSUER=https://second.authprobe.test
SA_JWKS_URI=$APISERVER_URL/openid/v1/jwks # in /.well-known/openid-configuration: a URL that answers
KCM_SECURE_PORT=10357                      # 127.0.0.1; the first's kube-controller-manager has 10257
# the tokens controller and what keeps namespaces, ServiceAccounts and RBAC aggregation working
KCM_CONTROLLERS=serviceaccount-token-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller
CONTROL_PLANE_ONLY=1
# the node side's paths belong to the first cluster; nothing here may use them
unset KUBELET_DIR CONTAINERD_DIR CONTAINERD_SOCK

# shellcheck source=components.sh
source "$CLUSTER_SRC/lib/components.sh" # (it sources pki.sh, which keeps the SA keys in $STATE/sa-keys.env)
SA_KEYS_ENV=$STATE/sa-keys.env
COMPONENTS=(etcd kube-apiserver kube-controller-manager)

# The first cluster's bridge carries the address the apiserver binds to (up.sh creates it, down.sh removes it).
bridge_address_present() { ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | grep -qF " $BRIDGE_IP/"; }

ensure_service_range_sink() {
  if ip -4 route show to match "${SERVICE_CIDR%/*}" | grep -v -e '^default' -e "^unreachable $SERVICE_CIDR" | grep -q .; then
    die "$SERVICE_CIDR overlaps a route on this machine: $(ip -4 route show to match "${SERVICE_CIDR%/*}" | grep -v '^default')"
  fi
  ip route replace unreachable "$SERVICE_CIDR"
}
remove_service_range_sink() { ip route del unreachable "$SERVICE_CIDR" 2>/dev/null || true; }

ensure_second_pki() {
  _ensure_ca authprobe-second-ca
  _mkcert apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:$KUBERNETES_SVC_IP,IP:$BRIDGE_IP,IP:127.0.0.1"
  _mkcert admin "/O=system:masters/CN=authprobe-second-admin"
  _mkcert controller-manager "/CN=system:kube-controller-manager"
  _ensure_sa_keys
}
ensure_second_kubeconfigs() {
  mkdir -p "$STATE/config"
  write_kubeconfig "$ADMIN_KUBECONFIG" authprobe-second-admin admin
  write_kubeconfig "$STATE/config/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
}

second_healthy() { all_running && apiserver_ready && controller_manager_healthy; }

stop_second_cluster() { # every process of the second cluster, by its pid file; keeps certs, keys, etcd data
  stop_proc kube-controller-manager &
  stop_proc kube-apiserver "$APISERVER_STOP_GRACE" &
  wait
  # etcd last: a stopping apiserver still writes to it (its endpoint lease) and, without it, waits until
  # it is killed after its grace (all three together took 7 s, this 5 s)
  stop_proc etcd
}

# restart_second_apiserver: a new apiserver process with the current flags (SA keys). kube-controller-manager
# is stopped first and started once the apiserver is ready, so that none of its watches sits in client-go's
# back-off (see lib/restart.sh); it also picks up its signing key from sa-keys.env.
restart_second_apiserver() {
  stop_proc kube-controller-manager
  stop_proc kube-apiserver "$APISERVER_STOP_GRACE"
  start_apiserver
  wait_for 120 "the second kube-apiserver" apiserver_ready || die "the second kube-apiserver is not ready; see $LOGS/kube-apiserver.log"
  start_controller_manager
  wait_for 60 "the second kube-controller-manager" controller_manager_healthy ||
    die "the second kube-controller-manager is not healthy; see $LOGS/kube-controller-manager.log"
}

# Trusted key ids, from the apiserver's /openid/v1/jwks, sorted and space-separated.
trusted_kids() { kubectl_ get --raw /openid/v1/jwks --request-timeout=5s | jq -r '[.keys[].kid] | sort | join(" ")'; }

# The tokens controller fills a new legacy token Secret (kube-system, for the default ServiceAccount);
# the Secret is deleted afterwards. The token itself is never read into the shell.
_token_secret_filled() {
  [[ $(kubectl_ -n "$1" get secret "$2" --request-timeout=3s -o go-template='{{if .data.token}}filled{{end}}') == filled ]]
}
check_tokens_controller() {
  local ns=kube-system name=authprobe-second-smoke
  wait_for 60 "the default ServiceAccount in $ns" kubectl_ -n "$ns" get serviceaccount default --request-timeout=3s ||
    die "no default ServiceAccount in $ns; see $LOGS/kube-controller-manager.log"
  kubectl_ -n "$ns" delete secret "$name" --ignore-not-found --wait=false >/dev/null
  kubectl_ -n "$ns" create -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata: {name: $name, annotations: {kubernetes.io/service-account.name: default}}
YAML
  wait_for 60 "the tokens controller to fill $ns/$name" _token_secret_filled "$ns" "$name" ||
    die "the test token Secret was not filled; see $LOGS/kube-controller-manager.log"
  kubectl_ -n "$ns" delete secret "$name" --wait=false >/dev/null
}
