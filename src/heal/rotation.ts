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
