import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { LeaderElector, type LeadershipTerm, type LeaseStore } from './leader.js';
import { runInTerm, unelectedTerm } from './leadership.js';
import type { Controller } from './controller.js';
import type { KubeObject } from '../kube/resources.js';
import type { Informer } from './informer.js';
import type { OperatorMetrics } from '../metrics/metrics.js';
import { startHttpServer } from '../http/server.js';

export interface ManagerOptions {
  logger: Logger;
  metrics: OperatorMetrics;
  identity: string;
  http?: { host: string; port: number };
  /** Absent: this process reconciles without an election (single replica, tests). */
  leaderElection?: {
    store: LeaseStore;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  shutdownGracePeriodMs: number;
  /** True while the apiserver rejects the operator's own credential. */
  credentialRejected?: () => boolean;
}

/**
 * Owns the shared pieces: informers (run on every replica, so a standby is warm), the
 * controllers (run only on the leader), the HTTP endpoints and graceful shutdown.
 */
export class Manager {
  private readonly informers: Informer<KubeObject>[] = [];
  private readonly controllers: Controller[] = [];
  private readonly leaderTasks: Array<(signal: AbortSignal) => Promise<void>> = [];
  /** Aborted when shutdown begins: no new work is taken. */
  private readonly stopping = new AbortController();
  /** Aborted once the work has drained: the election stops and the lease is released. */
  private readonly campaign = new AbortController();
  private server?: Server;
  private elector?: LeaderElector;
  private runningTerm?: Promise<void>;
  private term?: LeadershipTerm;
  private electing?: Promise<void>;
  private started = false;

  constructor(private readonly options: ManagerOptions) {}

  addInformer<T extends KubeObject>(informer: Informer<T>): void {
    this.informers.push(informer as unknown as Informer<KubeObject>);
  }

  addController(controller: Controller): void {
    this.controllers.push(controller);
  }

  /** Work that runs beside the controllers while this replica leads, and stops when `signal` aborts. */
  addLeaderTask(task: (signal: AbortSignal) => Promise<void>): void {
    this.leaderTasks.push(task);
  }

  get cachesSynced(): boolean {
    return this.informers.every((informer) => informer.hasSynced);
  }

  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : this.started;
  }

  readiness(): { ok: boolean; detail: string } {
    if (this.options.credentialRejected?.())
      return {
        ok: false,
        detail:
          "the apiserver rejects the operator's own token (401); waiting for the kubelet to re-issue it",
      };
    if (!this.cachesSynced) return { ok: false, detail: 'caches not synced yet' };
    return { ok: true, detail: this.isLeader ? 'leader' : 'standby' };
  }

  async start(): Promise<void> {
    const { logger, metrics } = this.options;
    if (this.options.http) {
      this.server = await startHttpServer({
        ...this.options.http,
        registry: metrics.registry,
        logger,
        health: { live: () => ({ ok: true, detail: 'running' }), ready: () => this.readiness() },
      });
    }
    for (const informer of this.informers) informer.start();
    await Promise.race([
      Promise.all(this.informers.map((informer) => informer.waitForSync())),
      new Promise((resolve) => this.stopping.signal.addEventListener('abort', resolve, { once: true })),
    ]);
    if (this.stopping.signal.aborted) return;
    logger.info({ informers: this.informers.length }, 'caches synced');
    this.started = true;
    const election = this.options.leaderElection;
    if (!election) {
      metrics.isLeader.set(1);
      this.runningTerm = this.runControllers(unelectedTerm(this.campaign.signal));
      return;
    }
    this.elector = new LeaderElector({
      identity: this.options.identity,
      logger,
      ...election,
      onStartedLeading: (term) => {
        metrics.isLeader.set(1);
        this.runningTerm = this.runControllers(term);
      },
      onStoppedLeading: async () => {
        metrics.isLeader.set(0);
        await this.runningTerm;
      },
      onLeaderChange: (holder) => logger.info({ leader: holder ?? '(none)' }, 'leader changed'),
    });
    this.electing = this.elector.run(this.campaign.signal);
  }

  /**
   * Runs the controllers for one term, inside it: every request their work makes is fenced by it
   * (leadershipFence). They stop taking work when the term ends or shutdown begins; work in flight
   * at shutdown finishes while the lease is still renewed.
   */
  private runControllers(term: LeadershipTerm): Promise<void> {
    this.term = term;
    const stop = AbortSignal.any([term.signal, this.stopping.signal]);
    return runInTerm(term, async () => {
      await Promise.all([
        ...this.controllers.map((controller) => controller.run(stop)),
        ...this.leaderTasks.map((task) => task(stop)),
      ]);
    });
  }

  /**
   * Runs `fn` as part of the current leadership term, if this replica leads (work that an informer's
   * event starts, such as reading the key set again after a watch error): its writes are then the
   * leader's. Outside a valid term it runs without one, and any write it tries is refused.
   */
  inTerm<T>(fn: () => T): T {
    const term = this.term;
    return term?.valid() ? runInTerm(term, fn) : fn();
  }

  /**
   * Stops taking work, lets reconciles finish within the grace period (the lease is renewed
   * meanwhile, so their writes are still made by the leader), then ends the term and releases the
   * lease.
   */
  async shutdown(): Promise<void> {
    const { logger, shutdownGracePeriodMs } = this.options;
    logger.info({ graceMs: shutdownGracePeriodMs }, 'shutting down');
    this.stopping.abort();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), shutdownGracePeriodMs);
    });
    const timedOut = await Promise.race([Promise.resolve(this.runningTerm).then(() => false), grace]);
    if (timedOut) logger.warn('grace period ended with reconciles still running; their term ends now');
    this.campaign.abort();
    await Promise.race([Promise.all([this.electing, this.runningTerm]), grace]);
    clearTimeout(timer);
    await Promise.all(this.informers.map((informer) => informer.stop()));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.options.metrics.isLeader.set(0);
  }
}
