import type { Logger } from 'pino';
import { sleep, systemClock, type Clock, type TimerHandle } from './clock.js';
import type { KubeClient } from '../kube/client.js';
import { onFirstAbort } from '../kube/abort.js';
import { describeError, isAlreadyExists, isConflict, isNotFound } from '../kube/errors.js';

/** The fields of a `coordination.k8s.io/v1` Lease spec that leader election uses. */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface StoredLease {
  spec: LeaseSpec;
  resourceVersion: string;
}

/** Optimistic-concurrency storage of one Lease; `create`/`update` throw a 409 on a lost race. */
export interface LeaseStore {
  get(signal?: AbortSignal): Promise<StoredLease | null>;
  /** Both return the resourceVersion of what they wrote. */
  create(spec: LeaseSpec, signal?: AbortSignal): Promise<string>;
  update(spec: LeaseSpec, resourceVersion: string, signal?: AbortSignal): Promise<string>;
  describe(): string;
}

/**
 * One stretch of leadership. `signal` aborts when it ends; `valid()` says, by this process's
 * monotonic clock, whether the lease is still provably held: the last successful renewal started
 * less than the renew deadline ago. Writes that change the cluster are made only while it is valid.
 */
export interface LeadershipTerm {
  readonly signal: AbortSignal;
  valid(): boolean;
}

export interface LeaderElectionOptions {
  identity: string;
  store: LeaseStore;
  logger: Logger;
  /** How long a non-leader waits after the last observed renewal before taking over. */
  leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it gives leadership up. */
  renewDeadlineMs: number;
  /** Interval between attempts to acquire or renew. */
  retryPeriodMs: number;
  clock?: Clock;
  onStartedLeading: (term: LeadershipTerm) => void;
  onStoppedLeading: () => Promise<void> | void;
  onLeaderChange?: (holder: string | undefined) => void;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Leader election on a Lease, following the client-go algorithm: expiry is judged by the time
 * this process *observed* the last change of the lease, never by comparing clocks with the
 * holder, so skew between nodes cannot make two leaders. Every duration is measured on the
 * monotonic clock (the wall clock only fills the Lease's timestamps), so a clock that jumps cannot
 * stretch a lease either.
 *
 * The leader holds the lease until its last successful renewal is `renewDeadline` old; a renewal
 * attempt is cut off at that moment, and one that finishes later counts as lost. Because a standby
 * waits the longer `leaseDuration` from when it saw that renewal, the term ends before anyone else
 * can start one. Losing leadership stops the leader's work and returns this process to candidacy;
 * it never exits the process.
 */
export class LeaderElector {
  private observed?: { key: string; at: number };
  private lastHolder?: string;
  private leading = false;
  /** Monotonic start of the last attempt that left this process holding the lease. */
  private renewedAt = -Infinity;
  /** The Lease as this process last wrote it: a renewal is then one PUT, no GET first. */
  private written?: StoredLease;
  private readonly clock: Clock;

  constructor(private readonly options: LeaderElectionOptions) {
    if (options.renewDeadlineMs >= options.leaseDurationMs) {
      throw new Error('leader election: renewDeadline must be shorter than leaseDuration');
    }
    if (options.retryPeriodMs >= options.renewDeadlineMs) {
      throw new Error('leader election: retryPeriod must be shorter than renewDeadline');
    }
    this.clock = options.clock ?? systemClock;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Leading, and the last successful renewal started less than the renew deadline ago (monotonic). */
  holdsLease(): boolean {
    return this.leading && this.clock.monotonic() - this.renewedAt < this.options.renewDeadlineMs;
  }

  /** Campaigns until `signal` aborts; then releases the lease if held. */
  async run(signal: AbortSignal): Promise<void> {
    const { logger, identity } = this.options;
    while (!signal.aborted) {
      if (!(await this.acquire(signal))) break;
      const leadership = new AbortController();
      this.leading = true;
      logger.info({ identity, lease: this.options.store.describe() }, 'became leader');
      this.options.onStartedLeading({
        signal: leadership.signal,
        valid: () => !leadership.signal.aborted && this.holdsLease(),
      });
      const why = await this.renewUntilLost(signal, leadership);
      this.leading = false;
      leadership.abort();
      if (why) logger.warn({ identity, why }, 'lost leadership; stopping the work of this term');
      await this.options.onStoppedLeading();
      if (signal.aborted) {
        await this.release();
        break;
      }
      logger.warn({ identity }, 'standing by as a candidate');
    }
  }

  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(signal)) return true;
      await sleep(this.clock, this.jittered(this.options.retryPeriodMs), signal);
    }
    return false;
  }

