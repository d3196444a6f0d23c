import type { Logger } from 'pino';
import { isSecretSourced, type ResolvedSpec } from '../api/defaults.js';
import {
  EventReason,
  eventReasonOf,
  HealAction,
  HealProgress,
  HealReason,
  HealResult,
  ProbeReason,
  type HealKind,
} from '../api/reasons.js';
import type { AuthProbe } from '../api/types.js';
import type { Verdict } from '../api/verdict.js';
import type { OperatorConfig } from '../config/config.js';
import type { EventSink, EventTarget } from '../events/recorder.js';
import type { KubeApi } from '../kube/client.js';
import type { SecretJson } from '../kube/resources.js';
import type { OperatorMetrics } from '../metrics/metrics.js';
import { healsInLastHour, HealLedger } from './budget.js';
import type { LedgerStore } from './ledger-store.js';
import { gatherEvidence } from './evidence.js';
import type { Healer, HealInput, HealOutcome } from './healer.js';
import { ANNOTATION_HEAL_INTENT, IntentStore, intentMismatch, type HealIntent } from './intent.js';
import { decideByPolicy, decideHeal, type HealDecision, type SecretEvidence } from './policy.js';
import type { HealContext, HealProcedure, HealServices, ProcedureResult } from './procedures/procedure.js';
import { RemoveInvalidLabel } from './procedures/remove-invalid-label.js';
import { ReplaceTokenSecret } from './procedures/replace-token-secret.js';
import { RewriteCopy, type CopyRecheck } from './procedures/rewrite-copy.js';
import {
  confirmationMessage,
  confirmHeal,
  healFailedVerdict,
  healStatusAfter,
  withInvalidatedCause,
} from './rewrites.js';

export interface SecretHealerDeps {
  client: KubeApi;
  recorder: EventSink;
  metrics: Pick<OperatorMetrics, 'heals'>;
  logger: Logger;
  config: Pick<OperatorConfig, 'healBudgetPerHour'>;
  now?: () => number;
  /** How long to wait for the tokens controller to fill a new secret. */
  fillTimeoutMs?: number;
  /** Proof that the tokens controller works, asked before a delete (src/heal/canary.ts). */
  canary?: HealServices['canary'];
  /** How far apart the two reviews that confirm a rejection are (see gatherEvidence); 2 s by default. */
  reconfirmAfterMs?: number;
  /** Where heal attempts outlive the process (src/heal/ledger-store.ts); in memory only when unset. */
  ledgerStore?: LedgerStore;
  /** check Copy: the copy check, run again to confirm a rejection and the new token. Unset: copies are never written. */
  recheckCopy?: CopyRecheck;
}

/**
 * Heals secret-sourced tokens that are proven invalid. It asks, in order: is a heal of this AuthProbe
 * in flight (finish it)? does this verdict confirm the last heal? is the token proven invalid, and
 * does the evidence (a fresh read of the secret and a TokenReview of its current token) and the
 * policy (src/heal/policy.ts) allow a heal? Then one procedure does it; every step is an Event, so
 * `kubectl describe authprobe` tells the story in order.
 */
export class SecretHealer implements Healer {
  private readonly ledger: HealLedger;
  private readonly now: () => number;
  private readonly services: HealServices;
  private readonly replace: ReplaceTokenSecret;
  private readonly procedures: Partial<Record<HealKind, HealProcedure>>;
  private readonly copies: RewriteCopy | undefined;

  constructor(private readonly deps: SecretHealerDeps) {
    this.ledger = new HealLedger(deps.config.healBudgetPerHour, deps.ledgerStore);
    this.now = deps.now ?? Date.now;
    this.services = {
      client: deps.client,
      recorder: deps.recorder,
      logger: deps.logger,
      intents: new IntentStore(deps.client),
      now: this.now,
      fillTimeoutMs: deps.fillTimeoutMs ?? 30_000,
      ...(deps.canary ? { canary: deps.canary } : {}),
    };
    this.replace = new ReplaceTokenSecret(this.services);
    const revalidate = new RemoveInvalidLabel(this.services);
    this.procedures = { [this.replace.kind]: this.replace, [revalidate.kind]: revalidate };
    this.copies = deps.recheckCopy
      ? new RewriteCopy(this.services, deps.recheckCopy, deps.reconfirmAfterMs ?? 2_000)
      : undefined;
  }

