import { describe, expect, it } from '@jest/globals';
import { LeaderElector, type LeadershipTerm, type LeaseStore } from '../../../src/runtime/leader.js';
import { KubeApiError } from '../../../src/kube/errors.js';
import { FakeClock } from '../support/fake-clock.js';
import { memoryLogger } from '../support/logger.js';
import { MemoryLease } from '../support/memory-lease.js';

function elector(
  id: string,
  store: LeaseStore,
  clock: FakeClock,
  log: string[],
  terms: LeadershipTerm[] = [],
) {
  const { logger } = memoryLogger();
  return new LeaderElector({
    identity: id,
    store,
    logger,
    clock,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    onStartedLeading: (term) => {
      terms.push(term);
      log.push(`${id} started`);
    },
    onStoppedLeading: () => {
      log.push(`${id} stopped`);
    },
  });
}

describe('LeaderElector', () => {
  it('elects exactly one of two candidates, and the other takes over within the lease duration after the leader dies', async () => {
    const clock = new FakeClock();
    const store = new MemoryLease();
    const log: string[] = [];
    const a = elector('a', store, clock, log);
    const b = elector('b', store, clock, log);
    const aStop = new AbortController();
    const bStop = new AbortController();
    void a.run(aStop.signal);
    await clock.advance(1);
    void b.run(bStop.signal);
    await clock.advance(30_000);
    expect(log).toEqual(['a started']);
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    expect(store.spec?.holderIdentity).toBe('a');

    // "Kill" a: from now on none of its writes reach the apiserver, and it never releases.
    const realUpdate = store.update.bind(store);
    store.update = async (spec, rv) => {
      if (spec.holderIdentity === 'a') throw new KubeApiError(500, 'InternalError', 'a is dead');
      return realUpdate(spec, rv);
    };
    const killedAt = clock.now();
    let takeoverAt: number | undefined;
    for (let i = 0; i < 40 && takeoverAt === undefined; i++) {
      await clock.advance(500);
      if (b.isLeader) takeoverAt = clock.now();
    }
    expect(takeoverAt).toBeDefined();
    const takeoverMs = (takeoverAt as number) - killedAt;
    expect(takeoverMs).toBeGreaterThanOrEqual(13_000);
    // b may first see a's last renewal one retry period late, and acts at its next retry after expiry.
    expect(takeoverMs).toBeLessThanOrEqual(15_000 + 2 * 2_400 + 500);
    expect(store.spec?.holderIdentity).toBe('b');
    expect(store.spec?.leaseTransitions).toBe(1);
    // a noticed it could not renew within its deadline and stepped down; never two leaders.
    expect(a.isLeader).toBe(false);
    expect(log).toEqual(['a started', 'a stopped', 'b started']);
    aStop.abort();
    bStop.abort();
    await clock.advance(5_000);
  });

  it('a leader that shuts down releases the lease so the standby takes over at its next retry', async () => {
    const clock = new FakeClock();
    const store = new MemoryLease();
    const log: string[] = [];
    const a = elector('a', store, clock, log);
    const b = elector('b', store, clock, log);
    const aStop = new AbortController();
    const bStop = new AbortController();
    const aDone = a.run(aStop.signal);
    await clock.advance(1);
    void b.run(bStop.signal);
    await clock.advance(10_000);
    aStop.abort();
    await clock.advance(1);
    await aDone;
    expect(store.spec?.holderIdentity).toBe('');
    await clock.advance(2_400);
    expect(b.isLeader).toBe(true);
    expect(log).toEqual(['a started', 'a stopped', 'b started']);
    bStop.abort();
    await clock.advance(5_000);
  });

  it('judges the lease by the monotonic clock: wall-clock jumps of either replica neither stretch nor shorten it', async () => {
    const clock = new FakeClock();
    const store = new MemoryLease();
    const log: string[] = [];
    const terms: LeadershipTerm[] = [];
    const a = elector('a', store, clock, log, terms);
    const b = elector('b', store, clock, log);
    const stop = new AbortController();
    void a.run(stop.signal);
    await clock.advance(1);
    void b.run(stop.signal);
    await clock.advance(5_000);
    // Both wall clocks step (NTP, a resumed VM): a's back by an hour, b's forward by an hour.
    clock.jumpWall(-3_600_000);
    await clock.advance(20_000);
    expect(log).toEqual(['a started']);
    expect(b.isLeader).toBe(false);
    // a is cut off from the apiserver: its term ends at its renew deadline (10 s after its last
    // successful renewal), although its wall clock says that renewal lies an hour in the future.
    const realUpdate = store.update.bind(store);
    store.update = async (spec, rv) => {
      if (spec.holderIdentity === 'a') throw new KubeApiError(500, 'InternalError', 'partitioned');
      return realUpdate(spec, rv);
    };
    const cut = clock.monotonic();
    clock.jumpWall(-30_000); // and its wall clock steps back once more, in the middle of it
    let invalidAt: number | undefined;
    for (let i = 0; i < 40 && invalidAt === undefined; i++) {
      await clock.advance(250);
      if (!terms[0]?.valid()) invalidAt = clock.monotonic();
    }
    expect((invalidAt as number) - cut).toBeLessThanOrEqual(10_000);
    expect(terms[0]?.signal.aborted).toBe(true);
    // b takes over only after the full lease duration from when it last saw a renew.
    await clock.advance(20_000);
    expect(b.isLeader).toBe(true);
    expect(log).toEqual(['a started', 'a stopped', 'b started']);
    stop.abort();
    await clock.advance(5_000);
  });

  it('a renewal that hangs is cut off at the renew deadline, and the term ends then', async () => {
    const clock = new FakeClock();
    const store = new MemoryLease();
    const log: string[] = [];
    const terms: LeadershipTerm[] = [];
    const a = elector('a', store, clock, log, terms);
    const stop = new AbortController();
    void a.run(stop.signal);
    await clock.advance(3_000);
    expect(a.isLeader).toBe(true);
    // From now on every request for the Lease hangs until its signal aborts (a black-holed apiserver).
    let aborted = 0;
    const hang = <T>(signal?: AbortSignal) =>
      new Promise<T>((_resolve, reject) => {
        signal?.addEventListener('abort', () => {
          aborted++;
          reject(new Error('aborted'));
        });
      });
    store.get = (signal?: AbortSignal) => hang(signal);
    store.update = (_spec, _rv, signal?: AbortSignal) => hang(signal);
    // The last renewal that succeeded started at 2 s (acquired at 0, renewed every 2 s).
    await clock.advance(6_000);
    expect(terms[0]?.valid()).toBe(true);
    await clock.advance(2_999);
    expect(terms[0]?.valid()).toBe(true);
    await clock.advance(2);
    expect(terms[0]?.valid()).toBe(false);
    expect(terms[0]?.signal.aborted).toBe(true);
    expect(log).toEqual(['a started', 'a stopped']);
    expect(aborted).toBeGreaterThanOrEqual(1);
    stop.abort();
    await clock.advance(30_000);
  });

  it('keeps its lease on an apiserver that answers every request 3 s late', async () => {
    const clock = new FakeClock();
    const store = new MemoryLease();
    const late = <T>(answer: () => Promise<T>) =>
      new Promise<void>((resolve) => clock.setTimeout(resolve, 3_000)).then(answer);
    const { get, create, update } = {
      get: store.get.bind(store),
      create: store.create.bind(store),
      update: store.update.bind(store),
    };
    store.get = () => late(get);
    store.create = (spec) => late(() => create(spec));
    store.update = (spec, rv) => late(() => update(spec, rv));
    const log: string[] = [];
    const terms: LeadershipTerm[] = [];
    const a = elector('a', store, clock, log, terms);
    const stop = new AbortController();
    void a.run(stop.signal);
    await clock.advance(10_000);
    for (let i = 0; i < 120; i++) {
      await clock.advance(500);
      expect(terms[0]?.valid()).toBe(true);
    }
    expect(log).toEqual(['a started']);
    stop.abort();
    await clock.advance(30_000);
  });

  it('a renewal that succeeds only after the renew deadline counts as lost', async () => {
    const clock = new FakeClock();
    const store = new MemoryLease();
    const log: string[] = [];
    const terms: LeadershipTerm[] = [];
    const a = elector('a', store, clock, log, terms);
    const stop = new AbortController();
    void a.run(stop.signal);
    await clock.advance(3_000);
    // The Lease write is answered, but 12 s late (a slow apiserver that ignores the cut-off).
    const realUpdate = store.update.bind(store);
    store.update = async (spec, rv) => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 12_000));
      return realUpdate(spec, rv);
    };
    await clock.advance(14_000);
    expect(terms[0]?.valid()).toBe(false);
    expect(log).toEqual(['a started', 'a stopped']);
    stop.abort();
    await clock.advance(30_000);
  });

  it('a leader paused past its lease finds its term invalid before any of its timers has run', async () => {
    const clock = new FakeClock();
    const store = new MemoryLease();
    const terms: LeadershipTerm[] = [];
    const a = elector('a', store, clock, [], terms);
    const stop = new AbortController();
    void a.run(stop.signal);
    await clock.advance(5_000);
    expect(terms[0]?.valid()).toBe(true);
    // SIGSTOP for 20 s, then SIGCONT: the first thing the resumed code asks is whether it leads.
    clock.pause(20_000);
    expect(a.isLeader).toBe(true); // the election loop has not run yet...
    expect(terms[0]?.valid()).toBe(false); // ...but the term already knows it has ended
    expect(a.holdsLease()).toBe(false);
    stop.abort();
    await clock.advance(30_000);
  });

  it('rejects timings that could produce two leaders', () => {
    const { logger } = memoryLogger();
    const base = {
      identity: 'x',
      store: new MemoryLease(),
      logger,
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
    };
    expect(
      () =>
        new LeaderElector({
          ...base,
          leaseDurationMs: 10_000,
          renewDeadlineMs: 10_000,
          retryPeriodMs: 2_000,
        }),
    ).toThrow(/renewDeadline must be shorter than leaseDuration/);
  });
});
