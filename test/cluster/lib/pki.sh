# Certificates and service-account keys for the test cluster (openssl only).
# shellcheck shell=bash

# SA key state: which key the apiserver signs with (SA_SIGNING_KEY), which keys it trusts
# (SA_VERIFY_KEYS) and which key kube-controller-manager's tokens controller signs legacy token
# secrets with (SA_KCM_SIGNING_KEY: the apiserver's signing key, except after
# `rotate-sa-key.sh --wrong-order`). Kept in the state dir so that an `up` after a rotation restarts
# the components with the same keys.
SA_KEYS_ENV=$STATE/sa-keys.env

_mkcert() { # <name> <subject> [sans]: a client or server cert signed by the cluster CA
  local name=$1 subj=$2 sans=${3:-}
  [[ -s $PKI/$name.crt && -s $PKI/$name.key ]] && return 0
  local ext; ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $sans ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$ext" "$PKI/$name.csr"
}

# new_sa_key: prints the path of a freshly generated RSA service-account key pair (private .key, public .pub)
new_sa_key() {
  mkdir -p "$PKI/sa"
  local k; k=$PKI/sa/sa-$(date +%Y%m%d%H%M%S)-$RANDOM
  openssl genrsa -out "$k.key" 2048 2>/dev/null
  openssl rsa -in "$k.key" -pubout -out "$k.pub" 2>/dev/null
  echo "$k"
}

_write_sa_keys_file() { # <apiserver signing key base> <kube-controller-manager signing key base> <verifying key bases...>
  local signing=$1 kcm=$2; shift 2
  printf 'SA_SIGNING_KEY=%q\nSA_VERIFY_KEYS=%q\nSA_KCM_SIGNING_KEY=%q\n' "$signing" "$*" "$kcm" >"$SA_KEYS_ENV.tmp"
  mv -f "$SA_KEYS_ENV.tmp" "$SA_KEYS_ENV"
}
# <signing key base> <verifying key bases...>: the apiserver and kube-controller-manager both sign with it
write_sa_keys_env() {
  local signing=$1; shift
  _write_sa_keys_file "$signing" "$signing" "$@"
}
# <key base>: kube-controller-manager signs with it; the apiserver's keys stay as they are
write_sa_kcm_key_env() {
  load_sa_keys
  # shellcheck disable=SC2086 # SA_VERIFY_KEYS is a space-separated list of paths
  _write_sa_keys_file "$SA_SIGNING_KEY" "$1" $SA_VERIFY_KEYS
}

_ensure_ca() { # <common name>: the cluster CA in $PKI (ca.crt, ca.key), made once
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -s $PKI/ca.crt ]]; then
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=$1" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
}
_ensure_sa_keys() { # the first service-account key, unless sa-keys.env already names the current ones
  if [[ ! -s $SA_KEYS_ENV ]]; then
    local k; k=$(new_sa_key)
    write_sa_keys_env "$k" "$k"
  fi
}

ensure_pki() {
  _ensure_ca authprobe-test-ca
  _mkcert apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:$KUBERNETES_SVC_IP,IP:$BRIDGE_IP,IP:127.0.0.1"
  _mkcert apiserver-kubelet-client "/O=authprobe:apiserver-kubelet-client/CN=kube-apiserver-kubelet-client"
  _mkcert admin "/O=system:masters/CN=authprobe-admin"
  _mkcert controller-manager "/CN=system:kube-controller-manager"
  _mkcert scheduler "/CN=system:kube-scheduler"
  _mkcert kube-proxy "/CN=system:kube-proxy"
  _mkcert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  # the kubelet's own serving cert, so the apiserver can reach it at the node IP
  _mkcert kubelet-serving "/CN=$NODE_NAME" "DNS:$NODE_NAME,IP:$BRIDGE_IP"
  _ensure_sa_keys
}

kid_of_pub() { # <public key file>: the key id the apiserver puts in tokens, base64url(sha256(PKIX DER))
  openssl pkey -pubin -in "$1" -outform DER | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '='
}

load_sa_keys() { # sets SA_SIGNING_KEY, SA_VERIFY_KEYS and SA_KCM_SIGNING_KEY
  unset SA_KCM_SIGNING_KEY
  # shellcheck disable=SC1090
  source "$SA_KEYS_ENV"
  # a file written before kube-controller-manager had a key of its own: it signs with the apiserver's
  SA_KCM_SIGNING_KEY=${SA_KCM_SIGNING_KEY:-$SA_SIGNING_KEY}
}

write_kubeconfig() { # <file> <user> <cert name>
  local f=$1 user=$2 cert=$3
  cat >"$f.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI/$cert.key")
contexts:
- name: $CLUSTER_NAME
  context: {cluster: $CLUSTER_NAME, user: $user}
current-context: $CLUSTER_NAME
KC
  chmod 600 "$f.tmp"
  mv -f "$f.tmp" "$f"
}

ensure_kubeconfigs() {
  mkdir -p "$STATE/config"
  write_kubeconfig "$ADMIN_KUBECONFIG" authprobe-admin admin
  write_kubeconfig "$STATE/config/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  write_kubeconfig "$STATE/config/scheduler.kubeconfig" system:kube-scheduler scheduler
  write_kubeconfig "$STATE/config/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
  write_kubeconfig "$STATE/config/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet
}