  /**
   * Renews every retry period until the renew deadline passes without a successful renewal.
   * A watchdog ends the term at the deadline even while an attempt hangs or the process was
   * paused. Returns why the term ended (undefined when `signal` stopped it).
   */
  private async renewUntilLost(
    signal: AbortSignal,
    leadership: AbortController,
  ): Promise<string | undefined> {
    const { renewDeadlineMs, retryPeriodMs } = this.options;
    const stop = AbortSignal.any([signal, leadership.signal]);
    let watchdog: TimerHandle | undefined;
    const arm = (): void => {
      if (watchdog) this.clock.clearTimeout(watchdog);
      watchdog = this.clock.setTimeout(
        () => {
          if (!this.holdsLease()) leadership.abort();
          else arm();
        },
        Math.max(0, this.renewedAt + renewDeadlineMs - this.clock.monotonic()),
      );
    };
    arm();
    try {
      let attemptStarted = this.renewedAt;
      while (!stop.aborted) {
        // The next attempt starts a retry period after the last one started (at once when that
        // took longer): on a slow apiserver, renewals follow each other instead of falling behind.
        await sleep(this.clock, Math.max(0, attemptStarted + retryPeriodMs - this.clock.monotonic()), stop);
        if (signal.aborted) return undefined;
        if (!this.holdsLease()) break;
        attemptStarted = this.clock.monotonic();
        if (await this.tryAcquireOrRenew(stop, this.renewedAt + renewDeadlineMs)) arm();
        else if (!this.holdsLease()) break;
      }
      return signal.aborted ? undefined : 'no successful renewal within the renew deadline';
    } finally {
      if (watchdog) this.clock.clearTimeout(watchdog);
    }
  }

  /**
   * One attempt; true when this process holds the lease afterwards. It is cut off at `deadline`
   * (monotonic; by default the renew deadline from now), and one that ends later counts as failed.
   */
  async tryAcquireOrRenew(signal?: AbortSignal, deadline?: number): Promise<boolean> {
    const started = this.clock.monotonic();
    const cutoff = deadline ?? started + this.options.renewDeadlineMs;
    const attempt = new AbortController();
    const timer = this.clock.setTimeout(() => attempt.abort(), Math.max(0, cutoff - started));
    // Not AbortSignal.any: `signal` lives as long as the campaign, and an attempt runs every 2 s.
    const stopListening = onFirstAbort([signal], () => attempt.abort());
    try {
      const held = await this.attempt(attempt.signal);
      if (held && this.clock.monotonic() >= cutoff) {
        this.options.logger.warn(
          { identity: this.options.identity },
          'a lease renewal finished after the renew deadline; counted as lost',
        );
        return false;
      }
      if (held) this.renewedAt = started;
      return held;
    } finally {
      stopListening();
      this.clock.clearTimeout(timer);
    }
  }

