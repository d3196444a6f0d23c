import { describe, expect, it } from '@jest/globals';
import { Informer, type ListWatcher, type ListResult } from '../../../src/runtime/informer.js';
import type { WatchEvent } from '../../../src/kube/client.js';
import { KubeApiError, KubeTransportError } from '../../../src/kube/errors.js';
import type { KubeObject } from '../../../src/kube/resources.js';
import { FakeClock, flush } from '../support/fake-clock.js';
import { memoryLogger } from '../support/logger.js';

const obj = (name: string, rv: string): KubeObject => ({
  metadata: { namespace: 'ns', name, resourceVersion: rv },
});

type WatchScript = (rv: string, emit: (e: WatchEvent<KubeObject>) => void) => Promise<void>;

/** A scripted apiserver: each list/watch call takes the next step of the script. */
function scripted(lists: Array<ListResult<KubeObject> | Error>, watches: WatchScript[]) {
  const calls: string[] = [];
  const source: ListWatcher<KubeObject> = {
    async list() {
      calls.push('list');
      const next = lists.shift();
      if (!next) return new Promise(() => {});
      if (next instanceof Error) throw next;
      return next;
    },
    async watch(rv, onEvent, signal) {
      calls.push(`watch@${rv}`);
      const next = watches.shift();
      if (!next) {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        return;
      }
      return next(rv, onEvent);
    },
  };
  return { source, calls };
}

function informerFor(source: ListWatcher<KubeObject>, clock: FakeClock) {
  const { logger, text } = memoryLogger();
  const events: string[] = [];
  const informer = new Informer(source, {
    name: 'test',
    logger,
    clock,
    backoffBaseMs: 1000,
    backoffMaxMs: 8000,
    random: () => 1,
  });
  informer.addHandlers({
    onAdd: (o) => events.push(`add ${o.metadata?.name}`),
    onUpdate: (_o, n) => events.push(`update ${n.metadata?.name}`),
    onDelete: (o) => events.push(`delete ${o.metadata?.name}`),
  });
  return { informer, events, logs: text };
}

describe('Informer', () => {
  it('lists, reports synced, then applies watch events from the list resourceVersion', async () => {
    const clock = new FakeClock();
    const { source, calls } = scripted(
      [{ items: [obj('a', '1')], resourceVersion: '10' }],
      [
        async (_rv, emit) => {
          emit({ type: 'ADDED', object: obj('b', '11') });
          emit({ type: 'MODIFIED', object: obj('a', '12') });
          emit({ type: 'DELETED', object: obj('b', '13') });
        },
      ],
    );
    const { informer, events } = informerFor(source, clock);
    informer.start();
    await informer.waitForSync();
    await flush();
    expect(informer.hasSynced).toBe(true);
    expect(events).toEqual(['add a', 'add b', 'update a', 'delete b']);
    expect(calls.slice(0, 2)).toEqual(['list', 'watch@10']);
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(['a']);
    await informer.stop();
  });

  it('keeps no managedFields in its cache (listed or watched)', async () => {
    const clock = new FakeClock();
    const managed = (name: string, rv: string): KubeObject =>
      ({
        metadata: { ...obj(name, rv).metadata, managedFields: [{ manager: 'kubectl', fieldsV1: {} }] },
      }) as KubeObject;
    const { source } = scripted(
      [{ items: [managed('a', '1')], resourceVersion: '10' }],
      [async (_rv, emit) => emit({ type: 'ADDED', object: managed('b', '11') })],
    );
    const { informer } = informerFor(source, clock);
    informer.start();
    await informer.waitForSync();
    await flush();
    const cached = informer.list().map((o) => o.metadata as Record<string, unknown>);
    expect(cached.map((m) => m.name)).toEqual(['a', 'b']);
    expect(cached.filter((m) => 'managedFields' in m)).toEqual([]);
    await informer.stop();
  });

  it('a watch error is followed by a retry from the last resourceVersion after a back-off, not an exit', async () => {
    const clock = new FakeClock();
    const { source, calls } = scripted(
      [{ items: [], resourceVersion: '10' }],
      [
        async (_rv, emit) => {
          emit({ type: 'ADDED', object: obj('a', '11') });
          throw new KubeTransportError('ECONNRESET', 'socket hang up');
        },
        async () => {
          throw new KubeTransportError('ECONNREFUSED', 'connect ECONNREFUSED');
        },
      ],
    );
    const { informer, logs } = informerFor(source, clock);
    informer.start();
    await informer.waitForSync();
    await flush();
    expect(calls).toEqual(['list', 'watch@10']);
    await clock.advance(999);
    expect(calls).toEqual(['list', 'watch@10']);
    await clock.advance(1);
    expect(calls).toEqual(['list', 'watch@10', 'watch@11']);
    // The second failure backs off twice as long.
    await clock.advance(1999);
    expect(calls).toHaveLength(3);
    await clock.advance(1);
    expect(calls).toEqual(['list', 'watch@10', 'watch@11', 'watch@11']);
    expect(logs()).toContain('watch failed; resuming');
    expect(informer.get('ns/a')).toBeDefined();
    await informer.stop();
  });

  it('410 Gone on watch re-lists at once and emits deletes for objects gone meanwhile', async () => {
    const clock = new FakeClock();
    const { source, calls } = scripted(
      [
        { items: [obj('a', '1'), obj('b', '2')], resourceVersion: '10' },
        { items: [obj('a', '1'), obj('c', '30')], resourceVersion: '31' },
      ],
      [
        async () => {
          throw new KubeApiError(410, 'Expired', 'too old resource version');
        },
      ],
    );
    const { informer, events } = informerFor(source, clock);
    informer.start();
    await informer.waitForSync();
    await flush();
    await flush();
    expect(calls.slice(0, 4)).toEqual(['list', 'watch@10', 'list', 'watch@31']);
    expect(events).toEqual(['add a', 'add b', 'delete b', 'add c']);
    await informer.stop();
  });

  it('an ERROR event with code 410 inside the stream also re-lists', async () => {
    const clock = new FakeClock();
    const { source, calls } = scripted(
      [
        { items: [], resourceVersion: '10' },
        { items: [], resourceVersion: '50' },
      ],
      [
        async (_rv, emit) => {
          emit({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } as KubeObject });
        },
      ],
    );
    const { informer } = informerFor(source, clock);
    informer.start();
    await informer.waitForSync();
    await flush();
    await flush();
    expect(calls.slice(0, 4)).toEqual(['list', 'watch@10', 'list', 'watch@50']);
    await informer.stop();
  });

  it('a failing initial list is retried with back-off until it succeeds', async () => {
    const clock = new FakeClock();
    const { source, calls } = scripted(
      [
        new KubeApiError(401, 'Unauthorized', 'Unauthorized'),
        { items: [obj('a', '1')], resourceVersion: '5' },
      ],
      [],
    );
    const { informer } = informerFor(source, clock);
    informer.start();
    await flush();
    expect(informer.hasSynced).toBe(false);
    await clock.advance(1000);
    await informer.waitForSync();
    expect(calls.slice(0, 3)).toEqual(['list', 'list', 'watch@5']);
    await informer.stop();
  });
});
