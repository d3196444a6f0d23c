# Restarting kube-apiserver (and the kubelet) so that the cluster's own components are back at once.
# Used by rotate-sa-key.sh, apiserver-outage.sh and restart-kubelet.sh. Source it after components.sh.
# shellcheck shell=bash
#
# Why the components are not simply left running across an apiserver restart: kube-proxy, the
# scheduler, the controller-manager and the kubelet watch the apiserver through client-go reflectors,
# and every failed attempt of a reflector costs it a back-off delay: 0.8 s, doubling up to 30 s, each
# times a random 1 to 2, reset only after about 2 minutes without one. Attempts fail
#  - on every "connection refused" while the apiserver is away (a watch retries again and again);
#  - with 403 when they reach the new apiserver before its RBAC informers have synced: it serves at
#    once and denies everyone but system:masters meanwhile ("User \"system:kube-proxy\" cannot watch
#    resource \"services\" ...", about 50 ms here, 1 s before /readyz passes);
#  - with 410 "too old resource version" when a watch resumes on the new apiserver's fresh watch cache:
#    the reflector relists, after one more delay.
# So after a restart a reflector may sleep up to 60 s before it watches again. Measured with the
# components left running: the kubernetes Service path back 7 to 40 s after the apiserver (kube-proxy's
# EndpointSlice watch; the 60 s wait of rotate-sa-key.sh failed 2 times in 10), new pods scheduled up
# to 70 s late (the scheduler), and after a 60 s outage new pods started 44 s late (the kubelet).
#
# So nothing watches the apiserver while it is away or not yet authorizing:
#  - kube-proxy, kube-scheduler and kube-controller-manager keep no state worth keeping: they stop
#    before the apiserver stops and start, with fresh reflectors, once it is ready and its authorizer
#    allows each of them. A stopped kube-proxy leaves its iptables rules in place, so the kubernetes
#    Service keeps pointing at the apiserver's address (the stopping apiserver's removal of its own
#    endpoint is never applied).
#  - The kubelet keeps the projected tokens it issued in memory only: a restart re-issues every pod's
#    token, which an abrupt rotation or an outage must not do. It is frozen (SIGSTOP) before the
#    apiserver stops and thawed (SIGCONT) once the apiserver is ready: no refused connection, no 403.
#    Its resumed watches still get the 410, so each of its reflectors relists after one back-off step
#    (0.8 to 1.6 s); the step doubles when apiserver restarts follow each other within 2 minutes
#    without a kubelet restart in between (restart-kubelet.sh, step 2 of a completed rotation).
#    Pods keep running meanwhile.

WATCHERS=(kube-controller-manager kube-scheduler kube-proxy) # stopped, then started again
_frozen_kubelet=""                                          # its pid while frozen
_paused=""                                                  # set between pause_watchers and resume_watchers