  private async attempt(signal: AbortSignal): Promise<boolean> {
    const { store, identity, logger } = this.options;
    const wall = this.clock.now();
    const mono = this.clock.monotonic();
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    // The leader renews what it wrote last with one PUT; a conflict (someone else wrote) or any
    // error falls back to reading the Lease first.
    const mine = this.leading ? this.written : undefined;
    this.written = undefined;
    if (mine) {
      const next = { ...mine.spec, renewTime: microTime(wall), leaseDurationSeconds: durationSeconds };
      try {
        await this.put(next, mine.resourceVersion, signal, mono);
        return true;
      } catch (err) {
        if (!isConflict(err)) logger.warn({ err: describeError(err) }, 'could not renew the leader lease');
        if (signal.aborted) return false;
      }
    }
    let current: StoredLease | null;
    try {
      current = await store.get(signal);
    } catch (err) {
      logger.warn({ err: describeError(err), lease: store.describe() }, 'could not read the leader lease');
      return false;
    }
    if (!current) {
      try {
        const spec: LeaseSpec = {
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: microTime(wall),
          renewTime: microTime(wall),
          leaseTransitions: 0,
        };
        this.written = { spec, resourceVersion: await store.create(spec, signal) };
        this.observe(`${identity}|${microTime(wall)}`, mono);
        return true;
      } catch (err) {
        if (!isAlreadyExists(err) && !isConflict(err))
          logger.warn({ err: describeError(err) }, 'could not create the leader lease');
        return false;
      }
    }
    const spec = current.spec;
    const key = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
    // Observed now, by this process's monotonic clock: the holder's timestamps are never compared with ours.
    if (this.observed?.key !== key) this.observe(key, this.clock.monotonic());
    if (this.lastHolder !== spec.holderIdentity) {
      this.lastHolder = spec.holderIdentity;
      this.options.onLeaderChange?.(spec.holderIdentity || undefined);
    }
    const holder = spec.holderIdentity ?? '';
    const heldByOther = holder !== '' && holder !== identity;
    const leaseMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldByOther && (this.observed?.at ?? mono) + leaseMs > this.clock.monotonic()) return false;
    const next: LeaseSpec =
      holder === identity
        ? { ...spec, renewTime: microTime(wall), leaseDurationSeconds: durationSeconds }
        : {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(wall),
            renewTime: microTime(wall),
            leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
          };
    try {
      await this.put(next, current.resourceVersion, signal, mono);
      return true;
    } catch (err) {
      if (!isConflict(err)) logger.warn({ err: describeError(err) }, 'could not update the leader lease');
      return false;
    }
  }

  /** Writes `next` over `resourceVersion`: then it is what this process wrote last, observed at `mono`. */
  private async put(
    next: LeaseSpec,
    resourceVersion: string,
    signal: AbortSignal,
    mono: number,
  ): Promise<void> {
    const written = await this.options.store.update(next, resourceVersion, signal);
    this.written = { spec: next, resourceVersion: written };
    this.observe(`${this.options.identity}|${next.renewTime}`, mono);
  }

  /** Hands the lease back so a standby takes over at once instead of after the lease duration. */
  private async release(): Promise<void> {
    const { store, identity, logger } = this.options;
    const signal = AbortSignal.timeout(this.options.renewDeadlineMs);
    try {
      const current = await store.get(signal);
      if (!current || current.spec.holderIdentity !== identity) return;
      await store.update(
        {
          ...current.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(this.clock.now()),
        },
        current.resourceVersion,
        signal,
      );
      logger.info({ identity }, 'released the leader lease');
    } catch (err) {
      logger.warn({ err: describeError(err) }, 'could not release the leader lease; it will expire');
    }
  }

  private observe(key: string, at: number): void {
    this.observed = { key, at };
    // A record this process wrote names itself as holder; no need to announce a change later.
    if (key.startsWith(`${this.options.identity}|`)) this.lastHolder = this.options.identity;
  }

  private jittered(ms: number): number {
    return ms + Math.floor(Math.random() * ms * 0.2);
  }
}

/** A LeaseStore backed by a real `coordination.k8s.io/v1` Lease. */
export function apiLeaseStore(client: KubeClient, namespace: string, name: string): LeaseStore {
  const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const path = `${base}/${encodeURIComponent(name)}`;
  return {
    describe: () => `${namespace}/${name}`,
    async get(signal) {
      try {
        const lease = await client.get<{ spec?: LeaseSpec; metadata: { resourceVersion: string } }>(path, {
          timeoutMs: 10_000,
          ...(signal ? { signal } : {}),
        });
        return { spec: lease.spec ?? {}, resourceVersion: lease.metadata.resourceVersion };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },
    async create(spec, signal) {
      const lease = await client.post<{ metadata: { resourceVersion: string } }>(
        base,
        { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec },
        { timeoutMs: 10_000, ...(signal ? { signal } : {}) },
      );
      return lease.metadata.resourceVersion;
    },
    async update(spec, resourceVersion, signal) {
      const lease = await client.put<{ metadata: { resourceVersion: string } }>(
        path,
        {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, resourceVersion },
          spec,
        },
        { timeoutMs: 10_000, ...(signal ? { signal } : {}) },
      );
      return lease.metadata.resourceVersion;
    },
  };
}
