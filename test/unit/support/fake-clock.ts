import type { Clock, TimerHandle } from '../../../src/runtime/clock.js';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** Lets all pending promise callbacks run (a macrotask turn follows every microtask). */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A clock whose time moves only when a test advances it. */
export class FakeClock implements Clock {
  private current: number;
  /** How far the wall clock has been stepped away from the monotonic one (jumpWall). */
  private wallOffset = 0;
  private timers: Timer[] = [];
  private nextId = 1;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current + this.wallOffset;
  }

  monotonic(): number {
    return this.current;
  }

  /** Steps the wall clock (as NTP or a skewed VM would); timers and monotonic time do not move. */
  jumpWall(ms: number): void {
    this.wallOffset += ms;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, at: this.current + Math.max(0, ms), fn };
    this.timers.push(timer);
    return timer as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t !== (handle as unknown as Timer));
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  /**
   * Moves time forward without running anything, as for a process that was stopped (SIGSTOP, a
   * frozen VM): code that runs next sees the new time before any due timer has fired.
   */
  pause(ms: number): void {
    this.current += ms;
  }

  /** Moves time forward, firing due timers in order and letting async work settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    await flush();
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.current = next.at;
      next.fn();
      await flush();
    }
    this.current = end;
    await flush();
  }
}
