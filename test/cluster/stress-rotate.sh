#!/usr/bin/env bash
# Stress run of the service-account key rotation (not part of npm test): N completed and M abrupt
# rotations in a row, the abrupt ones spread evenly among the completed ones; then, per kind, how
# many ran, how many failed, and p50 / max seconds per rotation.
#   usage: stress-rotate.sh [--completed N] [--abrupt M]      (defaults: 30 and 10)
# Run it on an otherwise idle test cluster (npm run cluster:up). About 20 s per rotation with its checks
# (13 minutes for the defaults): start it in the background with its output to a file.
#
# Each rotation and the checks after it hold the cluster lock, so that no other script (a test suite's
# rotation or outage) runs in between; other scripts get their turn between two rotations.
# After every rotation, without waiting for anything to heal, it checks what the test suites rely on:
#  1. the node is Ready and this host reaches the apiserver through the kubernetes Service;
#  2. a pod that runs throughout ("steady") reaches https://10.96.0.1 with its projected token and
#     gets 200 after a completed rotation; after an abrupt one its token carries the dropped key: 401;
#  3. a new pod is scheduled and running within 30 s (the scheduler's and the kubelet's watches work);
#  4. after an abrupt rotation, restart-kubelet.sh re-issues the tokens (as test/e2e/abrupt.e2e.test.ts
#     does) and the steady pod gets 200 again within 60 s: the next rotation starts from a healthy cluster.
# A failed rotation or check counts as a failure of that rotation and is shown with its output; the
# run stops at a failed check, since the next rotation would start from a broken cluster.
# Exit status 0 only when nothing failed.
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/components.sh"

completed=30 abrupt=10
while (($#)); do
  case $1 in
    --completed) completed=${2:?}; shift 2 ;;
    --abrupt) abrupt=${2:?}; shift 2 ;;
    *) die "usage: stress-rotate.sh [--completed N] [--abrupt M]" ;;
  esac
done
[[ $completed =~ ^[0-9]+$ && $abrupt =~ ^[0-9]+$ ]] || die "N and M must be whole numbers"
[[ $EUID -eq 0 ]] || die "run as root"
apiserver_ready && node_ready && service_path_ready || die "the cluster is not up (npm run cluster:up)"

NS=authprobe-stress
OUT=/tmp/authprobe-stress-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
TOKEN=/var/run/secrets/kubernetes.io/serviceaccount
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }

# ---------- the workload the checks use ----------
steady_status() { # HTTP status of GET /api from the steady pod, with its mounted token, through the Service
  kubectl_ -n "$NS" exec steady -- sh -c \
    "curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert $TOKEN/ca.crt -H \"Authorization: Bearer \$(cat $TOKEN/token)\" https://$KUBERNETES_SVC_IP/api" \
    2>/dev/null || true
}
pod_running() { [[ $(kubectl_ -n "$NS" get pod "$1" -o jsonpath='{.status.phase}' --request-timeout=3s 2>/dev/null) == Running ]]; }
run_pod() { # <name>: a toolbox pod that sleeps
  kubectl_ -n "$NS" run "$1" --image="$TOOLBOX_IMAGE" --image-pull-policy=Never --restart=Never \
    --command -- sleep 3600 >/dev/null
}
setup() {
  if kubectl_ get namespace "$NS" >/dev/null 2>&1; then
    log "deleting namespace $NS left by an earlier run"
    kubectl_ delete namespace "$NS" --timeout=120s >/dev/null
  fi
  kubectl_ create namespace "$NS" >/dev/null
  wait_for 60 "service account $NS/default" kubectl_ -n "$NS" get serviceaccount default || die "no default service account in $NS"
  run_pod steady
  wait_for 60 "pod $NS/steady running" pod_running steady || die "pod $NS/steady not running; see $LOGS/kubelet.log"
  [[ $(steady_status) == 200 ]] || die "pod $NS/steady does not reach https://$KUBERNETES_SVC_IP with its token before any rotation"
}

