/**
 * The manager's leadership terms with real timers and an in-memory Lease (short timings): graceful
 * shutdown lets a reconcile in flight finish its writes while the lease is still renewed, then hands
 * the lease back; a lost lease refuses the writes of the term that held it.
 */
import { describe, expect, it } from '@jest/globals';
import { Controller } from '../../../src/runtime/controller.js';
import { Manager } from '../../../src/runtime/manager.js';
import { leadershipFence } from '../../../src/runtime/leadership.js';
import { OperatorMetrics } from '../../../src/metrics/metrics.js';
import { memoryLogger } from '../support/logger.js';
import { MemoryLease } from '../support/memory-lease.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A manager whose one controller runs a reconcile that waits for `release()` and then tries a write. */
function setup() {
  const { logger } = memoryLogger('warn');
  const metrics = new OperatorMetrics(false);
  const store = new MemoryLease();
  const manager = new Manager({
    logger,
    metrics,
    identity: 'me',
    shutdownGracePeriodMs: 5_000,
    leaderElection: { store, leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 200 },
  });
  const fence = leadershipFence(() => {});
  const outcome: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const controller = new Controller({
    name: 'test',
    logger,
    concurrency: 1,
    reconciler: {
      async reconcile() {
        started();
        await gate;
        try {
          fence('DELETE', '/api/v1/namespaces/n/secrets/s');
          outcome.push('write sent');
        } catch (err) {
          outcome.push(`write refused: ${(err as Error).message}`);
        }
      },
    },
  });
  manager.addController(controller);
  return { manager, controller, store, outcome, release, running, metrics };
}

describe('Manager leadership terms', () => {
  it('graceful shutdown: a reconcile in flight finishes its write while the lease is renewed, then the lease is released', async () => {
    const { manager, controller, store, outcome, release, running } = setup();
    await manager.start();
    for (let i = 0; i < 50 && !manager.isLeader; i++) await sleep(50);
    controller.enqueue('n/p');
    await running;
    const stopped = manager.shutdown();
    // Longer than the renew deadline: the lease must still be renewed while the work drains.
    await sleep(1_500);
    expect(store.spec?.holderIdentity).toBe('me');
    release();
    await stopped;
    expect(outcome).toEqual(['write sent']);
    expect(store.spec?.holderIdentity).toBe('');
  });

  it('a lease lost in the middle of a reconcile: its write is refused, nothing is sent', async () => {
    const { manager, controller, store, outcome, release, running, metrics } = setup();
    await manager.start();
    for (let i = 0; i < 50 && !manager.isLeader; i++) await sleep(50);
    controller.enqueue('n/p');
    await running;
    store.broken = true; // the apiserver is away: no renewal succeeds
    await sleep(1_300);
    release();
    await sleep(100);
    expect(outcome).toEqual([
      'write refused: DELETE /api/v1/namespaces/n/secrets/s refused: made after this replica stopped leading',
    ]);
    expect(
      (await metrics.registry.getSingleMetricAsString('authprobe_leader')).trim().split('\n').pop(),
    ).toBe('authprobe_leader 0');
    store.broken = false;
    await manager.shutdown();
  });
});
