import type { Logger } from 'pino';
import { backoffDelay, sleep, systemClock, type Clock } from './clock.js';
import type { KubeClient, WatchEvent } from '../kube/client.js';
import { describeError, isGone, KubeApiError } from '../kube/errors.js';
import type { KubeObject, ObjectMeta } from '../kube/resources.js';

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

/** How an informer reads its resource. The real one talks to the apiserver; tests fake it. */
export interface ListWatcher<T> {
  list(signal: AbortSignal): Promise<ListResult<T>>;
  /** Resolves when the stream ends normally; rejects with the failure otherwise. */
  watch(resourceVersion: string, onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal): Promise<void>;
}

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions {
  name: string;
  logger: Logger;
  clock?: Clock;
  /** Back-off after a failed list or watch: first step and cap. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  random?: () => number;
  onWatchError?: () => void;
  onRelist?: () => void;
}

/**
 * Drops metadata.managedFields (server-side apply bookkeeping, often as large as the rest of the
 * object) before an object is cached: nothing in the operator reads it, and with thousands of
 * AuthProbes it would be most of the cache, as controller-runtime's TransformStripManagedFields says.
 */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  const meta = obj.metadata as (ObjectMeta & { managedFields?: unknown }) | undefined;
  if (meta && 'managedFields' in meta) delete meta.managedFields;
  return obj;
}

export const objectKey = (obj: KubeObject): string =>
  obj.metadata?.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : (obj.metadata?.name ?? '');

/** The apiserver's way of saying "your resourceVersion is too old": re-list. */
function isExpiredEvent(event: WatchEvent<unknown>): boolean {
  const status = event.object as { code?: number; reason?: string } | undefined;
  return (
    event.type === 'ERROR' &&
    (status?.code === 410 || status?.reason === 'Expired' || status?.reason === 'Gone')
  );
}

class ResourceExpired extends Error {}

/**
 * Keeps a local cache of one resource by list + watch. A failed watch never ends the process:
 * it backs off and resumes from the last resourceVersion; when that is too old (410 Gone) it
 * re-lists and reconciles the cache, emitting deletes for objects that vanished meanwhile.
 */
