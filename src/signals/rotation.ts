import type { Logger } from 'pino';
import { EventReason, ProbeReason } from '../api/reasons.js';
import type { AuthProbe } from '../api/types.js';
import type { Verdict } from '../api/verdict.js';
import type { EventSink } from '../events/recorder.js';
import type { OperatorMetrics } from '../metrics/metrics.js';

/**
 * Notices many probes in several namespaces turning to 401 within a short window: that is one
 * cluster-level cause (signing key rotated, etcd restored), not a hundred separate problems.
 */
export class RotationDetector {
  private readonly rejections = new Map<string, number>();
  private suspected = false;

  constructor(
    private readonly namespaceThreshold: number,
    private readonly windowMs: number,
  ) {}

  /** Records a 401 for a probe; returns true exactly when this record turns the suspicion on. */
  recordRejection(namespace: string, probeKey: string, now: number): boolean {
    this.rejections.set(`${namespace}\u0000${probeKey}`, now);
    return this.evaluate(now) === 'raised';
  }

  recordRecovery(namespace: string, probeKey: string, now: number): boolean {
    this.rejections.delete(`${namespace}\u0000${probeKey}`);
    return this.evaluate(now) === 'cleared';
  }

  get isSuspected(): boolean {
    return this.suspected;
  }

  namespacesRejecting(now: number): string[] {
    this.expire(now);
    return [...new Set([...this.rejections.keys()].map((k) => k.split('\u0000')[0] as string))].sort();
  }

  private expire(now: number): void {
    for (const [key, at] of this.rejections) if (now - at > this.windowMs) this.rejections.delete(key);
  }

  private evaluate(now: number): 'raised' | 'cleared' | 'same' {
    const suspected = this.namespacesRejecting(now).length >= this.namespaceThreshold;
    if (suspected === this.suspected) return 'same';
    this.suspected = suspected;
    return suspected ? 'raised' : 'cleared';
  }
}

export interface RotationSignalDeps {
  recorder: EventSink;
  metrics: Pick<OperatorMetrics, 'suspectedRotation'>;
  logger: Logger;
  /** Where the cluster-level Event goes: the operator's own namespace. */
  operatorNamespace: string;
  namespaceThreshold: number;
  windowMs: number;
  now?: () => number;
}

/**
 * The cluster-level signal: fed every verdict, it raises one Warning (SuspectedKeyRotation, on the
 * operator's namespace) and the authprobe_suspected_key_rotation gauge when rejections span several
 * namespaces at once, and clears the gauge when they recover.
 */
export class RotationSignal {
  private readonly detector: RotationDetector;
  private readonly now: () => number;

  constructor(private readonly deps: RotationSignalDeps) {
    this.detector = new RotationDetector(deps.namespaceThreshold, deps.windowMs);
    this.now = deps.now ?? Date.now;
  }

  async observe(probe: AuthProbe, verdict: Verdict): Promise<void> {
    const ns = probe.metadata.namespace;
    const key = `${ns}/${probe.metadata.name}`;
    const now = this.now();
    if (verdict.tokenProvenInvalid && verdict.reason !== ProbeReason.TokenInvalidated) {
      if (!this.detector.recordRejection(ns, key, now)) return;
      this.deps.metrics.suspectedRotation.set(1);
      const namespaces = this.detector.namespacesRejecting(now);
      await this.deps.recorder.record(
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          name: this.deps.operatorNamespace,
          namespace: this.deps.operatorNamespace,
        },
        'Warning',
        EventReason.SuspectedKeyRotation,
        `Tokens are being rejected (401) in ${namespaces.length} namespaces at once (${namespaces.slice(0, 10).join(', ')}): the apiserver's service-account signing key was probably rotated without an overlap, or etcd was restored from another cluster. Check --service-account-key-file before trusting individual heals.`,
      );
      this.deps.logger.warn({ namespaces }, 'suspected service-account key rotation');
    } else if (verdict.readyStatus === 'True') {
      if (this.detector.recordRecovery(ns, key, now)) this.deps.metrics.suspectedRotation.set(0);
    }
  }

  /** An AuthProbe that is gone no longer counts. */
  forget(namespace: string, name: string): void {
    if (this.detector.recordRecovery(namespace, `${namespace}/${name}`, this.now()))
      this.deps.metrics.suspectedRotation.set(0);
  }
}
