import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric the operator exports, in one place. Label values are names and reasons only;
 * nothing secret is ever a label.
 */
export class OperatorMetrics {
  readonly registry = new Registry();

  readonly queueDepth = new Gauge({
    name: 'authprobe_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly queueAdds = new Counter({
    name: 'authprobe_workqueue_adds_total',
    help: 'Keys added to the work queue.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly queueRetries = new Counter({
    name: 'authprobe_workqueue_retries_total',
    help: 'Keys re-queued with back-off after a failed reconcile.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'authprobe_reconcile_duration_seconds',
    help: 'Time spent in one reconcile.',
    labelNames: ['controller', 'result'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'authprobe_reconcile_errors_total',
    help: 'Reconciles that ended in an error.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly watchErrors = new Counter({
    name: 'authprobe_watch_errors_total',
    help: 'List or watch failures (each followed by a retry).',
    labelNames: ['informer'],
    registers: [this.registry],
  });
  readonly relists = new Counter({
    name: 'authprobe_relists_total',
    help: 'Re-lists after an expired resourceVersion.',
    labelNames: ['informer'],
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({
    name: 'authprobe_leader',
    help: '1 while this replica is the leader.',
    registers: [this.registry],
  });
  readonly requestsRefused = new Counter({
    name: 'authprobe_requests_refused_total',
    help: 'Apiserver requests this replica refused to send because it no longer provably led (by verb).',
    labelNames: ['verb'],
    registers: [this.registry],
  });
  readonly credentialRejected = new Gauge({
    name: 'authprobe_operator_credential_rejected',
    help: "1 while the apiserver rejects the operator's own token (401).",
    registers: [this.registry],
  });

  readonly probes = new Counter({
    name: 'authprobe_probes_total',
    help: 'Finished probes by outcome reason.',
    labelNames: ['namespace', 'authprobe', 'reason'],
    registers: [this.registry],
  });
  readonly probeDuration = new Histogram({
    name: 'authprobe_probe_duration_seconds',
    help: 'Time a probe took: from creating the probe pod to reading its verdict (check Pod), or the TokenReview (check TokenReview).',
    labelNames: ['source', 'check'],
    buckets: [0.005, 0.025, 0.1, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60],
    registers: [this.registry],
  });
  readonly authenticated = new Gauge({
    name: 'authprobe_authenticated',
    help: "1 when the probe's last verdict is that the token authenticates, else 0.",
    labelNames: ['namespace', 'authprobe'],
    registers: [this.registry],
  });
  readonly lastSuccess = new Gauge({
    name: 'authprobe_last_success_timestamp_seconds',
    help: 'Unix time of the last probe that authenticated.',
    labelNames: ['namespace', 'authprobe'],
    registers: [this.registry],
  });
  readonly heals = new Counter({
    name: 'authprobe_heals_total',
    help: 'Heal attempts by action and result.',
    labelNames: ['namespace', 'authprobe', 'action', 'result'],
    registers: [this.registry],
  });
  readonly suspectedRotation = new Gauge({
    name: 'authprobe_suspected_key_rotation',
    help: '1 while many namespaces report rejected tokens at once (signing key rotated or etcd restored).',
    registers: [this.registry],
  });

  readonly trustedSigningKeys = new Gauge({
    name: 'authprobe_trusted_signing_keys',
    help: 'Service-account signing keys the apiserver publishes as trusted (/openid/v1/jwks).',
    registers: [this.registry],
  });
  readonly signingKeysRetired = new Counter({
    name: 'authprobe_signing_keys_retired_total',
    help: "Signing keys seen leaving the apiserver's trusted set.",
    registers: [this.registry],
  });
  readonly signingKeyUntrusted = new Gauge({
    name: 'authprobe_tokens_controller_key_untrusted',
    help: '1 while kube-controller-manager signs new tokens with a key the apiserver does not trust (heals are paused).',
    registers: [this.registry],
  });

  constructor(withDefaults = true) {
    // Unprefixed (process_*, nodejs_*): the names dashboards and alerts for Node.js services look for.
    if (withDefaults) collectDefaultMetrics({ register: this.registry });
  }

  /** Removes every series of a deleted AuthProbe, so /metrics does not grow with churn. */
  async forgetProbe(namespace: string, name: string): Promise<void> {
    const perProbe: Array<Counter<string> | Gauge<string>> = [
      this.probes,
      this.heals,
      this.authenticated,
      this.lastSuccess,
    ];
    for (const metric of perProbe) {
      const { values } = await metric.get();
      for (const { labels } of values) {
        if (labels['namespace'] === namespace && labels['authprobe'] === name) {
          metric.remove(labels as Record<string, string | number>);
        }
      }
    }
  }
}
