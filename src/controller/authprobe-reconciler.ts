import type { Logger } from 'pino';
import { isSecretSourced, resolveSpec, type ResolvedSpec } from '../api/defaults.js';
import { getCondition } from '../api/conditions.js';
import { ConditionType, eventReasonOf, HealProgress, ProbeReason } from '../api/reasons.js';
import {
  AUTHPROBE_API_VERSION,
  AUTHPROBE_KIND,
  type AuthProbe,
  type AuthProbeStatus,
  type LastProbe,
} from '../api/types.js';
import type { Verdict } from '../api/verdict.js';
import type { CheckKinds, CheckVerdict, TokenCheck } from '../checks/check.js';
import type { EventSink, EventTarget } from '../events/recorder.js';
import type { Healer } from '../heal/healer.js';
import { FINALIZER_HEAL_IN_FLIGHT } from '../heal/intent.js';
import type { KubeApi } from '../kube/client.js';
import { isNotFound } from '../kube/errors.js';
import { apiPaths } from '../kube/resources.js';
import type { OperatorMetrics } from '../metrics/metrics.js';
import type { Reconciler, ReconcileResult } from '../runtime/controller.js';
import { MutationCache } from '../runtime/mutation-cache.js';
import type { RotationSignal } from '../signals/rotation.js';
import { nameRejectionCause, type KeyFacts } from '../signals/rejection-cause.js';
import type { ProbeTrigger } from '../checks/check.js';
import { decideSchedule } from './schedule.js';
import { settle } from './settle.js';
import { outOfScope, type ProbeScope } from './scope.js';
import { statusAfterVerdict, statusWhileProbing } from './status.js';

/** What the reconciler reads AuthProbes from: the informer's cache. */
export interface AuthProbeCache {
  get(key: string): AuthProbe | undefined;
  list(): AuthProbe[];
}

export interface AuthProbeReconcilerDeps {
  client: KubeApi;
  probes: AuthProbeCache;
  /** One strategy per spec.check. */
  checks: CheckKinds;
  recorder: EventSink;
  metrics: OperatorMetrics;
  logger: Logger;
  healer?: Healer;
  rotation?: RotationSignal;
  /** Which AuthProbes are run at all; unset: every one. */
  scope?: ProbeScope;
  /** The apiserver's trusted signing keys: names the cause of a 401 (SigningKeyRetired). */
  keys?: KeyFacts;
  /**
   * An unchanged healthy verdict is written to status at most this often (0 or unset: every check). In
   * between, the check's time is kept in memory for the schedule.
   */
  statusHeartbeatMs?: number;
  now?: () => number;
}

/** A healthy verdict checked again but not written (the heartbeat): what status would have said. */
interface UnwrittenCheck {
  /** The resourceVersion of the AuthProbe this applies to; any other write makes it moot. */
  basedOn: string | undefined;
  lastProbe: LastProbe;
  lastSuccessTime: string | undefined;
  /** status.lastProbe.time as written to the apiserver. */
  writtenTime: string | undefined;
}

/**
 * Reconciles one AuthProbe: resolve the spec → record a check that finished → schedule → run the
 * check → let the healer act on the verdict → record it in status, Events and metrics. How a check
 * is done is its strategy's business (src/checks); each visit moves one step, and time enters
 * through `requeueAfterMs`.
 */
export class AuthProbeReconciler implements Reconciler {
  private readonly written = new MutationCache<AuthProbe>();
  private readonly now: () => number;
  /** AuthProbes whose ServiceAccount changed since their last reconcile (a hint). */
  private readonly changedDependencies = new Set<string>();
  /** AuthProbes whose last checked token is signed by a key the apiserver no longer trusts. */
  private readonly keyRetired = new Marks();
  /** AuthProbes whose ServiceAccount was deleted: whatever their verdict, its tokens are dead now. */
  private readonly accountGone = new Marks();
  private readonly unwritten = new Map<string, UnwrittenCheck>();

