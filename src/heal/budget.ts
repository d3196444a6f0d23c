import type { HealRecord, LedgerStore } from './ledger-store.js';

const HOUR_MS = 3_600_000;

/**
 * Heal accounting of the leading replica: the cluster-wide hourly budget, each secret's heals in the
 * last hour, and back-off after failures. Attempts are kept in a LedgerStore (a ConfigMap in the
 * operator's namespace) when one is given, so they survive restarts, leader changes and the
 * re-creation of an AuthProbe; back-off is per process and pruned as it expires.
 */
export class HealLedger {
  private records: HealRecord[] = [];
  private loaded: Promise<void> | undefined;
  private readonly failures = new Map<string, { count: number; lastAt: number }>();

  constructor(
    private readonly clusterBudgetPerHour: number,
    private readonly store?: LedgerStore,
    private readonly backoffBaseMs = 60_000,
    private readonly backoffMaxMs = HOUR_MS,
  ) {}

  /** Reads the stored attempts once (again after a failed read). */
  ready(now: number): Promise<void> {
    if (!this.store) return Promise.resolve();
    this.loaded ??= this.store.load(now).then(
      (records) => {
        this.records = mergeRecords(this.records, records);
      },
      (err: unknown) => {
        this.loaded = undefined;
        throw err;
      },
    );
    return this.loaded;
  }

  clusterRemaining(now: number): number {
    return Math.max(0, this.clusterBudgetPerHour - this.recent(now).length);
  }

  /** Heals of one secret (`namespace/name`) in the last hour, whichever AuthProbe asked for them. */
  secretHealsLastHour(secret: string, now: number): number {
    return this.recent(now).filter((r) => r.secret === secret).length;
  }

  async recordAttempt(now: number, secret: string): Promise<void> {
    this.records = [...this.recent(now), { at: now, secret }];
    if (this.store) {
      this.records = mergeRecords(
        this.records,
        await this.store.update(now, (stored) => [...stored, { at: now, secret }]),
      );
    }
  }

  /** An attempt that changed nothing after all (blocked) gives its place in the budget back. */
  async cancelAttempt(at: number, secret: string): Promise<void> {
    const drop = (list: HealRecord[]) => {
      const index = list.findIndex((r) => r.at === at && r.secret === secret);
      return index < 0 ? list : [...list.slice(0, index), ...list.slice(index + 1)];
    };
    this.records = drop(this.records);
    if (this.store) this.records = await this.store.update(at, drop);
  }

  recordFailure(probeUid: string, now: number): void {
    for (const [uid, failure] of this.failures)
      if (now - failure.lastAt > this.backoffMaxMs) this.failures.delete(uid);
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

  private recent(now: number): HealRecord[] {
    return this.records.filter((r) => now - r.at < HOUR_MS);
  }
}

function mergeRecords(a: HealRecord[], b: HealRecord[]): HealRecord[] {
  const seen = new Set<string>();
  return [...a, ...b]
    .filter((r) => {
      const key = `${r.at}|${r.secret}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((x, y) => x.at - y.at);
}

/** Heal times within the last hour, from a persisted history (RFC 3339 strings). */
export function healsInLastHour(history: readonly string[] | undefined, now: number): number {
  return (history ?? []).filter((time) => now - Date.parse(time) < HOUR_MS).length;
}

/** The history to persist after a heal: the last hour only, newest last. */
export function appendHistory(history: readonly string[] | undefined, time: string, now: number): string[] {
  return [...(history ?? []).filter((t) => now - Date.parse(t) < HOUR_MS), time].slice(-60);
}
