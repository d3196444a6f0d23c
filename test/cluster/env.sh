#!/usr/bin/env bash
# Prints shell lines to eval: KUBECONFIG for the test cluster, and a PATH with the
# kubectl and helm built for it.   eval "$(npm run -s cluster:env)"
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
# kubectl and helm side by side in one directory, so one PATH entry serves both
tools=$CACHE/bin/tools-$K8S_VERSION-$HELM_VERSION
if [[ -x $K8S_BIN/kubectl && -x $HELM_BIN/helm ]]; then
  mkdir -p "$tools"
  ln -sfn "$K8S_BIN/kubectl" "$tools/kubectl"
  ln -sfn "$HELM_BIN/helm" "$tools/helm"
fi
printf 'export KUBECONFIG=%q\n' "$ADMIN_KUBECONFIG"
printf 'export PATH=%q:"$PATH"\n' "$tools"
