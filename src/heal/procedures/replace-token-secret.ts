import {
  EventReason,
  HealAction,
  HealReason,
  ProbeReason,
  withWorkloadsRestarted,
} from '../../api/reasons.js';
import { verdict } from '../../api/verdict.js';
import { failpoint } from '../../faults/failpoint.js';
import { errorMessage, isAlreadyExists, isConflict, isNotFound } from '../../kube/errors.js';
import {
  apiPaths,
  getOrUndefined,
  secretToken,
  serviceAccountUsername,
  type SecretJson,
} from '../../kube/resources.js';
import { reviewToken, type TokenReviewOutcome } from '../../kube/token-review.js';
import { intentFor, replacementSecret, type HealIntent } from '../intent.js';
import { restartConsumers } from '../workloads.js';

/** The tokens controller fills a secret, and the apiserver's cache learns of it, within a few hundred ms. */
const FILL_POLL_MS = 200;
import {
  blocked,
  pollUntil,
  type HealContext,
  type HealProcedure,
  type HealServices,
  type ProcedureResult,
} from './procedure.js';

/**
 * heal.invalidatedLegacyToken Recreate (and every rejected token secret): the stale secret is replaced
 * by a new `kubernetes.io/service-account-token` Secret of the same name, labels and annotations.
 *
 * 1. the intent (metadata only, never the token) is saved before anything changes, so whichever
 *    replica leads next finishes an interrupted heal (`resume`);
 * 2. the delete carries the stale secret's uid and resourceVersion as preconditions: a secret that
 *    changed since the rejection was confirmed is never deleted (HealAborted);
 * 3. the replacement is created, or adopted when someone recreated it first;
 * 4. the tokens controller fills it; a TokenReview confirms the new token is the right account's;
 * 5. optionally, the workloads that consume the secret are rolled.
 */
export class ReplaceTokenSecret implements HealProcedure {
  readonly kind = HealAction.SecretRecreated;

  constructor(private readonly services: HealServices) {}

  async begin(ctx: HealContext, secret: SecretJson): Promise<ProcedureResult> {
    const notNow = await this.mayNotDelete(ctx, secret);
    if (notNow) return notNow;
    const intent = intentFor(secret, ctx.spec.serviceAccountName, new Date(this.services.now()));
    await this.services.intents.save(ctx.probe, intent);
    return this.resume(ctx, intent);
  }

  /**
   * Why the stale secret must not be deleted now, if it must not: it has finalizers (it would stay
   * terminating and block its replacement), or the tokens controller is not proven to fill a
   * replacement (the canary). Asked before the intent is written and again right before the delete.
   */
  private async mayNotDelete(ctx: HealContext, secret: SecretJson): Promise<ProcedureResult | undefined> {
    const finalizers = secret.metadata.finalizers ?? [];
    if (finalizers.length) {
      return blocked(
        `Secret ${secret.metadata.name} carries finalizers (${finalizers.join(', ')}): a delete would leave it terminating ` +
          `until they are removed, and no replacement could be created meanwhile. Nothing was deleted; remove the ` +
          `finalizers or replace the secret by hand.`,
      );
    }
    const alive = await this.services.canary?.check(ctx.startedAt);
    return alive && !alive.ok ? blocked(alive.message) : undefined;
  }

  /** Converges on the intent from any point; safe to run again. The intent is cleared when it ends. */
  async resume(ctx: HealContext, intent: HealIntent): Promise<ProcedureResult> {
    const result = await this.converge(ctx, intent);
    await this.services.intents.clear(ctx.probe);
    if (result.kind === 'healed' && ctx.spec.heal.restartWorkloads) {
      const restarted = await restartConsumers(this.services, ctx, intent.secretName);
      if (restarted.length) return { ...result, action: withWorkloadsRestarted(this.kind) };
    }
    return result;
  }