# ---------- checks after a rotation (no waiting, except where the step itself is asynchronous) ----------
FAILED_CHECK=""
fail_check() { FAILED_CHECK=$1; log "  FAILED: $1"; return 1; }
check_cluster() { # <kind> <run log>
  node_ready || fail_check "node $NODE_NAME not Ready" || return 1
  service_path_ready || fail_check "https://$KUBERNETES_SVC_IP not reachable from this host" || return 1
  local code want=200
  [[ $1 == completed ]] || want=401
  code=$(steady_status)
  [[ $code == "$want" ]] || fail_check "steady pod got '$code' instead of $want" || return 1
  # before restart-kubelet.sh, which would give the kubelet fresh watches
  local pod=fresh-$RUN t0; t0=$(now_ms)
  run_pod "$pod" || fail_check "cannot create pod $pod" || return 1
  until pod_running "$pod"; do
    (($(now_ms) - t0 < 30000)) || fail_check "new pod $pod not running after 30 s: $(kubectl_ -n "$NS" get pod "$pod" -o wide --no-headers 2>&1)" || return 1
    sleep 0.2
  done
  NEWPOD_MS+=("$(($(now_ms) - t0))")
  kubectl_ -n "$NS" delete pod "$pod" --grace-period=1 --timeout=60s >/dev/null || fail_check "new pod $pod not deleted" || return 1
  [[ $1 == abrupt ]] || return 0
  t0=$(now_ms)
  bash "$CLUSTER_SRC/restart-kubelet.sh" >>"$2" 2>&1 || fail_check "restart-kubelet.sh failed (rc $?)" || return 1
  KUBELET_MS+=("$(($(now_ms) - t0))")
  t0=$(now_ms)
  until [[ $(steady_status) == 200 ]]; do
    (($(now_ms) - t0 < 60000)) || fail_check "steady pod still without a valid token 60 s after restart-kubelet.sh" || return 1
    sleep 0.5
  done
  REISSUE_MS+=("$(($(now_ms) - t0))")
}

# ---------- report ----------
declare -A RUNS=([completed]=0 [abrupt]=0) FAILS=([completed]=0 [abrupt]=0)
COMPLETED_MS=() ABRUPT_MS=() KUBELET_MS=() REISSUE_MS=() NEWPOD_MS=()
stats() { # <label> <milliseconds...>: count, p50 (nearest rank) and max, in seconds
  local label=$1; shift
  if (($# == 0)); then printf '  %-44s none\n' "$label"; return 0; fi
  local sorted; mapfile -t sorted < <(printf '%s\n' "$@" | sort -n)
  printf '  %-44s n=%-3s p50 %6ss  max %6ss\n' "$label" "$#" "$(secs "${sorted[$((($# + 1) / 2 - 1))]}")" "$(secs "${sorted[$(($# - 1))]}")"
}
report() {
  echo
  echo "stress-rotate: $completed completed and $abrupt abrupt requested; run logs in $OUT"
  local k
  for k in completed abrupt; do
    printf '  %-9s rotations: %s run, %s failed\n' "$k" "${RUNS[$k]}" "${FAILS[$k]}"
  done
  stats "completed rotation (rotate-sa-key.sh)" ${COMPLETED_MS[@]+"${COMPLETED_MS[@]}"}
  stats "abrupt rotation (rotate-sa-key.sh --abrupt)" ${ABRUPT_MS[@]+"${ABRUPT_MS[@]}"}
  stats "after abrupt: restart-kubelet.sh" ${KUBELET_MS[@]+"${KUBELET_MS[@]}"}
  stats "after abrupt: token valid again after it" ${REISSUE_MS[@]+"${REISSUE_MS[@]}"}
  stats "new pod running after a rotation" ${NEWPOD_MS[@]+"${NEWPOD_MS[@]}"}
}

setup
total=$((completed + abrupt))
log "$completed completed and $abrupt abrupt rotations; logs in $OUT"
for ((RUN = 1; RUN <= total; RUN++)); do
  # abrupt ones evenly spread: run i is abrupt when floor(i*M/total) steps up
  if ((RUN * abrupt / total > (RUN - 1) * abrupt / total)); then kind=abrupt; else kind=completed; fi
  runlog=$OUT/$(printf '%02d' "$RUN")-$kind.log
  take_cluster_lock # inherited by rotate-sa-key.sh and restart-kubelet.sh
  RUNS[$kind]=$((RUNS[$kind] + 1))
  t0=$(now_ms) rc=0
  if [[ $kind == abrupt ]]; then
    bash "$CLUSTER_SRC/rotate-sa-key.sh" --abrupt >"$runlog" 2>&1 || rc=$?
  else
    bash "$CLUSTER_SRC/rotate-sa-key.sh" >"$runlog" 2>&1 || rc=$?
  fi
  ms=$(($(now_ms) - t0))
  if ((rc != 0)); then
    FAILS[$kind]=$((FAILS[$kind] + 1))
    log "run $RUN/$total $kind: FAILED (rc $rc) after $(secs "$ms")s; its output:"
    sed 's/^/    /' "$runlog" >&2
  else
    if [[ $kind == abrupt ]]; then ABRUPT_MS+=("$ms"); else COMPLETED_MS+=("$ms"); fi
    log "run $RUN/$total $kind: ok in $(secs "$ms")s"
  fi
  if ! check_cluster "$kind" "$runlog"; then
    ((rc != 0)) || FAILS[$kind]=$((FAILS[$kind] + 1))
    log "stopping: the cluster is not healthy after run $RUN ($FAILED_CHECK)"
    break
  fi
  exec 9>&- # the lock: other scripts may run between two rotations
done
report
kubectl_ delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
((FAILS[completed] + FAILS[abrupt] == 0))
