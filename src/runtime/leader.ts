import type { Logger } from 'pino';
import { sleep, systemClock, type Clock } from './clock.js';
import type { KubeClient } from '../kube/client.js';
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
  get(): Promise<StoredLease | null>;
  create(spec: LeaseSpec): Promise<void>;
  update(spec: LeaseSpec, resourceVersion: string): Promise<void>;
  describe(): string;
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
  onStartedLeading: (leadership: AbortSignal) => void;
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
 * holder, so skew between nodes cannot make two leaders. Losing leadership stops the leader's
 * work and returns this process to candidacy; it never exits the process.
 */
export class LeaderElector {
  private observed?: { key: string; at: number };
  private lastHolder?: string;
  private leading = false;
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

  /** Campaigns until `signal` aborts; then releases the lease if held. */
  async run(signal: AbortSignal): Promise<void> {
    const { logger, identity } = this.options;
    while (!signal.aborted) {
      if (!(await this.acquire(signal))) break;
      const leadership = new AbortController();
      this.leading = true;
      logger.info({ identity, lease: this.options.store.describe() }, 'became leader');
      this.options.onStartedLeading(leadership.signal);
      await this.renewUntilLost(signal);
      this.leading = false;
      leadership.abort();
      await this.options.onStoppedLeading();
      if (signal.aborted) {
        await this.release();
        break;
      }
      logger.warn({ identity }, 'lost leadership; standing by as a candidate');
    }
  }

  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew()) return true;
      await sleep(this.clock, this.jittered(this.options.retryPeriodMs), signal);
    }
    return false;
  }

  private async renewUntilLost(signal: AbortSignal): Promise<void> {
    let lastRenew = this.clock.now();
    while (!signal.aborted) {
      await sleep(this.clock, this.options.retryPeriodMs, signal);
      if (signal.aborted) return;
      if (await this.tryAcquireOrRenew()) {
        lastRenew = this.clock.now();
      } else if (this.clock.now() - lastRenew >= this.options.renewDeadlineMs) {
        return;
      }
    }
  }

  /** One attempt; true when this process holds the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { store, identity, logger } = this.options;
    const now = this.clock.now();
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    let current: StoredLease | null;
    try {
      current = await store.get();
    } catch (err) {
      logger.warn({ err: describeError(err), lease: store.describe() }, 'could not read the leader lease');
      return false;
    }
    if (!current) {
      try {
        await store.create({
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        });
        this.observe(`${identity}|${microTime(now)}`, now);
        return true;
      } catch (err) {
        if (!isAlreadyExists(err) && !isConflict(err))
          logger.warn({ err: describeError(err) }, 'could not create the leader lease');
        return false;
      }
    }
    const spec = current.spec;
    const key = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
    if (this.observed?.key !== key) this.observe(key, now);
    if (this.lastHolder !== spec.holderIdentity) {
      this.lastHolder = spec.holderIdentity;
      this.options.onLeaderChange?.(spec.holderIdentity || undefined);
    }
    const holder = spec.holderIdentity ?? '';
    const heldByOther = holder !== '' && holder !== identity;
    const leaseMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldByOther && (this.observed?.at ?? now) + leaseMs > now) return false;
    const next: LeaseSpec =
      holder === identity
        ? { ...spec, renewTime: microTime(now), leaseDurationSeconds: durationSeconds }
        : {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
          };
    try {
      await store.update(next, current.resourceVersion);
      this.observe(`${identity}|${next.renewTime}`, now);
      return true;
    } catch (err) {
      if (!isConflict(err)) logger.warn({ err: describeError(err) }, 'could not update the leader lease');
      return false;
    }
  }

  /** Hands the lease back so a standby takes over at once instead of after the lease duration. */
  private async release(): Promise<void> {
    const { store, identity, logger } = this.options;
    try {
      const current = await store.get();
      if (!current || current.spec.holderIdentity !== identity) return;
      await store.update(
        {
          ...current.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(this.clock.now()),
        },
        current.resourceVersion,
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
    async get() {
      try {
        const lease = await client.get<{ spec?: LeaseSpec; metadata: { resourceVersion: string } }>(path, {
          timeoutMs: 10_000,
        });
        return { spec: lease.spec ?? {}, resourceVersion: lease.metadata.resourceVersion };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },
    async create(spec) {
      await client.post(
        base,
        { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec },
        { timeoutMs: 10_000 },
      );
    },
    async update(spec, resourceVersion) {
      await client.put(
        path,
        {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, resourceVersion },
          spec,
        },
        { timeoutMs: 10_000 },
      );
    },
  };
}