  private async converge(ctx: HealContext, intent: HealIntent): Promise<ProcedureResult> {
    const { client, recorder, now, fillTimeoutMs } = this.services;
    const ns = ctx.probe.metadata.namespace;
    const path = apiPaths.secret(ns, intent.secretName);
    const read = () => getOrUndefined<SecretJson>(client, path, { timeoutMs: 10_000 });

    let current = await read();
    if (current && current.metadata.uid === intent.staleUid) {
      const notNow = await this.mayNotDelete(ctx, current);
      if (notNow) return notNow;
      failpoint('before-secret-delete');
      try {
        await client.delete(
          path,
          {
            apiVersion: 'v1',
            kind: 'DeleteOptions',
            preconditions: { uid: intent.staleUid, resourceVersion: intent.staleResourceVersion },
          },
          { timeoutMs: 15_000 },
        );
        await recorder.record(
          ctx.target,
          'Normal',
          EventReason.SecretDeleted,
          `Deleted stale token secret ${intent.secretName} (uid ${intent.staleUid}).`,
        );
        failpoint('after-secret-delete');
      } catch (err) {
        if (isConflict(err)) {
          // The secret changed after the rejection was confirmed: someone else is acting on it.
          await recorder.record(
            ctx.target,
            'Warning',
            EventReason.HealAborted,
            `Secret ${intent.secretName} changed after the rejection was confirmed; it was not deleted. Probing again.`,
          );
          return {
            kind: 'aborted',
            verdict: verdict(
              ProbeReason.ProbePending,
              'Unknown',
              `Secret ${intent.secretName} changed during the heal; probing again.`,
            ),
          };
        }
        if (!isNotFound(err)) throw err;
      }
      current = undefined;
    }
    if (!current) {
      try {
        current = await client.post<SecretJson>(
          apiPaths.secrets(ns),
          replacementSecret(intent, ns, new Date(now())),
          { timeoutMs: 15_000 },
        );
        await recorder.record(
          ctx.target,
          'Normal',
          EventReason.SecretRecreated,
          `Created secret ${intent.secretName} for ServiceAccount ${intent.serviceAccountName}; waiting for kube-controller-manager to issue its token.`,
        );
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        // A cluster (or person) that recreates token secrets itself got there first: adopt theirs.
        current = await read();
        await recorder.record(
          ctx.target,
          'Normal',
          EventReason.SecretAdopted,
          `Secret ${intent.secretName} was recreated by someone else; using it.`,
        );
      }
    }
    if (!current) {
      return {
        kind: 'failed',
        message: `Secret ${intent.secretName} disappeared while it was being replaced.`,
      };
    }

    const token = await pollUntil(
      now,
      now() + fillTimeoutMs,
      async () => {
        const filled = await read();
        return filled && secretToken(filled);
      },
      FILL_POLL_MS,
    );
    if (!token) {
      return {
        kind: 'failed',
        message: `Secret ${intent.secretName} was recreated but kube-controller-manager did not issue a token within ${Math.round(fillTimeoutMs / 1000)}s. Check that its tokens controller runs (--service-account-private-key-file) and that ServiceAccount ${intent.serviceAccountName} exists.`,
      };
    }
    const expected = serviceAccountUsername(ns, intent.serviceAccountName);
    let review: TokenReviewOutcome;
    try {
      review = await this.reviewUntilAccepted(token);
    } catch (err) {
      return {
        kind: 'failed',
        message: `The new token in secret ${intent.secretName} could not be checked with a TokenReview: ${errorMessage(err)}`,
      };
    }
    if (!review.authenticated || review.username !== expected) {
      return {
        kind: 'failed',
        message: `The new token in secret ${intent.secretName} does not authenticate as ${expected} (TokenReview: ${review.authenticated ? review.username : 'rejected'}).`,
      };
    }
    await recorder.record(
      ctx.target,
      'Normal',
      EventReason.TokenIssued,
      `Secret ${intent.secretName} holds a new token that authenticates as ${expected} (TokenReview).`,
    );
    this.services.logger.info(
      { authprobe: `${ns}/${ctx.probe.metadata.name}`, secret: intent.secretName },
      'token secret replaced',
    );
    return {
      kind: 'healed',
      action: HealAction.SecretRecreated,
      verdict: {
        ...verdict(
          HealReason.Healed,
          'True',
          `Secret ${intent.secretName} was replaced after the apiserver rejected its token; the new token authenticates as ${expected}. Another check confirms it now.`,
        ),
        identity: expected,
      },
    };
  }

  /**
   * The apiserver checks a legacy token against its own cache of Secrets, which learns of a just
   * created secret a moment later; until then the new token is rejected. So a rejection of a
   * brand-new token is retried for a few seconds before it counts.
   */
  private async reviewUntilAccepted(token: string): Promise<TokenReviewOutcome> {
    const { client, now, fillTimeoutMs } = this.services;
    let last: TokenReviewOutcome = { authenticated: false };
    const accepted = await pollUntil(
      now,
      now() + fillTimeoutMs / 2,
      async () => {
        last = await reviewToken(client, token);
        return last.authenticated ? last : undefined;
      },
      FILL_POLL_MS,
    );
    return accepted ?? last;
  }
}