# One SubjectAccessReview per component identity, for what it watches first.
_component_access_reviews() {
  local sar='apiVersion: authorization.k8s.io/v1, kind: SubjectAccessReview'
  cat <<YAML
apiVersion: v1
kind: List
items:
- {$sar, spec: {user: "system:kube-proxy", resourceAttributes: {verb: watch, group: discovery.k8s.io, resource: endpointslices}}}
- {$sar, spec: {user: "system:kube-scheduler", resourceAttributes: {verb: watch, resource: pods}}}
- {$sar, spec: {user: "system:kube-controller-manager", resourceAttributes: {verb: watch, resource: secrets}}}
- {$sar, spec: {user: "system:node:$NODE_NAME", groups: ["system:nodes", "system:authenticated"], resourceAttributes: {verb: get, resource: nodes, name: "$NODE_NAME"}}}
YAML
}
# The new apiserver's authorizers (RBAC, Node) allow every component what it asks for first.
authorizer_ready() {
  local allowed
  allowed=$(_component_access_reviews | kubectl_ create --request-timeout=5s -f - -o jsonpath='{.status.allowed}{" "}') || return 1
  [[ $allowed == "true true true true " ]]
}
# The apiserver has put its address back into the kubernetes Service (it removed it when it stopped).
apiserver_endpoint_published() {
  kubectl_ -n default get endpointslices -l kubernetes.io/service-name=kubernetes --request-timeout=3s \
    -o jsonpath='{.items[*].endpoints[*].addresses[*]}' | grep -qwF "$BRIDGE_IP"
}
# kube-proxy wrote its rules at or after <epoch>, which it does only once its informers have synced.
kube_proxy_synced_since() {
  local t
  t=$(curl -fsS --max-time 2 http://127.0.0.1:10249/metrics |
    awk '/^kubeproxy_sync_proxy_rules_last_timestamp_seconds\{ip_family="IPv4"\}/{printf "%d", $2}')
  [[ -n $t ]] && ((t >= $1))
}
# /readyz includes sched-handler-sync: its informers have synced. Health paths need no credentials.
scheduler_ready() { curl -fsSk --max-time 2 https://127.0.0.1:10259/readyz | grep -q ok; }
# The kubelet renewed its node lease at or after <epoch>: it is talking to the apiserver again.
kubelet_renewed_lease_since() {
  local t
  t=$(kubectl_ -n kube-node-lease get lease "$NODE_NAME" --request-timeout=3s -o jsonpath='{.spec.renewTime}') || return 1
  [[ -n $t ]] && (($(date -d "$t" +%s) >= $1))
}

# Brings back what pause_watchers stopped or froze. Also the EXIT trap while they are paused, so that a
# failing script still leaves the node side running (its exit status is kept).
_resume_watchers_now() {
  [[ -n $_paused ]] || return 0
  _paused=""
  if [[ -n $_frozen_kubelet ]]; then kill -CONT "$_frozen_kubelet" 2>/dev/null || true; fi
  _frozen_kubelet=""
  start_controller_manager # with the current SA signing key
  start_scheduler
  start_kube_proxy
}
pause_watchers() {
  local c
  _paused=1
  trap _resume_watchers_now EXIT
  if is_running kubelet; then
    _frozen_kubelet=$(pid_of kubelet)
    kill -STOP "$_frozen_kubelet"
  fi
  for c in "${WATCHERS[@]}"; do stop_proc "$c" & done
  wait
}
resume_watchers() { # returns once each is back; kube-proxy has rewritten its rules from fresh watches
  local since; since=$(date +%s)
  _resume_watchers_now
  trap - EXIT
  wait_for 60 "kube-controller-manager healthy" controller_manager_healthy || die "kube-controller-manager not healthy; see $LOGS/kube-controller-manager.log"
  wait_for 60 "kube-scheduler ready" scheduler_ready || die "kube-scheduler not ready; see $LOGS/kube-scheduler.log"
  wait_for 60 "kube-proxy to sync its rules" kube_proxy_synced_since "$since" || die "kube-proxy wrote no rules; see $LOGS/kube-proxy.log"
  if is_running kubelet; then
    wait_for 60 "the kubelet healthy" kubelet_healthy || die "the kubelet is not healthy after its thaw; see $LOGS/kubelet.log"
  fi
}

# restart_apiserver [seconds down]: stops the apiserver (and its watchers), keeps it down that long,
# starts it with the current flags (SA keys) and returns once it is ready, authorizing, back in the
# kubernetes Service, and every watcher is back. Sets APISERVER_READY_AT (bash SECONDS).
restart_apiserver() {
  local down=${1:-0} t0=$SECONDS t_stopped t_started
  pause_watchers
  stop_proc kube-apiserver "$APISERVER_STOP_GRACE"
  t_stopped=$SECONDS
  ((down == 0)) || sleep "$down"
  t_started=$SECONDS
  start_apiserver
  wait_for 120 kube-apiserver apiserver_ready || die "kube-apiserver not ready; see $LOGS/kube-apiserver.log"
  wait_for 30 "the kube-apiserver authorizer" authorizer_ready || die "kube-apiserver ready but its authorizer denies the components; see $LOGS/kube-apiserver.log"
  # shellcheck disable=SC2034 # read by apiserver-outage.sh
  APISERVER_READY_AT=$SECONDS
  wait_for 30 "kube-apiserver back in the kubernetes Service" apiserver_endpoint_published || die "kube-apiserver did not publish its endpoint; see $LOGS/kube-apiserver.log"
  resume_watchers
  wait_for 60 "the kubernetes Service" service_path_ready || die "https://$KUBERNETES_SVC_IP not reachable; see $LOGS/kube-proxy.log"
  log "kube-apiserver restarted: components and apiserver stopped in $((t_stopped - t0))s, ready and authorizing $((APISERVER_READY_AT - t_started))s after its start, components and the kubernetes Service back $((SECONDS - APISERVER_READY_AT))s later"
}

# restart_kubelet: a new kubelet process (it re-issues every pod's projected token); returns once it
# serves /healthz, has renewed its node lease and the node is Ready.
restart_kubelet() {
  local since
  stop_proc kubelet
  since=$(date +%s)
  start_kubelet
  wait_for 60 "kubelet healthy" kubelet_healthy || die "kubelet not healthy; see $LOGS/kubelet.log"
  wait_for 60 "the kubelet to renew its node lease" kubelet_renewed_lease_since "$since" || die "the kubelet does not reach the apiserver; see $LOGS/kubelet.log"
  wait_for 120 "node Ready" node_ready || die "node not Ready after the kubelet restart; see $LOGS/kubelet.log"
}