export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private resourceVersion = '';
  private synced = false;
  private readonly syncWaiters: Array<() => void> = [];
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  private readonly clock: Clock;

  constructor(
    private readonly source: ListWatcher<T>,
    private readonly options: InformerOptions,
  ) {
    this.clock = options.clock ?? systemClock;
  }

  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const { logger, name } = this.options;
    let needList = true;
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      try {
        if (needList) {
          const result = await this.source.list(this.abort.signal);
          if (this.abort.signal.aborted) break;
          this.replace(result.items);
          this.resourceVersion = result.resourceVersion;
          needList = false;
          this.markSynced();
        }
        const received = await this.watchOnce();
        // A stream that ends cleanly is normal (server-side timeout): resume at once. One that
        // ends before carrying anything is treated like an error, so a server that keeps closing
        // streams is not hammered in a tight loop.
        if (received > 0) attempt = 0;
        else
          await sleep(
            this.clock,
            backoffDelay(attempt++, this.baseMs, this.maxMs, this.options.random),
            this.abort.signal,
          );
      } catch (err) {
        if (this.abort.signal.aborted) break;
        if (err instanceof ResourceExpired || isGone(err)) {
          logger.info({ informer: name }, 'watch resourceVersion expired; re-listing');
          this.options.onRelist?.();
          needList = true;
          continue;
        }
        const delay = backoffDelay(attempt++, this.baseMs, this.maxMs, this.options.random);
        this.options.onWatchError?.();
        logger.warn(
          { informer: name, err: describeError(err), retryInMs: delay, relist: needList },
          needList ? 'list failed; retrying' : 'watch failed; resuming',
        );
        await sleep(this.clock, delay, this.abort.signal);
      }
    }
  }

  private get baseMs(): number {
    return this.options.backoffBaseMs ?? 800;
  }

  private get maxMs(): number {
    return this.options.backoffMaxMs ?? 30_000;
  }

  /** Runs one watch stream; returns how many events it carried. */
  private async watchOnce(): Promise<number> {
    let received = 0;
    let expired = false;
    let streamError: KubeApiError | undefined;
    const streamAbort = new AbortController();
    const onStop = (): void => streamAbort.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    try {
      await this.source.watch(
        this.resourceVersion,
        (event) => {
          if (expired || streamError) return;
          // Never throw from here: this runs inside the stream's event emitter.
          if (isExpiredEvent(event)) {
            expired = true;
            streamAbort.abort();
            return;
          }
          if (event.type === 'ERROR') {
            const status = event.object as { code?: number; reason?: string; message?: string };
            streamError = new KubeApiError(
              status.code ?? 500,
              status.reason ?? 'WatchError',
              status.message ?? 'watch error',
            );
            streamAbort.abort();
            return;
          }
          received++;
          this.apply(event);
        },
        streamAbort.signal,
      );
    } catch (err) {
      // Aborting the stream ourselves may surface as a transport error; the reason we aborted wins.
      if (!expired && !streamError) throw err;
    } finally {
      this.abort.signal.removeEventListener('abort', onStop);
    }
    if (expired) throw new ResourceExpired();
    if (streamError) throw streamError;
    return received;
  }

  private apply(event: WatchEvent<T>): void {
    const obj = stripManagedFields(event.object);
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (event.type === 'BOOKMARK') return;
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (event.type === 'DELETED') {
      this.store.delete(key);
      this.emit((h) => h.onDelete?.(old ?? obj));
      return;
    }
    this.store.set(key, obj);
    if (old) this.emit((h) => h.onUpdate?.(old, obj));
    else this.emit((h) => h.onAdd?.(obj));
  }

  /** Replaces the cache with a fresh list, emitting the differences as events. */
  private replace(items: T[]): void {
    const fresh = new Map(items.map((item) => [objectKey(item), stripManagedFields(item)]));
    for (const [key, old] of this.store) {
      if (!fresh.has(key)) {
        this.store.delete(key);
        this.emit((h) => h.onDelete?.(old));
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.store.get(key);
      this.store.set(key, obj);
      if (!old) this.emit((h) => h.onAdd?.(obj));
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
        this.emit((h) => h.onUpdate?.(old, obj));
    }
  }

  private emit(fn: (handlers: InformerHandlers<T>) => void): void {
    for (const handlers of this.handlers) {
      try {
        fn(handlers);
      } catch (err) {
        this.options.logger.error(
          { informer: this.options.name, err: describeError(err) },
          'event handler failed',
        );
      }
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.syncWaiters.splice(0).forEach((resolve) => resolve());
  }
}

export interface ResourceSelector {
  /** e.g. `/apis/authprobe.io/v1alpha1` or `/api/v1` */
  groupVersionPath: string;
  /** plural resource name, e.g. `authprobes`, `pods` */
  resource: string;
  /** restrict to one namespace; all namespaces when absent */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Only metadata (PartialObjectMetadata): for objects whose contents the operator must not hold,
   * such as token Secrets, whose changes it only needs to notice.
   */
  metadataOnly?: boolean;
}

const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const METADATA_WATCH = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

export function resourcePath(sel: ResourceSelector): string {
  return sel.namespace
    ? `${sel.groupVersionPath}/namespaces/${encodeURIComponent(sel.namespace)}/${sel.resource}`
    : `${sel.groupVersionPath}/${sel.resource}`;
}

/** The real list/watch: paginated LIST, then WATCH with bookmarks from the list's resourceVersion. */
export function apiListWatcher<T extends KubeObject>(
  client: KubeClient,
  sel: ResourceSelector,
): ListWatcher<T> {
  const path = resourcePath(sel);
  const selectors = { labelSelector: sel.labelSelector, fieldSelector: sel.fieldSelector };
  return {
    async list(signal) {
      const items: T[] = [];
      let cont: string | undefined;
      let resourceVersion: string;
      do {
        const page = await client.get<{
          items: T[];
          metadata: { resourceVersion: string; continue?: string };
        }>(path, {
          query: { ...selectors, limit: 500, continue: cont },
          signal,
          timeoutMs: 60_000,
          ...(sel.metadataOnly ? { accept: METADATA_LIST } : {}),
        });
        items.push(...page.items);
        resourceVersion = page.metadata.resourceVersion;
        cont = page.metadata.continue || undefined;
      } while (cont);
      return { items, resourceVersion };
    },
    watch(resourceVersion, onEvent, signal) {
      return client.watch<T>(
        path,
        {
          ...selectors,
          resourceVersion,
          allowWatchBookmarks: true,
          // Spread reconnects so that many replicas do not re-watch in lock-step.
          timeoutSeconds: 240 + Math.floor(Math.random() * 120),
        },
        onEvent,
        signal,
        sel.metadataOnly ? METADATA_WATCH : undefined,
      );
    },
  };
}
