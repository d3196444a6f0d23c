import type { Logger } from 'pino';
import { HealAction, HealReason, ProbeReason } from '../api/reasons.js';
import { LABEL_LEGACY_TOKEN_INVALID_SINCE } from '../api/labels.js';
import { toApiTime } from '../api/conditions.js';
import {
  AUTHPROBE_GROUP,
  AUTHPROBE_PLURAL,
  AUTHPROBE_VERSION,
  type AuthProbe,
  type HealStatus,
} from '../api/types.js';
import type { ResolvedSpec } from '../api/defaults.js';
import type { OperatorConfig } from '../config/config.js';
import type { EventRecorder, EventTarget } from '../events/recorder.js';
import { isAlreadyExists, isConflict, isNotFound, KubeApiError, type KubeClient } from '../kube/client.js';
import { reviewToken, secretToken, type TokenReviewOutcome } from '../kube/token-review.js';
import type { OperatorMetrics } from '../metrics/metrics.js';
import type { Verdict } from '../controller/status.js';
import { describeError } from '../runtime/informer.js';
import { failpoint } from '../runtime/failpoint.js';
import { appendHistory, healsInLastHour, HealLedger } from './budget.js';
import type { Healer, HealInput, HealOutcome } from './healer.js';
import { decideHeal, type SecretEvidence } from './policy.js';
import {
  ANNOTATION_HEAL_INTENT,
  intentFor,
  parseIntent,
  replacementSecret,
  type HealIntent,
  type SecretJson,
} from './replacement.js';
import { RotationDetector } from './rotation.js';
import { consumesSecret, restartPatch, WORKLOAD_KINDS, type WorkloadJson } from './workloads.js';

export interface SecretHealerDeps {
  client: KubeClient;
  recorder: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  config: Pick<
    OperatorConfig,
    | 'healBudgetPerHour'
    | 'rotationSuspectNamespaces'
    | 'rotationSuspectWindowMs'
    | 'operatorNamespace'
    | 'identity'
  >;
  now?: () => number;
  /** How long to wait for the tokens controller to fill a new secret. */
  fillTimeoutMs?: number;
}

/** heals.lastResult after a replacement, until a probe pod confirms the new token. */
const AWAITING_PROBE = 'AwaitingProbe';

const serviceAccountUser = (namespace: string, sa: string): string =>
  `system:serviceaccount:${namespace}:${sa}`;

/**
 * Heals secret-sourced tokens that are proven invalid. Every step is preceded by a check and
 * followed by an Event, so `kubectl describe authprobe` tells the story in order. The intent is
 * written on the AuthProbe before the secret is deleted; whichever replica leads next finishes it.
 */
export class SecretHealer implements Healer {
  private readonly ledger: HealLedger;
  private readonly rotation: RotationDetector;
  private readonly now: () => number;

  constructor(private readonly deps: SecretHealerDeps) {
    this.ledger = new HealLedger(deps.config.healBudgetPerHour);
    this.rotation = new RotationDetector(
      deps.config.rotationSuspectNamespaces,
      deps.config.rotationSuspectWindowMs,
    );
    this.now = deps.now ?? Date.now;
  }

