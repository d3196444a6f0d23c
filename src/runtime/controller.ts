import type { Logger } from 'pino';
import { WorkQueue, type WorkQueueOptions } from './workqueue.js';
import { describeError } from '../kube/errors.js';
import type { KubeObject } from '../kube/resources.js';
import { objectKey, type Informer } from './informer.js';
import type { OperatorMetrics } from '../metrics/metrics.js';

export interface ReconcileResult {
  /** Visit this key again after this long even if nothing changes (how time enters). */
  requeueAfterMs?: number;
  /** The object is gone: forget the key's scheduled visit and back-off. */
  gone?: boolean;
}

/**
 * Level-triggered: given a key, look at the world as it is now and move it one step towards
 * the spec. Which event woke it is deliberately not passed in.
 */
export interface Reconciler {
  reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | void>;
}

/**
 * What to do after a failed reconcile is a decision of its own: by default, per-key exponential
 * back-off; a controller may return a fixed delay instead (e.g. when the cause is known).
 */
export type ErrorPolicy = (key: string, error: unknown, failures: number) => { requeueAfterMs?: number };

export const backoffOnError: ErrorPolicy = () => ({});

export interface ControllerOptions {
  name: string;
  reconciler: Reconciler;
  logger: Logger;
  concurrency: number;
  metrics?: OperatorMetrics;
  errorPolicy?: ErrorPolicy;
  queue?: Omit<WorkQueueOptions, 'onAdd' | 'onRetry' | 'onDepthChange'>;
}

/**
 * Runs a reconciler over a work queue fed by informers. Between leadership terms there is no
 * queue: a new term starts a fresh queue and re-enqueues every primary object from the cache.
 */
export class Controller {
  private queue?: WorkQueue;
  private readonly resyncSources: Array<() => string[]> = [];

  constructor(private readonly options: ControllerOptions) {}

  get name(): string {
    return this.options.name;
  }

  /** Reconcile every object of `informer` under its own key (the controller's primary resource). */
  watchPrimary<T extends KubeObject>(informer: Informer<T>): void {
    informer.addHandlers({
      onAdd: (obj) => this.enqueue(objectKey(obj)),
      onUpdate: (_old, obj) => this.enqueue(objectKey(obj)),
      onDelete: (obj) => this.enqueue(objectKey(obj)),
    });
    this.resyncSources.push(() => informer.list().map(objectKey));
  }

  /** Reconcile the owner(s) `map` names when a secondary object changes (e.g. probe pods). */
  watchSecondary<T extends KubeObject>(informer: Informer<T>, map: (obj: T) => string[]): void {
    const enqueueAll = (obj: T): void => map(obj).forEach((key) => this.enqueue(key));
    informer.addHandlers({
      onAdd: enqueueAll,
      onUpdate: (_old, obj) => enqueueAll(obj),
      onDelete: enqueueAll,
    });
  }

  enqueue(key: string): void {
    this.queue?.add(key);
  }

  enqueueAfter(key: string, delayMs: number): void {
    this.queue?.addAfter(key, delayMs);
  }

  get queueLength(): number {
    return this.queue?.length ?? 0;
  }

  /** Runs workers until `signal` aborts, then drains the work in progress. */
  async run(signal: AbortSignal): Promise<void> {
    const { name, metrics } = this.options;
    const queue = new WorkQueue({
      ...this.options.queue,
      onAdd: () => metrics?.queueAdds.inc({ controller: name }),
      onRetry: () => metrics?.queueRetries.inc({ controller: name }),
      onDepthChange: (depth) => metrics?.queueDepth.set({ controller: name }, depth),
    });
    this.queue = queue;
    for (const source of this.resyncSources) source().forEach((key) => queue.add(key));
    const workers = Array.from({ length: this.options.concurrency }, () => this.work(queue, signal));
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await queue.drain();
    await Promise.all(workers);
    if (this.queue === queue) this.queue = undefined;
  }

  private async work(queue: WorkQueue, signal: AbortSignal): Promise<void> {
    const { name, reconciler, logger, metrics } = this.options;
    const errorPolicy = this.options.errorPolicy ?? backoffOnError;
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const started = process.hrtime.bigint();
      let result = 'success';
      try {
        const outcome = await reconciler.reconcile(key, signal);
        if (outcome?.gone) queue.discard(key);
        else queue.forget(key);
        if (outcome?.requeueAfterMs !== undefined) queue.addAfter(key, outcome.requeueAfterMs);
      } catch (err) {
        result = 'error';
        metrics?.reconcileErrors.inc({ controller: name });
        const failures = queue.failureCount(key) + 1;
        const decision = errorPolicy(key, err, failures);
        const retryInMs =
          decision.requeueAfterMs !== undefined
            ? (queue.addAfter(key, decision.requeueAfterMs), decision.requeueAfterMs)
            : queue.addRateLimited(key);
        logger.warn(
          { controller: name, key, err: describeError(err), failures, retryInMs },
          'reconcile failed',
        );
      } finally {
        queue.done(key);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        metrics?.reconcileDuration.observe({ controller: name, result }, seconds);
      }
    }
  }
}
