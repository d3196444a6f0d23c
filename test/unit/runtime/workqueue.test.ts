import { describe, expect, it } from '@jest/globals';
import { WorkQueue } from '../../../src/runtime/workqueue.js';
import { FakeClock, flush } from '../support/fake-clock.js';

describe('WorkQueue', () => {
  it('merges events for a key that is already waiting', async () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');
    expect(queue.length).toBe(2);
    expect(await queue.get()).toBe('ns/a');
    expect(await queue.get()).toBe('ns/b');
    expect(queue.length).toBe(0);
  });

  it('never hands out a key that is being processed; re-queues it once on done', async () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    const first = await queue.get();
    queue.add('ns/a');
    queue.add('ns/a');
    expect(queue.length).toBe(0);
    let second: string | undefined;
    void queue.get().then((key) => (second = key));
    await flush();
    expect(second).toBeUndefined();
    queue.done(first as string);
    await flush();
    expect(second).toBe('ns/a');
    expect(queue.length).toBe(0);
  });

  it('two workers never process one key at the same time', async () => {
    const queue = new WorkQueue();
    let active = 0;
    let maxActive = 0;
    let processed = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await queue.get();
        if (key === undefined) return;
        active++;
        maxActive = Math.max(maxActive, active);
        await flush();
        if (processed++ < 5) queue.add(key);
        active--;
        queue.done(key);
      }
    };
    queue.add('ns/a');
    queue.add('ns/a');
    const workers = [worker(), worker(), worker()];
    for (let i = 0; i < 20; i++) await flush();
    await queue.drain();
    await Promise.all(workers);
    expect(processed).toBe(6);
    expect(maxActive).toBe(1);
  });

  it('backs off exponentially per key up to the cap, and forget resets it', () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock, baseRetryDelayMs: 100, maxRetryDelayMs: 1000 });
    const delays = Array.from({ length: 6 }, () => queue.addRateLimited('ns/a'));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(queue.addRateLimited('ns/other')).toBe(100);
    queue.forget('ns/a');
    expect(queue.addRateLimited('ns/a')).toBe(100);
  });

  it('a rate-limited key comes back only after its delay', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock, baseRetryDelayMs: 100, maxRetryDelayMs: 1000 });
    queue.addRateLimited('ns/a');
    queue.addRateLimited('ns/a'); // second failure: 200 ms, but the earlier 100 ms visit stands
    await clock.advance(99);
    expect(queue.length).toBe(0);
    await clock.advance(1);
    expect(queue.length).toBe(1);
  });

  it('requeueAfter delivers the key at the requested time, keeping the earliest schedule', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    queue.addAfter('ns/a', 30_000);
    queue.addAfter('ns/a', 60_000);
    await clock.advance(29_999);
    expect(queue.length).toBe(0);
    await clock.advance(1);
    expect(queue.length).toBe(1);
    expect(await queue.get()).toBe('ns/a');
    queue.done('ns/a');
    await clock.advance(60_000);
    expect(queue.length).toBe(0);
    queue.addAfter('ns/a', 60_000);
    queue.addAfter('ns/a', 5_000);
    await clock.advance(5_000);
    expect(queue.length).toBe(1);
  });

  it('shutDown wakes idle workers with undefined and drain waits for work in progress', async () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    const key = await queue.get();
    const idle = queue.get();
    let drained = false;
    const draining = queue.drain().then(() => (drained = true));
    expect(await idle).toBeUndefined();
    await flush();
    expect(drained).toBe(false);
    queue.done(key as string);
    await draining;
    expect(drained).toBe(true);
    queue.add('ns/b');
    expect(queue.length).toBe(0);
  });

  it("discard drops a deleted key's scheduled visit and back-off: nothing of it is kept", async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    for (let i = 0; i < 1_000; i++) queue.addAfter(`ns/p${i}`, 3_600_000);
    queue.addRateLimited('ns/p0');
    expect(queue.scheduled).toBe(1_000);
    for (let i = 0; i < 1_000; i++) queue.discard(`ns/p${i}`);
    expect(queue.scheduled).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    expect(queue.failureCount('ns/p0')).toBe(0);
    await clock.advance(3_600_000);
    expect(queue.length).toBe(0);
    queue.addAfter('ns/p1', 1_000); // a new object of the same name is scheduled as usual
    await clock.advance(1_000);
    expect(queue.length).toBe(1);
    await flush();
  });

  it('on the real clock, discarded visits leave no timer in Node.js behind', () => {
    // Node.js keeps the emptied list of a cleared *unref'd* timer until its time comes (one per distinct
    // delay): the soak benchmark found 7,204 of them after 15,000 AuthProbes were created and deleted.
    // The queue's timers are ordinary (ref'd) ones, which Node.js lists while pending and drops when cleared.
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const queue = new WorkQueue();
    for (let i = 0; i < 100; i++) queue.addAfter(`ns/p${i}`, 3_600_000 + i);
    expect(timers()).toBe(before + 100);
    for (let i = 0; i < 100; i++) queue.discard(`ns/p${i}`);
    expect(timers()).toBe(before);
    queue.addAfter('ns/q', 3_600_000);
    queue.shutDown();
    expect(timers()).toBe(before);
  });
});