  async afterVerdict(input: HealInput): Promise<HealOutcome> {
    const { probe, spec, target } = input;
    const ctx: HealContext = { probe, spec, target };
    const { recorder } = this.deps;

    if (probe.metadata.annotations?.[ANNOTATION_HEAL_INTENT] !== undefined) {
      await recorder.record(
        target,
        'Warning',
        EventReason.HealIntentIgnored,
        `The annotation ${ANNOTATION_HEAL_INTENT} is ignored: a heal in flight is kept only in status, which namespace users cannot write. Remove the annotation.`,
      );
    }
    const intent = await this.trustedIntent(ctx);
    if (intent) {
      await recorder.record(
        target,
        'Normal',
        EventReason.HealResumed,
        `Resuming the replacement of secret ${intent.secretName} started at ${intent.startedAt} (the operator stopped mid-heal).`,
      );
      return this.conclude(ctx, this.replace.kind, await this.replace.resume(ctx, intent));
    }

    const confirmed = confirmHeal(input.verdict, probe.status?.heals);
    if (confirmed) {
      await recorder.record(target, 'Normal', EventReason.HealConfirmed, confirmationMessage(input.verdict));
      return { ...confirmed, probeAgainNow: false };
    }
    if (spec.check === 'Copy') return this.afterCopyVerdict(ctx, input.verdict);
    if (!input.verdict.tokenProvenInvalid) return { verdict: input.verdict, probeAgainNow: false };

    let evidence: SecretEvidence | undefined;
    let secret: SecretJson | undefined;
    ctx.startedAt = this.now();
    if (isSecretSourced(spec)) {
      ({ evidence, secret } = await gatherEvidence(
        this.deps.client,
        probe.metadata.namespace,
        spec.token.secretName,
        spec.serviceAccountName,
        // A token signed by a key the apiserver does not publish (checked against the set just read) is
        // rejected for that reason alone, not because the apiserver's secret cache lags: no second look.
        input.verdict.reason === ProbeReason.SigningKeyRetired ? 0 : this.deps.reconfirmAfterMs,
      ));
    }
    const verdict = withInvalidatedCause(input.verdict, evidence?.invalidSince);
    const now = this.now();
    const secretKey = isSecretSourced(spec)
      ? `${probe.metadata.namespace}/${spec.token.secretName}`
      : undefined;
    await this.ledger.ready(now);
    const decision = decideHeal(spec, verdict, evidence, {
      now,
      // The secret's own history counts too: it survives the AuthProbe being deleted and recreated.
      probeHealsLastHour: Math.max(
        healsInLastHour(probe.status?.heals?.history, now),
        secretKey ? this.ledger.secretHealsLastHour(secretKey, now) : 0,
      ),
      clusterRemaining: this.ledger.clusterRemaining(now),
      backoffUntil: this.ledger.backoffUntil(probe.metadata.uid),
    });
    if (decision.kind !== 'heal') return this.notHealing(ctx, verdict, decision);
    // The check's own verdict is told first, so the Events read in the order things happened.
    await recorder.record(target, 'Warning', eventReasonOf(verdict.reason), verdict.message);
    await recorder.record(target, 'Normal', EventReason.TokenRejectionConfirmed, decision.message);
    if (secretKey) await this.ledger.recordAttempt(now, secretKey);
    // decideHeal only says heal when the evidence came from a secret that exists.
    if (!secret) return { verdict, probeAgainNow: false };
    const procedure = this.procedures[decision.action];
    if (!procedure) return { verdict, probeAgainNow: false };
    const result = await procedure.begin(ctx, secret);
    if (result.kind === 'blocked' && secretKey) await this.ledger.cancelAttempt(now, secretKey);
    return this.conclude(ctx, decision.action, result);
  }

