const HOUR_MS = 3_600_000;

/**
 * Heal accounting of the leading replica: per-AuthProbe heals in the last hour, the cluster-wide
 * hourly budget and back-off after failures. Per-probe history is also persisted in the
 * AuthProbe's status (heals.history), so a new leader does not start from zero.
 */
export class HealLedger {
  private readonly cluster: number[] = [];
  private readonly failures = new Map<string, { count: number; lastAt: number }>();

  constructor(
    private readonly clusterBudgetPerHour: number,
    private readonly backoffBaseMs = 60_000,
    private readonly backoffMaxMs = HOUR_MS,
  ) {}

  clusterRemaining(now: number): number {
    while (this.cluster.length && (this.cluster[0] as number) <= now - HOUR_MS) this.cluster.shift();
    return Math.max(0, this.clusterBudgetPerHour - this.cluster.length);
  }

  recordAttempt(now: number): void {
    this.cluster.push(now);
  }

  recordFailure(probeUid: string, now: number): void {
    const previous = this.failures.get(probeUid);
    this.failures.set(probeUid, { count: (previous?.count ?? 0) + 1, lastAt: now });
  }

  recordSuccess(probeUid: string): void {
    this.failures.delete(probeUid);
  }

  backoffUntil(probeUid: string): number | undefined {
    const failure = this.failures.get(probeUid);
    if (!failure) return undefined;
    return failure.lastAt + Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (failure.count - 1));
  }
}

/** Heal times within the last hour, from a persisted history (RFC 3339 strings). */
export function healsInLastHour(history: readonly string[] | undefined, now: number): number {
  return (history ?? []).filter((time) => now - Date.parse(time) < HOUR_MS).length;
}

/** The history to persist after a heal: the last hour only, newest last. */
export function appendHistory(history: readonly string[] | undefined, time: string, now: number): string[] {
  return [...(history ?? []).filter((t) => now - Date.parse(t) < HOUR_MS), time].slice(-60);
}
