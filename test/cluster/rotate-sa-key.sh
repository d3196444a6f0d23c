#!/usr/bin/env bash
# Service-account signing key rotation, compressed into seconds.
#
# Default (a completed, careful rotation):
#   1. a new RSA key signs (apiserver --service-account-signing-key-file, controller-manager
#      --service-account-private-key-file) while the old and the new keys both verify;
#   2. the kubelet is restarted: it keeps issued tokens in memory only, so it requests fresh
#      projected tokens for every running pod, now signed with the new key (verified below by
#      the `kid` in each pod's mounted token header; token contents are never printed);
#   3. the apiserver restarts with only the new key verifying.
#   Afterwards legacy token secrets signed with the old key get 401 forever; running pods keep working.
#
# --abrupt: only the new key, at once (like an etcd restore into another cluster): every token
#   signed with the old key fails, projected ones too, until the kubelet re-issues them.
#
# --wrong-order: a rotation done in the wrong order. Only kube-controller-manager is restarted, its
#   tokens controller (--service-account-private-key-file, which fills legacy token secrets) signing
#   with a new RSA key the apiserver does not trust; the apiserver keeps its signing key and its
#   verifying set and is not restarted. Existing tokens keep working; every legacy token secret filled
#   from then on holds a token the apiserver rejects (401). Logs the new key's kid and the kids the
#   apiserver trusts (/openid/v1/jwks). The keys agree again after a plain rotate-sa-key.sh (a
#   completed rotation to another new key; it, like --abrupt, sets kube-controller-manager's key too).
#   Kept in sa-keys.env (SA_KCM_SIGNING_KEY), so an `up` restarts kube-controller-manager with it.
#
# Each apiserver restart goes through lib/restart.sh: kube-proxy, the scheduler and the
# controller-manager are stopped and the kubelet frozen meanwhile, so that none of them is left in
# client-go's back-off; the script returns once they are all back and pods reach the apiserver
# through the kubernetes Service.
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/pki.sh"
source "$CLUSTER_SRC/lib/components.sh"
source "$CLUSTER_SRC/lib/restart.sh"

abrupt="" wrong_order=""
case ${1:-} in
  --abrupt) abrupt=1 ;;
  --wrong-order) wrong_order=1 ;;
  "") ;;
  *) die "usage: rotate-sa-key.sh [--abrupt | --wrong-order]" ;;
esac
[[ $EUID -eq 0 ]] || die "run as root"
take_cluster_lock
is_running kube-apiserver && apiserver_ready || die "the cluster is not up (npm run cluster:up)"

kid_of_pub() { # the key id the apiserver puts in tokens: base64url(sha256(PKIX DER of the public key))
  openssl pkey -pubin -in "$1" -outform DER | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '='
}
token_kid() { # kid from the JWT header of a token file (the header only; the token is never printed)
  local h; h=$(cut -d. -f1 "$1" | tr '_-' '/+')
  while ((${#h} % 4)); do h+="="; done
  base64 -d <<<"$h" 2>/dev/null | jq -r '.kid // empty'
}
projected_tokens() { # service-account tokens the kubelet has mounted into projected volumes of running pods
  local uid f
  for uid in $(kubectl_ get pods -A --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.metadata.uid}{"\n"}{end}'); do
    for f in "$KUBELET_DIR/pods/$uid"/volumes/kubernetes.io~projected/*/[!.]*; do
      # a projected volume may also hold ca.crt / namespace; tokens are JWTs (header starts {" = eyJ)
      [[ -f $f && $(head -c3 "$f") == eyJ ]] && echo "$f"
    done
  done
  return 0 # the last file tested may not be a token; that is not a failure (set -e, pipefail)
}
count_old_tokens() { # <new kid>: how many mounted projected tokens are not signed with it
  local n=0 f
  while read -r f; do
    [[ -n $f ]] || continue
    [[ $(token_kid "$f") == "$1" ]] || n=$((n + 1))
  done < <(projected_tokens)
  echo "$n"
}
load_sa_keys
old_signing=$SA_SIGNING_KEY old_verify=$SA_VERIFY_KEYS
new=$(new_sa_key)
new_kid=$(kid_of_pub "$new.pub")

if [[ -n $wrong_order ]]; then
  trusted=$(kubectl_ get --raw /openid/v1/jwks --request-timeout=5s | jq -r '[.keys[].kid] | join(" ")') ||
    die "cannot read the apiserver's /openid/v1/jwks"
  [[ " $trusted " != *" $new_kid "* ]] || die "the apiserver already trusts kid=$new_kid"
  log "wrong order: kube-controller-manager alone switches to a new key, kid=$new_kid; the apiserver keeps signing with kid=$(kid_of_pub "$old_signing.pub") and trusts only kid=${trusted// /, kid=}"
  write_sa_kcm_key_env "$new"
  t0=$SECONDS
  # whatever happens from here on, kube-controller-manager is left running (with the key just written)
  trap 'is_running kube-controller-manager || start_controller_manager' EXIT
  stop_proc kube-controller-manager
  start_controller_manager
  wait_for 60 "kube-controller-manager healthy" controller_manager_healthy ||
    die "kube-controller-manager not healthy; see $LOGS/kube-controller-manager.log"
  is_running kube-controller-manager || die "kube-controller-manager exited; see $LOGS/kube-controller-manager.log"
  grep -qaF -- "--service-account-private-key-file=$new.key" "/proc/$(pid_of kube-controller-manager)/cmdline" ||
    die "kube-controller-manager does not run with the new key"
  trap - EXIT
  log "kube-controller-manager restarted and healthy in $((SECONDS - t0))s, signing legacy token secrets with kid=$new_kid; the apiserver was not restarted"
  log "done: existing tokens keep working; every legacy token secret filled from now on holds a token the apiserver rejects (401)"
  log "to bring the keys back into agreement: bash test/cluster/rotate-sa-key.sh (a completed rotation to another new key, which kube-controller-manager signs with too; --abrupt sets it as well)"
  exit 0
fi

log "old signing key kid=$(kid_of_pub "$old_signing.pub"), new key kid=$new_kid"
if [[ $SA_KCM_SIGNING_KEY != "$old_signing" ]]; then
  log "kube-controller-manager signs legacy token secrets with kid=$(kid_of_pub "$SA_KCM_SIGNING_KEY.pub") (a --wrong-order rotation); from now on it signs with the new key too"
fi

if [[ -n $abrupt ]]; then
  log "abrupt: the new key alone signs and verifies"
  write_sa_keys_env "$new" "$new"
  restart_apiserver
  log "done: every token signed with an old key is now rejected until re-issued ($(count_old_tokens "$new_kid") mounted projected tokens still carry an old key)"
  exit 0
fi

log "step 1/3: new key signs; old and new keys verify"
write_sa_keys_env "$new" "$old_verify $new"
restart_apiserver

log "step 2/3: restarting the kubelet so running pods get tokens signed with the new key"
restart_kubelet
total=$(projected_tokens | wc -l)
left=$(count_old_tokens "$new_kid")
deadline=$((SECONDS + 180))
while ((left > 0 && SECONDS < deadline)); do sleep 2; left=$(count_old_tokens "$new_kid"); done
((left == 0)) || die "$left of $total mounted projected tokens still carry an old key after 180s; see $LOGS/kubelet.log"
log "all $total mounted projected tokens now carry kid=$new_kid"

log "step 3/3: dropping the old key from the verifying set"
write_sa_keys_env "$new" "$new"
restart_apiserver
log "rotation complete: legacy tokens signed with the old key now get 401; running pods keep working"
