#!/usr/bin/env bash
# Prints shell lines to eval for the second test cluster (see second/up.sh):
#   eval "$(npm run -s cluster:second:env)"
#   KUBECONFIG2               its admin kubeconfig (system:masters; server and CA embedded)
#   AUTHPROBE_SECOND_CA       its CA certificate (PEM), which signs its apiserver's serving certificate
#   AUTHPROBE_SECOND_SERVER   https://10.244.0.1:6444, reachable from this host and from pods of the first cluster
#   AUTHPROBE_SECOND_ISSUER   its service-account issuer (https://second.authprobe.test)
# The paths are fixed; a note goes to stderr when the cluster has not been brought up yet.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../lib/second.sh
source "$CLUSTER_SRC/lib/second.sh"
[[ -s $ADMIN_KUBECONFIG ]] || echo "# the second cluster is not up: npm run cluster:second:up" >&2
printf 'export KUBECONFIG2=%q\n' "$ADMIN_KUBECONFIG"
printf 'export AUTHPROBE_SECOND_CA=%q\n' "$PKI/ca.crt"
printf 'export AUTHPROBE_SECOND_SERVER=%q\n' "$APISERVER_URL"
printf 'export AUTHPROBE_SECOND_ISSUER=%q\n' "$SA_ISSUER"
