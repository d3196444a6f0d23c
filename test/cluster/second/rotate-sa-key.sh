#!/usr/bin/env bash
# A completed service-account key rotation of the second test cluster (see second/up.sh); the first
# cluster is not touched.
#   npm run cluster:second:rotate-sa-key     (bash test/cluster/second/rotate-sa-key.sh)
#   1. a new RSA key signs (kube-apiserver --service-account-signing-key-file, kube-controller-manager
#      --service-account-private-key-file) while the old and the new keys both verify;
#   2. the apiserver restarts with only the new key verifying.
# Each step restarts kube-apiserver, with kube-controller-manager stopped meanwhile and started once the
# apiserver is ready (second.sh: restart_second_apiserver); each ends with a check of the key ids in the
# apiserver's /openid/v1/jwks. There are no pods whose projected tokens would need re-issuing in between.
# Afterwards legacy token Secrets signed with the old key get 401 forever; new ones carry the new key.
# The keys live in /var/lib/authprobe-cluster/second/sa-keys.env (and pki/sa/), so an up keeps them.
set -euo pipefail
START_TS=$(date +%s)
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/second.sh
source "$CLUSTER_SRC/lib/second.sh"

[[ $EUID -eq 0 ]] || die "run as root"
[[ -d $STATE ]] || die "the second cluster is not up (npm run cluster:second:up)"
take_cluster_lock
second_healthy || die "the second cluster is not up (npm run cluster:second:up)"

load_sa_keys
old_kid=$(kid_of_pub "$SA_SIGNING_KEY.pub")
old_verify=$SA_VERIFY_KEYS
new=$(new_sa_key)
new_kid=$(kid_of_pub "$new.pub")
log "second cluster: old signing key kid=$old_kid, new key kid=$new_kid"

log "step 1/2: new key signs; old and new keys verify"
write_sa_keys_env "$new" "$old_verify $new"
restart_second_apiserver
kids=$(trusted_kids) || die "cannot read /openid/v1/jwks"
[[ " $kids " == *" $new_kid "* && " $kids " == *" $old_kid "* ]] || die "the apiserver trusts kid=$kids, expected both $old_kid and $new_kid"

log "step 2/2: dropping the old key from the verifying set"
write_sa_keys_env "$new" "$new"
restart_second_apiserver
kids=$(trusted_kids) || die "cannot read /openid/v1/jwks"
[[ $kids == "$new_kid" ]] || die "the apiserver trusts kid=$kids, expected only $new_kid"
log "second cluster rotation complete: only kid=$new_kid signs and verifies; legacy tokens signed with kid=$old_kid now get 401"
