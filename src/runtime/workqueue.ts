import { systemClock, type Clock, type TimerHandle } from './clock.js';

export interface WorkQueueOptions {
  /** First retry delay after a failure; doubles per consecutive failure of the same key. */
  baseRetryDelayMs?: number;
  /** Upper bound of the retry delay. */
  maxRetryDelayMs?: number;
  clock?: Clock;
  /** Observers for metrics; the queue itself does not know about Prometheus. */
  onAdd?: () => void;
  onRetry?: () => void;
  onDepthChange?: (depth: number) => void;
}

/**
 * A work queue keyed by object, with the guarantees a level-triggered controller relies on:
 * - adding a key that is already waiting merges with it (many events, one reconcile);
 * - a key is never handed out twice at once: a key added while it is being processed is
 *   queued again only after `done()`;
 * - failures retry with per-key exponential back-off up to a cap (`addRateLimited`),
 *   reset by `forget`;
 * - `addAfter` schedules a later visit; of several schedules for one key the earliest wins;
 * - `shutDown` stops handing out work and `drain` waits for the work in progress.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; handle: TimerHandle }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private shuttingDown = false;
  private readonly clock: Clock;
  private readonly baseRetryDelayMs: number;
  private readonly maxRetryDelayMs: number;

  constructor(private readonly options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.baseRetryDelayMs = options.baseRetryDelayMs ?? 500;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5 * 60_000;
  }

  get length(): number {
    return this.queue.length;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    this.options.onAdd?.();
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
    this.options.onDepthChange?.(this.queue.length);
  }

  /** Visit `key` after `delayMs`; an earlier pending schedule for the same key is kept. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.clock.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.clock.clearTimeout(existing.handle);
    // Not unref'd: Node.js keeps the (empty) list of a cleared unref'd timer until its time comes, one
    // per distinct delay, so AuthProbes deleted by the thousand left one each for up to their interval
    // (found by the soak benchmark). shutDown() clears these timers; nothing else may keep them.
    const handle = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, handle });
  }

  /** Re-queue after a failure, backing off exponentially per key. Returns the delay used. */
  addRateLimited(key: string): number {
    const attempt = this.failures.get(key) ?? 0;
    this.failures.set(key, attempt + 1);
    const delay = this.retryDelay(attempt);
    this.options.onRetry?.();
    this.addAfter(key, delay);
    return delay;
  }

  retryDelay(attempt: number): number {
    return Math.min(this.maxRetryDelayMs, this.baseRetryDelayMs * 2 ** attempt);
  }

  /** Consecutive failures recorded for `key`. */
  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The key succeeded: its back-off starts from the beginning next time. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /**
   * The object is gone: drop its scheduled visit and its back-off. Keeps nothing of a key whose
   * object was deleted (AuthProbes created and deleted by the thousand would otherwise leave one
   * timer each for up to their interval).
   */
  discard(key: string): void {
    this.failures.delete(key);
    const scheduled = this.delayed.get(key);
    if (scheduled) {
      this.clock.clearTimeout(scheduled.handle);
      this.delayed.delete(key);
    }
  }

  /** Keys waiting for a scheduled visit (for tests and the queue's own accounting). */
  get scheduled(): number {
    return this.delayed.size;
  }

  /** Waits for the next key; resolves `undefined` once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      this.options.onDepthChange?.(this.queue.length);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
    if (this.processing.size === 0) this.idleWaiters.splice(0).forEach((fn) => fn());
  }

  /** Stops handing out keys and cancels scheduled visits. Work in progress continues. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { handle } of this.delayed.values()) this.clock.clearTimeout(handle);
    this.delayed.clear();
    this.waiters.splice(0).forEach((resolve) => resolve(undefined));
  }

  /** Shuts down and resolves once no key is being processed. */
  async drain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}
