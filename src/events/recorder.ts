import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventReason, ReadyReason } from '../api/reasons.js';
import type { KubeApi } from '../kube/client.js';
import { describeError } from '../kube/errors.js';
import { apiPaths } from '../kube/resources.js';
import { scrubString } from '../log/logger.js';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

/** Every reason an Event may carry: a verdict's, or a step's (src/api/reasons.ts, nowhere else). */
export type AnyEventReason = ReadyReason | EventReason;

/** Where Events go; the recorder below, or a fake that keeps them in tests. */
export interface EventSink {
  record(target: EventTarget, type: EventType, reason: AnyEventReason, message: string): Promise<void>;
  /** The object was deleted: nothing kept for its Events (a sink that keeps nothing has nothing to do). */
  forget?(target: Pick<EventTarget, 'kind' | 'namespace' | 'name'>): void;
}

interface SeriesEntry {
  eventName: string;
  count: number;
  lastWrittenAt: number;
  /** objectKey() of the Event's object. */
  object: string;
}

const objectKey = (t: Pick<EventTarget, 'kind' | 'namespace' | 'name'>): string =>
  `${t.kind}/${t.namespace}/${t.name}`;

const COMPONENT = 'authprobe-operator';
/** A repeat of the same event within this window updates the existing Event instead of adding one. */
const SERIES_WINDOW_MS = 10 * 60_000;
/** Within a series, the count is written at most this often, so a repeating failure cannot flood. */
const SERIES_WRITE_INTERVAL_MS = 60_000;
const MAX_SERIES = 10_000;

/**
 * Writes core/v1 Events (what `kubectl describe` shows), correlating repeats the way client-go
 * does: the same object, type, reason and message within ten minutes become one Event with a
 * growing count. Failing to write an Event is logged, never thrown: Events are a report, not state.
 */
export class EventRecorder implements EventSink {
  /**
   * The open series, oldest write first (an entry moves to the end when its Event is written again),
   * so the ones past the window are dropped from the front. Each holds the object's name and the
   * message: AuthProbes created and deleted by the thousand must not leave one each behind.
   */
  private readonly series = new Map<string, SeriesEntry>();
  /** The series keys of each object, to drop them all when it is deleted. */
  private readonly byObject = new Map<string, Set<string>>();

  constructor(
    private readonly client: Pick<KubeApi, 'post' | 'mergePatch'>,
    private readonly logger: Logger,
    private readonly instance: string,
    private readonly now: () => number = Date.now,
  ) {}

  private lastMicros = 0;

  /** A strictly increasing MicroTime, so Events written in one millisecond still sort in order. */
  private nextEventTime(nowMs: number): string {
    const micros = Math.max(nowMs * 1000, this.lastMicros + 1);
    this.lastMicros = micros;
    const fraction = String(micros % 1_000_000).padStart(6, '0');
    return `${new Date(Math.floor(micros / 1000)).toISOString().slice(0, 19)}.${fraction}Z`;
  }

  async record(target: EventTarget, type: EventType, reason: AnyEventReason, message: string): Promise<void> {
    const safeMessage = scrubString(message).slice(0, 1024);
    const key = `${target.uid ?? target.namespace + '/' + target.name}|${type}|${reason}|${safeMessage}`;
    const now = this.now();
    this.expire(now);
    const stamp = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const existing = this.series.get(key);
    this.logger.info(
      { object: `${target.kind}/${target.namespace}/${target.name}`, type, reason, message: safeMessage },
      'event',
    );
    try {
      if (existing && now - existing.lastWrittenAt < SERIES_WINDOW_MS) {
        existing.count++;
        if (now - existing.lastWrittenAt < SERIES_WRITE_INTERVAL_MS) return;
        existing.lastWrittenAt = now;
        // newest write last: expire() reads the series from the front
        this.series.delete(key);
        this.series.set(key, existing);
        await this.client.mergePatch(
          apiPaths.event(target.namespace, existing.eventName),
          {
            count: existing.count,
            lastTimestamp: stamp,
          },
          { timeoutMs: 10_000 },
        );
        return;
      }
      const eventName = `${target.name}.${randomBytes(8).toString('hex')}`;
      await this.client.post(
        apiPaths.events(target.namespace),
        {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: eventName, namespace: target.namespace },
          involvedObject: target,
          type,
          reason,
          message: safeMessage,
          count: 1,
          firstTimestamp: stamp,
          lastTimestamp: stamp,
          // Microsecond time: Events of one heal happen within a second, and this keeps their order.
          eventTime: this.nextEventTime(now),
          action: reason,
          source: { component: COMPONENT },
          reportingComponent: `authprobe.io/${COMPONENT}`,
          reportingInstance: this.instance.slice(0, 128),
        },
        { timeoutMs: 10_000 },
      );
      if (existing) this.drop(key, existing);
      if (this.series.size >= MAX_SERIES) this.dropOldest();
      const object = objectKey(target);
      this.series.set(key, { eventName, count: 1, lastWrittenAt: now, object });
      const keys = this.byObject.get(object);
      if (keys) keys.add(key);
      else this.byObject.set(object, new Set([key]));
    } catch (err) {
      this.logger.warn({ err: describeError(err), reason, object: target.name }, 'could not write an Event');
    }
  }

  forget(target: Pick<EventTarget, 'kind' | 'namespace' | 'name'>): void {
    const object = objectKey(target);
    for (const key of this.byObject.get(object) ?? []) this.series.delete(key);
    this.byObject.delete(object);
  }

  /** Open series (what the recorder holds in memory). */
  get seriesCount(): number {
    return this.series.size;
  }

  /** Drops the series whose window has passed: a repeat of their Event now starts a new one. */
  private expire(now: number): void {
    for (const [key, entry] of this.series) {
      if (now - entry.lastWrittenAt < SERIES_WINDOW_MS) return;
      this.drop(key, entry);
    }
  }

  private dropOldest(): void {
    const first = this.series.entries().next();
    if (!first.done) this.drop(first.value[0], first.value[1]);
  }

  private drop(key: string, entry: SeriesEntry): void {
    this.series.delete(key);
    const keys = this.byObject.get(entry.object);
    keys?.delete(key);
    if (keys?.size === 0) this.byObject.delete(entry.object);
  }
}