  async afterVerdict(input: HealInput): Promise<HealOutcome> {
    const { probe, spec, target } = input;
    let verdict = input.verdict;
    const intent = parseIntent(probe.metadata.annotations?.[ANNOTATION_HEAL_INTENT]);
    if (intent) {
      await this.deps.recorder.record(
        target,
        'Normal',
        'HealResumed',
        `Resuming the replacement of secret ${intent.secretName} started at ${intent.startedAt} (the operator stopped mid-heal).`,
      );
      return this.completeReplacement(probe, spec, intent, target);
    }
    await this.trackRotation(probe, verdict);
    if (verdict.readyStatus === 'True' && probe.status?.heals?.lastResult === AWAITING_PROBE) {
      await this.deps.recorder.record(
        target,
        'Normal',
        'HealConfirmed',
        `${verdict.pod ? `Probe pod ${verdict.pod}` : 'A TokenReview check'} authenticated with the replaced token: the heal is confirmed.`,
      );
      return {
        verdict: {
          ...verdict,
          reason: HealReason.Healed,
          message: `${verdict.message} The token was replaced at ${probe.status.heals.lastTime ?? ''} and ${verdict.pod ? 'a probe pod' : 'a TokenReview'} confirmed it.`,
        },
        heals: { ...probe.status.heals, lastResult: 'Confirmed' },
        probeAgainNow: false,
      };
    }
    if (!verdict.tokenProvenInvalid) return { verdict, probeAgainNow: false };

    const { evidence, secret } = spec.token.source === 'Secret' ? await this.gatherEvidence(probe, spec) : {};
    if (evidence?.invalidSince !== undefined && verdict.reason === ProbeReason.TokenRejected) {
      verdict = {
        ...verdict,
        reason: ProbeReason.TokenInvalidated,
        message: `${verdict.message} The secret carries ${LABEL_LEGACY_TOKEN_INVALID_SINCE}=${evidence.invalidSince}.`,
      };
    }
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
        this.countHeal(probe, decision.action, 'dry-run');
        await this.deps.recorder.record(target, 'Normal', HealReason.HealDryRun, decision.message);
        return {
          verdict: { ...verdict, message: `${verdict.message} ${decision.message}` },
          probeAgainNow: false,
        };
      case 'rate-limited':
        this.countHeal(probe, decision.action, 'rate-limited');
        return {
          verdict: {
            ...verdict,
            reason: HealReason.HealRateLimited,
            message: decision.message,
          },
          probeAgainNow: false,
        };
      case 'heal':
        break;
    }
    // The probe's own verdict is told first, so the Events read in the order things happened.
    await this.deps.recorder.record(target, 'Warning', verdict.reason, verdict.message);
    await this.deps.recorder.record(target, 'Normal', 'TokenRejectionConfirmed', decision.message);
    this.ledger.recordAttempt(now);
    // The secret whose token TokenReview just rejected: its uid and resourceVersion become the
    // preconditions, so a secret changed since then is never touched.
    if (!secret) return { verdict, probeAgainNow: false };
    if (decision.action === 'RemoveInvalidLabel') return this.revalidate(probe, secret, target);
    const newIntent = intentFor(secret, spec.serviceAccountName, new Date(now));
    await this.patchProbeAnnotation(probe, JSON.stringify(newIntent));
    return this.completeReplacement(probe, spec, newIntent, target);
  }

  /** Read-only evidence: does the secret exist, is it labelled invalid, what does TokenReview say. */
  private async gatherEvidence(
    probe: AuthProbe,
    spec: ResolvedSpec,
  ): Promise<{ evidence: SecretEvidence; secret?: SecretJson }> {
    const secret = await this.readSecret(probe.metadata.namespace, spec.token.secretName as string);
    if (!secret)
      return { evidence: { exists: false, review: 'review-failed', reviewError: 'the secret is gone' } };
    const invalidSince = secret.metadata.labels?.[LABEL_LEGACY_TOKEN_INVALID_SINCE];
    const token = secretToken(secret);
    if (!token) return { evidence: { exists: true, invalidSince, review: 'no-token' }, secret };
    try {
      const review = await reviewToken(this.deps.client, token);
      const evidence: SecretEvidence = review.authenticated
        ? { exists: true, invalidSince, review: 'authenticated', reviewedAs: review.username }
        : { exists: true, invalidSince, review: 'rejected' };
      return { evidence, secret };
    } catch (err) {
      return {
        evidence: {
          exists: true,
          invalidSince,
          review: 'review-failed',
          reviewError: describeError(err).message,
        },
        secret,
      };
    }
  }

  /**
   * Converges on the intent: the stale secret (that uid, that resourceVersion) deleted, a
   * replacement created, filled by the tokens controller and accepted by TokenReview. Safe to run
   * again from any point.
   */
  private async completeReplacement(
    probe: AuthProbe,
    spec: ResolvedSpec,
    intent: HealIntent,
    target: EventTarget,
  ): Promise<HealOutcome> {
    const { client, recorder, logger } = this.deps;
    const ns = probe.metadata.namespace;
    const path = `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(intent.secretName)}`;
    const fail = async (message: string): Promise<HealOutcome> => {
      this.ledger.recordFailure(probe.metadata.uid, this.now());
      this.countHeal(probe, HealAction.SecretRecreated, 'failed');
      await recorder.record(target, 'Warning', HealReason.HealFailed, message);
      await this.patchProbeAnnotation(probe, null);
      return {
        verdict: {
          reason: HealReason.HealFailed,
          readyStatus: 'False',
          tokenProvenInvalid: false,
          message,
        },
        heals: this.healStatus(probe, HealAction.SecretRecreated, 'Failed'),
        probeAgainNow: false,
      };
    };

    let current = await this.readSecret(ns, intent.secretName);
    if (current && current.metadata.uid === intent.staleUid) {
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
          target,
          'Normal',
          'SecretDeleted',
          `Deleted stale token secret ${intent.secretName} (uid ${intent.staleUid}).`,
        );
        failpoint('after-secret-delete');
      } catch (err) {
        if (isConflict(err)) {
          // The secret changed after the rejection was confirmed: someone else is acting on it.
          await this.patchProbeAnnotation(probe, null);
          await recorder.record(
            target,
            'Warning',
            'HealAborted',
            `Secret ${intent.secretName} changed after the rejection was confirmed; it was not deleted. Probing again.`,
          );
          return {
            verdict: {
              reason: ProbeReason.ProbePending,
              readyStatus: 'Unknown',
              tokenProvenInvalid: false,
              message: `Secret ${intent.secretName} changed during the heal; probing again.`,
            },
            probeAgainNow: true,
          };
        }
        if (!isNotFound(err)) throw err;
      }
      current = undefined;
    }
    if (!current) {
      try {
        current = await client.post<SecretJson>(
          `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets`,
          replacementSecret(intent, ns, new Date(this.now())),
          { timeoutMs: 15_000 },
        );
        await recorder.record(
          target,
          'Normal',
          'SecretRecreated',
          `Created secret ${intent.secretName} for ServiceAccount ${intent.serviceAccountName}; waiting for kube-controller-manager to issue its token.`,
        );
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        // A cluster (or person) that recreates token secrets itself got there first: adopt theirs.
        current = await this.readSecret(ns, intent.secretName);
        await recorder.record(
          target,
          'Normal',
          'SecretAdopted',
          `Secret ${intent.secretName} was recreated by someone else; using it.`,
        );
      }
    }
    if (!current) return fail(`Secret ${intent.secretName} disappeared while it was being replaced.`);

    const token = await this.waitForToken(ns, intent.secretName);
    if (!token) {
      return fail(
        `Secret ${intent.secretName} was recreated but kube-controller-manager did not issue a token within ${Math.round((this.deps.fillTimeoutMs ?? 30_000) / 1000)}s. Check that its tokens controller runs (--service-account-private-key-file) and that ServiceAccount ${intent.serviceAccountName} exists.`,
      );
    }
    const expected = serviceAccountUser(ns, intent.serviceAccountName);
    let review;
    try {
      review = await this.reviewUntilAccepted(token);
    } catch (err) {
      return fail(
        `The new token in secret ${intent.secretName} could not be checked with a TokenReview: ${describeError(err).message}`,
      );
    }
    if (!review.authenticated || review.username !== expected) {
      return fail(
        `The new token in secret ${intent.secretName} does not authenticate as ${expected} (TokenReview: ${review.authenticated ? review.username : 'rejected'}).`,
      );
    }
    await recorder.record(
      target,
      'Normal',
      'TokenIssued',
      `Secret ${intent.secretName} holds a new token that authenticates as ${expected} (TokenReview).`,
    );
    await this.patchProbeAnnotation(probe, null);
    this.ledger.recordSuccess(probe.metadata.uid);
    this.countHeal(probe, HealAction.SecretRecreated, 'succeeded');
    let action: string = HealAction.SecretRecreated;
    if (spec.heal.restartWorkloads) {
      const restarted = await this.restartConsumers(ns, intent.secretName, target);
      if (restarted.length) action = `${HealAction.SecretRecreated}+${HealAction.WorkloadsRestarted}`;
    }
    logger.info(
      { authprobe: `${ns}/${probe.metadata.name}`, secret: intent.secretName },
      'token secret replaced',
    );
    return {
      verdict: {
        reason: HealReason.Healed,
        readyStatus: 'True',
        tokenProvenInvalid: false,
        identity: expected,
        message: `Secret ${intent.secretName} was replaced after the apiserver rejected its token; the new token authenticates as ${expected}. A new probe pod confirms it now.`,
      },
      heals: this.healStatus(probe, action, AWAITING_PROBE),
      probeAgainNow: true,
    };
  }

  /** Revalidate: remove the legacy cleaner's label (with a resourceVersion precondition). */
  private async revalidate(probe: AuthProbe, secret: SecretJson, target: EventTarget): Promise<HealOutcome> {
    const ns = probe.metadata.namespace;
    const name = secret.metadata.name;
    await this.deps.client.mergePatch(
      `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(name)}`,
      {
        metadata: {
          resourceVersion: secret.metadata.resourceVersion,
          labels: { [LABEL_LEGACY_TOKEN_INVALID_SINCE]: null },
        },
      },
    );
    await this.deps.recorder.record(
      target,
      'Normal',
      'TokenRevalidated',
      `Removed ${LABEL_LEGACY_TOKEN_INVALID_SINCE} from secret ${name}; the apiserver accepts its token again.`,
    );
    this.countHeal(probe, HealAction.LabelRemoved, 'succeeded');
    return {
      verdict: {
        reason: HealReason.Healed,
        readyStatus: 'True',
        tokenProvenInvalid: false,
        message: `Removed ${LABEL_LEGACY_TOKEN_INVALID_SINCE} from secret ${name}. A new probe pod confirms it now.`,
      },
      heals: this.healStatus(probe, HealAction.LabelRemoved, AWAITING_PROBE),
      probeAgainNow: true,
    };
  }

  private async restartConsumers(ns: string, secretName: string, target: EventTarget): Promise<string[]> {
    const restarted: string[] = [];
    for (const { kind, path } of WORKLOAD_KINDS) {
      const base = `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/${path}`;
      const list = await this.deps.client.get<{ items: WorkloadJson[] }>(base, { timeoutMs: 15_000 });
      for (const workload of list.items.filter((w) => consumesSecret(w, secretName))) {
        await this.deps.client.mergePatch(
          `${base}/${encodeURIComponent(workload.metadata.name)}`,
          restartPatch(new Date(this.now())),
        );
        restarted.push(`${kind}/${workload.metadata.name}`);
      }
    }
    if (restarted.length) {
      await this.deps.recorder.record(
        target,
        'Normal',
        'WorkloadsRestarted',
        `Restarted ${restarted.join(', ')}, which consume secret ${secretName}, so they pick up the new token.`,
      );
    }
    return restarted;
  }

  /**
   * The apiserver checks a legacy token against its own cache of Secrets, which learns of a just
   * created secret a moment later; until then the new token is rejected. So a rejection of a
   * brand-new token is retried for a few seconds before it counts.
   */
  private async reviewUntilAccepted(token: string): Promise<TokenReviewOutcome> {
    const deadline = this.now() + (this.deps.fillTimeoutMs ?? 30_000) / 2;
    for (;;) {
      const review = await reviewToken(this.deps.client, token);
      if (review.authenticated || this.now() >= deadline) return review;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  private async waitForToken(ns: string, name: string): Promise<string | undefined> {
    const deadline = this.now() + (this.deps.fillTimeoutMs ?? 30_000);
    while (this.now() < deadline) {
      const secret = await this.readSecret(ns, name);
      const token = secret && secretToken(secret);
      if (token) return token;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return undefined;
  }

  private async readSecret(ns: string, name: string): Promise<SecretJson | undefined> {
    try {
      return await this.deps.client.get<SecretJson>(
        `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(name)}`,
        { timeoutMs: 10_000 },
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Writes (or with null, removes) the heal intent on the AuthProbe. */
  private async patchProbeAnnotation(probe: AuthProbe, value: string | null): Promise<void> {
    const path = `/apis/${AUTHPROBE_GROUP}/${AUTHPROBE_VERSION}/namespaces/${encodeURIComponent(probe.metadata.namespace)}/${AUTHPROBE_PLURAL}/${encodeURIComponent(probe.metadata.name)}`;
    try {
      await this.deps.client.mergePatch(
        path,
        { metadata: { annotations: { [ANNOTATION_HEAL_INTENT]: value } } },
        { timeoutMs: 15_000 },
      );
    } catch (err) {
      if (value === null && isNotFound(err)) return;
      throw err instanceof KubeApiError
        ? err
        : new Error(`could not record the heal intent: ${describeError(err).message}`);
    }
  }

  private countHeal(probe: AuthProbe, action: string, result: string): void {
    this.deps.metrics.heals.inc({
      namespace: probe.metadata.namespace,
      authprobe: probe.metadata.name,
      action,
      result,
    });
  }

  private healStatus(probe: AuthProbe, action: string, result: string): HealStatus {
    const now = this.now();
    const time = toApiTime(new Date(now));
    const previous = probe.status?.heals ?? {};
    return {
      ...previous,
      count: (previous.count ?? 0) + (result === 'Failed' ? 0 : 1),
      lastTime: time,
      lastAction: action,
      lastResult: result,
      history: appendHistory(previous.history, time, now),
    };
  }

  private async trackRotation(probe: AuthProbe, verdict: Verdict): Promise<void> {
    const ns = probe.metadata.namespace;
    const key = `${ns}/${probe.metadata.name}`;
    const now = this.now();
    if (verdict.tokenProvenInvalid && verdict.reason !== ProbeReason.TokenInvalidated) {
      if (!this.rotation.recordRejection(ns, key, now)) return;
      this.deps.metrics.suspectedRotation.set(1);
      const namespaces = this.rotation.namespacesRejecting(now);
      await this.deps.recorder.record(
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          name: this.deps.config.operatorNamespace,
          namespace: this.deps.config.operatorNamespace,
        },
        'Warning',
        HealReason.SuspectedKeyRotation,
        `Tokens are being rejected (401) in ${namespaces.length} namespaces at once (${namespaces.slice(0, 10).join(', ')}): the apiserver's service-account signing key was probably rotated without an overlap, or etcd was restored from another cluster. Check --service-account-key-file before trusting individual heals.`,
      );
      this.deps.logger.warn({ namespaces }, 'suspected service-account key rotation');
    } else if (verdict.readyStatus === 'True') {
      if (this.rotation.recordRecovery(ns, key, now)) this.deps.metrics.suspectedRotation.set(0);
    }
  }
}
