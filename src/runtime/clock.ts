/**
 * Time as the runtime sees it. Injected everywhere a decision depends on time, so that unit
 * tests drive back-off, requeue and lease expiry with a fake clock instead of sleeping.
 */
export interface Clock {
  /** Wall-clock time (epoch ms): only for what is written down or compared with other machines. */
  now(): number;
  /**
   * Monotonic time (ms from an arbitrary origin): for every duration this process measures itself
   * (lease expiry, renew deadlines, freshness). A wall clock that jumps (NTP step, a skewed VM) does
   * not move it.
   */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  unref?(): unknown;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Resolves after `ms` on the given clock, or early (rejecting nothing) when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      resolve();
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Exponential back-off with a cap and full jitter in [50%, 100%] of the step. */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(step * (0.5 + random() / 2));
}