  constructor(private readonly deps: AuthProbeReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * The ServiceAccount of these AuthProbes changed (watched by the operator): a
   * settling verdict of theirs is checked again at once instead of after its back-off. A hint only:
   * lost on a restart, when the back-off still brings the re-check.
   */
  dependenciesChanged(keys: readonly string[]): void {
    for (const key of keys) this.changedDependencies.add(key);
  }

  /**
   * The apiserver's trusted keys were read (first read or a change): every AuthProbe whose last checked
   * token carries a key id outside `trusted` is checked at once, whatever its interval. Returns their
   * keys (namespace/name) for the caller to enqueue; those already known to be rejected for that reason
   * are left to their own schedule.
   */
  keysChanged(trusted: ReadonlySet<string>): string[] {
    const affected: string[] = [];
    for (const cached of this.deps.probes.list()) {
      const key = `${cached.metadata.namespace}/${cached.metadata.name}`;
      const probe = this.withUnwritten(key, this.written.newest(key, cached));
      const kid = probe.status?.lastProbe?.tokenKeyID;
      if (kid === undefined || trusted.has(kid)) continue;
      if (probe.status?.lastProbe?.outcome === ProbeReason.SigningKeyRetired) continue;
      this.keyRetired.add(key);
      affected.push(key);
    }
    return affected;
  }

  /** The ServiceAccount of these AuthProbes was deleted: each is checked at once, whatever its verdict. */
  accountDeleted(keys: readonly string[]): void {
    for (const key of keys) this.accountGone.add(key);
  }

  /** The AuthProbes (keys) in `namespace` that name this ServiceAccount. */
  dependents(namespace: string, serviceAccountName: string): string[] {
    return this.deps.probes
      .list()
      .filter((p) => p.metadata.namespace === namespace && p.spec.serviceAccountName === serviceAccountName)
      .map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const cached = this.deps.probes.get(key);
    if (!cached) return this.forget(key);
    try {
      return await this.reconcileProbe(key, cached);
    } catch (err) {
      // Deleted while it was being checked: the cache learns it in a moment; nothing failed.
      if (!(err instanceof AuthProbeDeleted)) throw err;
      this.deps.logger.debug({ authprobe: key }, 'the AuthProbe was deleted before its status was written');
      return this.forget(key);
    }
  }

  /** The AuthProbe is gone: nothing of it is kept (the soak creates and deletes them by the thousand). */
  private async forget(key: string): Promise<ReconcileResult> {
    this.changedDependencies.delete(key);
    this.keyRetired.delete(key);
    this.accountGone.delete(key);
    this.unwritten.delete(key);
    const [namespace = '', name = ''] = key.split('/');
    await this.deps.metrics.forgetProbe(namespace, name);
    this.deps.rotation?.forget(namespace, name);
    this.deps.recorder.forget?.({ kind: AUTHPROBE_KIND, namespace, name });
    this.written.forget(key);
    return { gone: true };
  }

  private async reconcileProbe(key: string, cached: AuthProbe): Promise<ReconcileResult> {
    const probe = this.withUnwritten(key, this.written.newest(key, cached));
    const resolved = resolveSpec(probe.spec);
    if (probe.metadata.deletionTimestamp)
      return this.whileDeleting(probe, resolved.ok ? resolved.spec : undefined);
    if (!resolved.ok) {
      await this.record(probe, undefined, {
        reason: resolved.reason,
        readyStatus: 'False',
        message: resolved.message,
        tokenProvenInvalid: false,
      });
      return {};
    }
    const spec = resolved.spec;
    const excluded = this.deps.scope && this.outOfScope(probe, this.deps.scope);
    if (excluded) {
      await this.record(probe, undefined, excluded);
      // A limit frees up when another AuthProbe goes; look again now and then.
      return excluded.reason === ProbeReason.AuthProbeLimitExceeded ? { requeueAfterMs: 300_000 } : {};
    }
    const check = this.deps.checks[spec.check];

    const seen = check.observe(probe, spec);
    if (seen.kind === 'in-flight') {
      await this.markProbing(probe, seen.message);
      return { requeueAfterMs: seen.recheckInMs };
    }
    if (seen.kind === 'verdict') return this.recordCheck(check, probe, spec, seen, true);
    // A mark is kept until its check is recorded: a reconcile that fails (say, a conflict) tries again.
    for (const [marks, trigger] of [
      [this.keyRetired, 'KeyRetired'],
      [this.accountGone, 'DependencyChanged'],
    ] as const) {
      const mark = marks.get(key);
      if (mark === undefined) continue;
      // A key left the trusted set and this secret's token carries it: the operator's own TokenReview
      // of the token answers at once, where a probe pod would first have to be scheduled and started
      // (on a small cluster, for every AuthProbe at the same moment). The healer confirms as ever; the
      // regular checks stay with spec.check.
      const now = trigger === 'KeyRetired' && isSecretSourced(spec) ? this.deps.checks.TokenReview : check;
      const done = await this.runCheck(now, probe, spec, trigger, true);
      marks.clear(key, mark);
      return done;
    }

    const decision = decideSchedule(
      probe,
      check.lastMark(probe),
      spec.intervalMs,
      this.now(),
      this.changedDependencies.delete(key),
    );
    if (!decision.probeNow) return { requeueAfterMs: decision.inMs };
    return this.runCheck(check, probe, spec, decision.trigger, true);
  }

  private outOfScope(probe: AuthProbe, scope: ProbeScope) {
    const ns = probe.metadata.namespace;
    const sameNamespace =
      scope.maxPerNamespace > 0 ? this.deps.probes.list().filter((p) => p.metadata.namespace === ns) : [];
    return outOfScope(probe, scope, sameNamespace);
  }

  /** Nothing is checked any more; a heal in flight is finished before the finalizer is released. */
  private async whileDeleting(probe: AuthProbe, spec: ResolvedSpec | undefined): Promise<ReconcileResult> {
    const { healer } = this.deps;
    if (!healer || !spec || !probe.metadata.finalizers?.includes(FINALIZER_HEAL_IN_FLIGHT)) return {};
    const done = await healer.finishBeforeDeletion(probe, spec, eventTarget(probe));
    return done ? {} : { requeueAfterMs: 30_000 };
  }

  private async runCheck(
    check: TokenCheck,
    probe: AuthProbe,
    spec: ResolvedSpec,
    trigger: ProbeTrigger,
    mayRepeat: boolean,
  ): Promise<ReconcileResult> {
    const started = await check.start(probe, spec, trigger);
    switch (started.kind) {
      case 'retry':
        return { requeueAfterMs: started.inMs };
      case 'started':
        await this.markProbing(probe, started.message);
        return { requeueAfterMs: started.recheckInMs };
      case 'verdict':
        return this.recordCheck(check, probe, spec, started, mayRepeat);
    }
  }

  /** Records a check's verdict; after a heal the check runs again at once (once), to confirm it. */
  private async recordCheck(
    check: TokenCheck,
    probe: AuthProbe,
    spec: ResolvedSpec,
    found: CheckVerdict,
    mayRepeat: boolean,
  ): Promise<ReconcileResult> {
    const { probe: updated, probeAgainNow } = await this.record(probe, spec, found.verdict, found.durationMs);
    await check.afterRecord?.(updated, spec);
    if (probeAgainNow && mayRepeat) return this.runCheck(check, updated, spec, 'AfterHeal', false);
    if (this.keyRetired.has(`${probe.metadata.namespace}/${probe.metadata.name}`))
      return { requeueAfterMs: 0 };
    if (found.retryInMs !== undefined) return { requeueAfterMs: found.retryInMs };
    const next = decideSchedule(updated, check.lastMark(updated), spec.intervalMs, this.now());
    return { requeueAfterMs: next.probeNow ? 0 : next.inMs };
  }

  /**
   * Records a verdict: the healer first (it may replace the verdict with what it found or did), then
   * status (the source of truth), Events and metrics.
   */
  private async record(
    probe: AuthProbe,
    spec: ResolvedSpec | undefined,
    checked: Verdict,
    durationMs?: number,
  ): Promise<{ probe: AuthProbe; probeAgainNow: boolean }> {
    const { metrics, healer, rotation } = this.deps;
    const ns = probe.metadata.namespace;
    const name = probe.metadata.name;
    let named = nameRejectionCause(checked, this.deps.keys);
    // "Not trusted" is only ever said of the set as it is now: a key added seconds ago (a rotation under
    // way) is not yet in the last poll's set. The healer confirms this cause without waiting.
    if (named.reason === ProbeReason.SigningKeyRetired && this.deps.keys?.refresh) {
      await this.deps.keys.refresh();
      named = nameRejectionCause(checked, this.deps.keys);
    }
    let verdict = named;
    let heals = probe.status?.heals;
    let probeAgainNow = false;
    if (spec) await rotation?.observe(probe, named);
    if (spec && healer) {
      const outcome = await healer.afterVerdict({ probe, spec, verdict, target: eventTarget(probe) });
      // The verdict stays tied to the check it came from, so a pod is never read twice.
      verdict = {
        ...outcome.verdict,
        ...(checked.pod !== undefined || outcome.verdict.pod !== undefined
          ? { pod: outcome.verdict.pod ?? checked.pod }
          : {}),
        ...(checked.probeNow !== undefined ? { probeNow: checked.probeNow } : {}),
        ...(checked.generation !== undefined ? { generation: checked.generation } : {}),
        // Right after a replacement the checked token is gone: its key no longer describes the secret
        // (the check that confirms the heal records the new one).
        ...(outcome.probeAgainNow && outcome.heals?.lastResult === HealProgress.AwaitingProbe
          ? {}
          : tokenKeyOf(checked)),
      };
      heals = outcome.heals ?? heals;
      probeAgainNow = outcome.probeAgainNow;
    }
    const previous = getCondition(probe.status?.conditions, ConditionType.Ready);
    const settled = spec ? settle(probe, verdict, spec.intervalMs, this.now()) : { verdict, inGrace: false };
    const next = statusAfterVerdict(probe, settled.verdict, new Date(this.now()), heals);
    const updated = this.heartbeatSkips(probe, next, heals !== probe.status?.heals || probeAgainNow)
      ? this.keepUnwritten(probe, next)
      : await this.writeStatus(probe, next);

    const ready = verdict.readyStatus === 'True';
    const changed = previous?.reason !== verdict.reason || previous?.status !== settled.verdict.readyStatus;
    // A new AuthProbe whose objects are still being created is not reported as broken (no Warning).
    if ((changed || !ready) && !settled.inGrace) {
      // Repeats of the same failure fold into one Event with a count (see EventRecorder).
      await this.deps.recorder.record(
        eventTarget(probe),
        ready ? 'Normal' : 'Warning',
        eventReasonOf(verdict.reason),
        verdict.message,
      );
    }
    metrics.probes.inc({ namespace: ns, authprobe: name, reason: verdict.reason });
    metrics.authenticated.set({ namespace: ns, authprobe: name }, ready ? 1 : 0);
    if (updated.status?.lastSuccessTime) {
      metrics.lastSuccess.set(
        { namespace: ns, authprobe: name },
        Date.parse(updated.status.lastSuccessTime) / 1000,
      );
    }
    if (spec && durationMs !== undefined) {
      metrics.probeDuration.observe({ source: spec.token.source, check: spec.check }, durationMs / 1000);
    }
    return { probe: updated, probeAgainNow };
  }

  /** Ready=Unknown while the first check runs (nothing is written once a verdict exists). */
  private async markProbing(probe: AuthProbe, message: string): Promise<void> {
    const waiting = statusWhileProbing(probe, message, new Date(this.now()));
    if (waiting) await this.writeStatus(probe, waiting);
  }

  /**
   * Whether this check's status may go unwritten: the verdict is healthy and says what status already
   * says (same reason, generation, identity, signing key, probe-now answer; no heal), and status was
   * written less than the heartbeat ago. A changed verdict is always written at once.
   */
  private heartbeatSkips(probe: AuthProbe, next: AuthProbeStatus, healed: boolean): boolean {
    const heartbeatMs = this.deps.statusHeartbeatMs ?? 0;
    if (heartbeatMs <= 0 || healed || probe.status?.healIntent) return false;
    const before = probe.status;
    const was = getCondition(before?.conditions, ConditionType.Ready);
    const now = getCondition(next.conditions, ConditionType.Ready);
    if (was?.status !== 'True' || now?.status !== 'True' || was.reason !== now.reason) return false;
    if (before?.observedGeneration !== next.observedGeneration) return false;
    const a = before?.lastProbe;
    const b = next.lastProbe;
    if (
      a?.identity !== b?.identity ||
      a?.tokenKeyID !== b?.tokenKeyID ||
      a?.tokenIssuer !== b?.tokenIssuer ||
      a?.probeNow !== b?.probeNow
    ) {
      return false;
    }
    const key = `${probe.metadata.namespace}/${probe.metadata.name}`;
    const writtenTime = this.unwritten.get(key)?.writtenTime ?? a?.time;
    const writtenAt = writtenTime ? Date.parse(writtenTime) : NaN;
    return Number.isFinite(writtenAt) && this.now() - writtenAt < heartbeatMs;
  }

  /** Keeps a check that was not written in memory: the schedule and the pod check read it back. */
  private keepUnwritten(probe: AuthProbe, next: AuthProbeStatus): AuthProbe {
    const key = `${probe.metadata.namespace}/${probe.metadata.name}`;
    const writtenTime = this.unwritten.get(key)?.writtenTime ?? probe.status?.lastProbe?.time;
    const entry: UnwrittenCheck = {
      basedOn: probe.metadata.resourceVersion,
      lastProbe: next.lastProbe ?? {},
      lastSuccessTime: next.lastSuccessTime,
      writtenTime,
    };
    this.unwritten.set(key, entry);
    return this.applyUnwritten(probe, entry);
  }

  /** The AuthProbe with the last unwritten check applied, while nothing else changed it. */
  private withUnwritten(key: string, probe: AuthProbe): AuthProbe {
    const entry = this.unwritten.get(key);
    if (!entry) return probe;
    if (entry.basedOn !== probe.metadata.resourceVersion) {
      this.unwritten.delete(key);
      return probe;
    }
    return this.applyUnwritten(probe, entry);
  }

  private applyUnwritten(probe: AuthProbe, entry: UnwrittenCheck): AuthProbe {
    return {
      ...probe,
      status: {
        ...probe.status,
        lastProbe: entry.lastProbe,
        ...(entry.lastSuccessTime !== undefined ? { lastSuccessTime: entry.lastSuccessTime } : {}),
      },
    };
  }

  private async writeStatus(probe: AuthProbe, status: AuthProbeStatus): Promise<AuthProbe> {
    // A merge patch keeps keys it does not name: a lastProbe without a pod (say) must remove the old one.
    const lastProbe = status.lastProbe && { ...LAST_PROBE_CLEARED, ...status.lastProbe };
    const updated = await this.deps.client
      .mergePatch<AuthProbe>(
        apiPaths.authProbeStatus(probe.metadata.namespace, probe.metadata.name),
        { status: lastProbe ? { ...status, lastProbe } : status },
        { timeoutMs: 15_000 },
      )
      .catch((err: unknown) => {
        throw isNotFound(err) ? new AuthProbeDeleted() : err;
      });
    const key = `${probe.metadata.namespace}/${probe.metadata.name}`;
    this.written.remember(key, updated);
    this.unwritten.delete(key);
    return updated;
  }
}

/** The status write found no AuthProbe of that name: it was deleted. */
class AuthProbeDeleted extends Error {}

/** Every optional field of status.lastProbe, as merge-patch deletions. */
const LAST_PROBE_CLEARED: Record<Exclude<keyof LastProbe, 'time' | 'outcome'>, null> = {
  httpStatus: null,
  latencyMs: null,
  pod: null,
  identity: null,
  message: null,
  probeNow: null,
  tokenKeyID: null,
  tokenIssuer: null,
};

function eventTarget(probe: AuthProbe): EventTarget {
  return {
    apiVersion: AUTHPROBE_API_VERSION,
    kind: AUTHPROBE_KIND,
    name: probe.metadata.name,
    namespace: probe.metadata.namespace,
    uid: probe.metadata.uid,
  };
}

/** The checked token's key id and issuer, carried from the check's verdict to whatever the healer made of it. */
function tokenKeyOf(v: Verdict): Pick<Verdict, 'tokenKeyID' | 'tokenIssuer'> {
  return {
    ...(v.tokenKeyID !== undefined ? { tokenKeyID: v.tokenKeyID } : {}),
    ...(v.tokenIssuer !== undefined ? { tokenIssuer: v.tokenIssuer } : {}),
  };
}

/**
 * AuthProbes marked to be checked at once. A mark stays until a check that began after it was set has
 * been recorded: a reconcile that fails (a conflict, the apiserver restarting) leaves it for the retry,
 * and a mark set again while a check runs is not cleared by that check.
 */
class Marks {
  private readonly marks = new Map<string, number>();
  private next = 0;

  add(key: string): void {
    this.marks.set(key, ++this.next);
  }

  get(key: string): number | undefined {
    return this.marks.get(key);
  }

  has(key: string): boolean {
    return this.marks.has(key);
  }

  /** Clears the mark if it is still the one a check began with. */
  clear(key: string, mark: number): void {
    if (this.marks.get(key) === mark) this.marks.delete(key);
  }

  delete(key: string): void {
    this.marks.delete(key);
  }
}