  /**
   * check Copy: a copy proven rejected is rewritten with a new token (after a second check confirms the
   * rejection, and the policy and budgets allow it); a working copy minted with an expiry is renewed at
   * half its lifetime, and an expiry that cannot be renewed is warned about.
   */
  private async afterCopyVerdict(ctx: HealContext, verdict: Verdict): Promise<HealOutcome> {
    const { probe, spec, target } = ctx;
    const { recorder } = this.deps;
    const copies = this.copies;
    const copy = spec.copy;
    if (!copies || !copy) return { verdict, probeAgainNow: false };
    const now = this.now();
    if (!verdict.tokenProvenInvalid) {
      if (verdict.readyStatus !== 'True' || verdict.renewAt === undefined || verdict.renewAt > now)
        return { verdict, probeAgainNow: false };
      if (spec.heal.policy !== 'Auto') return { verdict, probeAgainNow: false };
      const fresh = await copies.recheckFresh(ctx);
      const result = fresh ? await copies.begin(ctx, fresh, 'renewal') : undefined;
      if (result?.kind === 'healed') return { verdict: result.verdict, probeAgainNow: false };
      const why = result
        ? 'message' in result
          ? result.message
          : result.verdict.message
        : 'the copy could not be read again';
      await recorder.record(
        target,
        'Warning',
        EventReason.CopyRenewalFailed,
        `The token in secret ${copy.secretName} is due for renewal and could not be renewed (${why}); consumers fail once it expires. The operator tries again at the next check.`,
      );
      return { verdict, probeAgainNow: false };
    }
    const key = `copy:${probe.metadata.namespace}/${copy.secretName}`;
    await this.ledger.ready(now);
    const decision = decideByPolicy(
      spec,
      verdict,
      HealAction.CopyRewritten,
      `write a new token of ${probe.metadata.namespace}/${spec.serviceAccountName} into secret ${copy.secretName}, changing nothing else`,
      {
        now,
        probeHealsLastHour: Math.max(
          healsInLastHour(probe.status?.heals?.history, now),
          this.ledger.secretHealsLastHour(key, now),
        ),
        clusterRemaining: this.ledger.clusterRemaining(now),
        backoffUntil: this.ledger.backoffUntil(probe.metadata.uid),
      },
    );
    if (decision.kind !== 'heal') return this.notHealing(ctx, verdict, decision);
    const confirmed = await copies.confirm(ctx);
    if (!confirmed.ok) {
      // The second check did not reject the copy: nothing is written; its verdict stands.
      return { verdict: confirmed.verdict, probeAgainNow: false };
    }
    await recorder.record(target, 'Warning', eventReasonOf(verdict.reason), verdict.message);
    await recorder.record(
      target,
      'Normal',
      EventReason.TokenRejectionConfirmed,
      `A second check of the copy a few seconds later was rejected too; about to ${decision.message.replace(/^.*about to /, '')}`,
    );
    await this.ledger.recordAttempt(now, key);
    const result = await copies.begin(ctx, confirmed.found, 'rejected');
    if (result.kind === 'blocked') await this.ledger.cancelAttempt(now, key);
    return this.conclude(ctx, HealAction.CopyRewritten, result);
  }

