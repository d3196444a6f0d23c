#!/usr/bin/env bash
# Runs a command as the only authprobe operator of the cluster (the test suites and the benchmark start
# their own operators; one installed by `npm run demo` would act on their AuthProbes too).
#   On the project's own test cluster (KUBECONFIG is its admin kubeconfig): removes what the demo left,
#   i.e. every Helm release of the authprobe-operator chart and the demo's namespace. This cluster
#   belongs to these scripts; `npm run demo` puts it all back.
#   On any other cluster: changes nothing; refuses, naming what is installed, if an operator is found.
# Usage (inside with-cluster.sh, which sets KUBECONFIG and PATH): exclusive.sh <command...>
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
(($#)) || die "usage: exclusive.sh <command...>"
DEMO_NS=authprobe-demo
CHART=authprobe-operator

operators() { # namespace/name of every operator Deployment the chart installed, one a line
  kubectl get deployments -A -l "app.kubernetes.io/name=$CHART" \
    -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'
}

found=$(operators)
if [[ -n $found ]]; then
  if [[ ${KUBECONFIG:-} != "$ADMIN_KUBECONFIG" ]]; then
    die "an authprobe operator is installed in the cluster KUBECONFIG names ($(tr '\n' ' ' <<<"$found")); it would act on the tests' AuthProbes too. This is not the project's own test cluster, so nothing is removed: uninstall it (helm uninstall) or point KUBECONFIG at another cluster."
  fi
  # Helm releases of the chart, whatever their name and namespace ("<namespace> <release>" lines).
  releases=$(helm list -A -o json | jq -r --arg chart "$CHART" '.[] | select(.chart | startswith($chart + "-")) | "\(.namespace) \(.name)"')
  while read -r ns release; do
    [[ -n $release ]] || continue
    log "exclusive: uninstalling Helm release $ns/$release (left by npm run demo) from the project's test cluster"
    helm uninstall "$release" -n "$ns" --wait --timeout 120s >&2
  done <<<"$releases"
  [[ -z $(operators) ]] || die "an authprobe operator is still installed ($(operators | tr '\n' ' ')) though no Helm release of $CHART remains; remove it by hand"
fi
if [[ ${KUBECONFIG:-} == "$ADMIN_KUBECONFIG" ]] && kubectl get namespace "$DEMO_NS" >/dev/null 2>&1; then
  log "exclusive: deleting the demo namespace $DEMO_NS from the project's test cluster"
  kubectl delete namespace "$DEMO_NS" --wait=true --timeout=120s >&2
fi
exec "$@"
