import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { EventRecorder, type EventTarget } from '../../../src/events/recorder.js';
import { ProbeReason } from '../../../src/api/reasons.js';

/** The Event writes the recorder sends, in order: what the apiserver (and kubectl get events) would see. */
function recorderWithClock() {
  let now = Date.parse('2026-11-29T12:00:00Z');
  const writes: Array<{ verb: 'POST' | 'PATCH'; path: string; body: Record<string, unknown> }> = [];
  const client = {
    post: async <T>(path: string, body: unknown): Promise<T> => {
      writes.push({ verb: 'POST', path, body: body as Record<string, unknown> });
      return {} as T;
    },
    mergePatch: async <T>(path: string, body: unknown): Promise<T> => {
      writes.push({ verb: 'PATCH', path, body: body as Record<string, unknown> });
      return {} as T;
    },
  };
  const recorder = new EventRecorder(client, pino({ level: 'silent' }), 'test', () => now);
  return { recorder, writes, advance: (ms: number) => (now += ms) };
}

const probe = (name: string): EventTarget => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  namespace: 'team',
  name,
  uid: `uid-${name}`,
});

describe('EventRecorder', () => {
  it('folds a repeat within ten minutes into one Event, writing its count at most once a minute', async () => {
    const { recorder, writes, advance } = recorderWithClock();
    const rejected = () => recorder.record(probe('a'), 'Warning', ProbeReason.TokenRejected, 'rejected');
    await rejected();
    advance(30_000);
    await rejected(); // count 2, not written yet
    advance(31_000);
    await rejected(); // count 3, a minute after the first write
    expect(writes.map((w) => w.verb)).toEqual(['POST', 'PATCH']);
    expect(writes[1]?.body).toMatchObject({ count: 3 });
    expect(recorder.seriesCount).toBe(1);
  });

  it('starts a new Event once ten minutes passed since the last write, and keeps no expired series', async () => {
    const { recorder, writes, advance } = recorderWithClock();
    for (const name of ['a', 'b', 'c']) {
      await recorder.record(probe(name), 'Warning', ProbeReason.TokenRejected, 'rejected');
    }
    advance(9 * 60_000);
    await recorder.record(probe('a'), 'Warning', ProbeReason.TokenRejected, 'rejected'); // written again: kept
    advance(2 * 60_000);
    // b and c were last written 11 minutes ago; a 2 minutes ago
    await recorder.record(probe('d'), 'Normal', ProbeReason.Authenticated, 'fine');
    expect(recorder.seriesCount).toBe(2);
    await recorder.record(probe('b'), 'Warning', ProbeReason.TokenRejected, 'rejected');
    expect(writes.map((w) => w.verb)).toEqual(['POST', 'POST', 'POST', 'PATCH', 'POST', 'POST']);
    expect(writes[5]?.body).toMatchObject({ count: 1, involvedObject: { name: 'b' } });
  });

  it('forgets every series of a deleted object, and only those', async () => {
    const { recorder } = recorderWithClock();
    await recorder.record(probe('a'), 'Warning', ProbeReason.TokenRejected, 'rejected');
    await recorder.record(probe('a'), 'Normal', ProbeReason.Authenticated, 'fine');
    await recorder.record(probe('b'), 'Normal', ProbeReason.Authenticated, 'fine');
    recorder.forget({ kind: 'AuthProbe', namespace: 'team', name: 'a' });
    expect(recorder.seriesCount).toBe(1);
    recorder.forget({ kind: 'AuthProbe', namespace: 'team', name: 'b' });
    expect(recorder.seriesCount).toBe(0);
  });
});