  /** What a decision other than "heal" comes to: nothing, a report, a dry run or a rate limit. */
  private async notHealing(
    ctx: HealContext,
    verdict: Verdict,
    decision: Exclude<HealDecision, { kind: 'heal' }>,
  ): Promise<HealOutcome> {
    switch (decision.kind) {
      case 'none':
        return { verdict, probeAgainNow: false };
      case 'report':
        return {
          verdict: { ...verdict, reason: decision.reason, message: decision.message },
          probeAgainNow: false,
        };
      case 'dry-run':
        this.countHeal(ctx.probe, decision.action, HealResult.DryRun);
        await this.deps.recorder.record(ctx.target, 'Normal', EventReason.HealDryRun, decision.message);
        return {
          verdict: { ...verdict, message: `${verdict.message} ${decision.message}` },
          probeAgainNow: false,
        };
      case 'rate-limited':
        this.countHeal(ctx.probe, decision.action, HealResult.RateLimited);
        return {
          verdict: { ...verdict, reason: HealReason.HealRateLimited, message: decision.message },
          probeAgainNow: false,
        };
    }
  }

  /**
   * The intent in status, when the spec backs it; one that does not (written by someone else with
   * rights on authprobes/status, or left from an older spec) is reported, cleared and never acted on.
   */
  private async trustedIntent(ctx: HealContext): Promise<HealIntent | undefined> {
    const intent = this.services.intents.read(ctx.probe);
    if (!intent) return undefined;
    const mismatch = intentMismatch(intent, ctx.spec);
    if (!mismatch) return intent;
    await this.deps.recorder.record(
      ctx.target,
      'Warning',
      EventReason.HealIntentIgnored,
      `status.healIntent is ignored and cleared: ${mismatch}. Nothing was deleted or created for it.`,
    );
    await this.services.intents.clear(ctx.probe);
    return undefined;
  }

  /**
   * An AuthProbe deleted while a heal is in flight: the heal is finished first (the replacement
   * created and filled), so the secret is never left deleted; then the finalizer goes. Returns false
   * while it could not finish (the caller retries; the finalizer keeps the AuthProbe until then).
   */
  async finishBeforeDeletion(probe: AuthProbe, spec: ResolvedSpec, target: EventTarget): Promise<boolean> {
    const ctx: HealContext = { probe, spec, target };
    const intent = await this.trustedIntent(ctx);
    if (!intent) {
      await this.services.intents.setFinalizer(probe, false);
      return true;
    }
    await this.deps.recorder.record(
      target,
      'Normal',
      EventReason.HealResumed,
      `The AuthProbe is being deleted during the replacement of secret ${intent.secretName}: finishing it first so the secret is not left deleted.`,
    );
    const outcome = await this.conclude(ctx, this.replace.kind, await this.replace.resume(ctx, intent));
    return outcome.verdict.reason !== HealReason.HealFailed;
  }

  /** A procedure's result as status, metrics, budget and (on failure) an Event. */
  private async conclude(ctx: HealContext, kind: HealKind, result: ProcedureResult): Promise<HealOutcome> {
    const { probe } = ctx;
    const now = this.now();
    switch (result.kind) {
      case 'aborted':
        return { verdict: result.verdict, probeAgainNow: true };
      case 'blocked':
        this.countHeal(probe, kind, HealResult.Blocked);
        return { verdict: result.verdict, probeAgainNow: false };
      case 'failed':
        this.ledger.recordFailure(probe.metadata.uid, now);
        this.countHeal(probe, kind, HealResult.Failed);
        await this.deps.recorder.record(ctx.target, 'Warning', HealReason.HealFailed, result.message);
        return {
          verdict: healFailedVerdict(result.message),
          heals: healStatusAfter(probe.status?.heals, kind, HealProgress.Failed, now),
          probeAgainNow: false,
        };
      case 'healed':
        this.ledger.recordSuccess(probe.metadata.uid);
        this.countHeal(probe, kind, HealResult.Succeeded);
        return {
          verdict: result.verdict,
          heals: healStatusAfter(probe.status?.heals, result.action, HealProgress.AwaitingProbe, now),
          probeAgainNow: true,
        };
    }
  }

  private countHeal(probe: AuthProbe, action: HealKind, result: HealResult): void {
    this.deps.metrics.heals.inc({
      namespace: probe.metadata.namespace,
      authprobe: probe.metadata.name,
      action,
      result,
    });
  }
}
