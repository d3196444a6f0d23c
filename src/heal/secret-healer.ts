import type { Logger } from 'pino';
import { isSecretSourced } from '../api/defaults.js';
import { EventReason, HealProgress, HealReason, HealResult, type HealKind } from '../api/reasons.js';
import type { AuthProbe } from '../api/types.js';
import type { OperatorConfig } from '../config/config.js';
import type { EventSink } from '../events/recorder.js';
import type { KubeApi } from '../kube/client.js';
import type { SecretJson } from '../kube/resources.js';
import type { OperatorMetrics } from '../metrics/metrics.js';
import { healsInLastHour, HealLedger } from './budget.js';
import { gatherEvidence } from './evidence.js';
import type { Healer, HealInput, HealOutcome } from './healer.js';
import { IntentStore } from './intent.js';
import { decideHeal, type SecretEvidence } from './policy.js';
import type { HealContext, HealProcedure, HealServices, ProcedureResult } from './procedures/procedure.js';
import { RemoveInvalidLabel } from './procedures/remove-invalid-label.js';
import { ReplaceTokenSecret } from './procedures/replace-token-secret.js';
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
  private readonly procedures: Record<HealKind, HealProcedure>;

  constructor(private readonly deps: SecretHealerDeps) {
    this.ledger = new HealLedger(deps.config.healBudgetPerHour);
    this.now = deps.now ?? Date.now;
    this.services = {
      client: deps.client,
      recorder: deps.recorder,
      logger: deps.logger,
      intents: new IntentStore(deps.client),
      now: this.now,
      fillTimeoutMs: deps.fillTimeoutMs ?? 30_000,
    };
    this.replace = new ReplaceTokenSecret(this.services);
    const revalidate = new RemoveInvalidLabel(this.services);
    this.procedures = { [this.replace.kind]: this.replace, [revalidate.kind]: revalidate };
  }

  async afterVerdict(input: HealInput): Promise<HealOutcome> {
    const { probe, spec, target } = input;
    const ctx: HealContext = { probe, spec, target };
    const { recorder } = this.deps;

    const intent = this.services.intents.read(probe);
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
    if (!input.verdict.tokenProvenInvalid) return { verdict: input.verdict, probeAgainNow: false };

    let evidence: SecretEvidence | undefined;
    let secret: SecretJson | undefined;
    if (isSecretSourced(spec)) {
      ({ evidence, secret } = await gatherEvidence(
        this.deps.client,
        probe.metadata.namespace,
        spec.token.secretName,
      ));
    }
    const verdict = withInvalidatedCause(input.verdict, evidence?.invalidSince);
    const now = this.now();
    const decision = decideHeal(spec, verdict, evidence, {
      now,
      probeHealsLastHour: healsInLastHour(probe.status?.heals?.history, now),
      clusterRemaining: this.ledger.clusterRemaining(now),
      backoffUntil: this.ledger.backoffUntil(probe.metadata.uid),
    });
    switch (decision.kind) {
      case 'none':
        return { verdict, probeAgainNow: false };
      case 'report':
        return {
          verdict: { ...verdict, reason: decision.reason, message: decision.message },
          probeAgainNow: false,
        };
      case 'dry-run':
        this.countHeal(probe, decision.action, HealResult.DryRun);
        await recorder.record(target, 'Normal', EventReason.HealDryRun, decision.message);
        return {
          verdict: { ...verdict, message: `${verdict.message} ${decision.message}` },
          probeAgainNow: false,
        };
      case 'rate-limited':
        this.countHeal(probe, decision.action, HealResult.RateLimited);
        return {
          verdict: { ...verdict, reason: HealReason.HealRateLimited, message: decision.message },
          probeAgainNow: false,
        };
      case 'heal':
        break;
    }
    // The check's own verdict is told first, so the Events read in the order things happened.
    await recorder.record(target, 'Warning', verdict.reason, verdict.message);
    await recorder.record(target, 'Normal', EventReason.TokenRejectionConfirmed, decision.message);
    this.ledger.recordAttempt(now);
    // decideHeal only says heal when the evidence came from a secret that exists.
    if (!secret) return { verdict, probeAgainNow: false };
    return this.conclude(ctx, decision.action, await this.procedures[decision.action].begin(ctx, secret));
  }

  /** A procedure's result as status, metrics, budget and (on failure) an Event. */
  private async conclude(ctx: HealContext, kind: HealKind, result: ProcedureResult): Promise<HealOutcome> {
    const { probe } = ctx;
    const now = this.now();
    switch (result.kind) {
      case 'aborted':
        return { verdict: result.verdict, probeAgainNow: true };
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
