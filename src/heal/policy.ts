import { HealAction, HealReason, ProbeReason, type HealKind, type ReadyReason } from '../api/reasons.js';
import type { ResolvedSpec } from '../api/defaults.js';
import type { Verdict } from '../api/verdict.js';

/** What the controller learned about the secret before deciding (all read-only calls). */
export interface SecretEvidence {
  exists: boolean;
  /** Value of kubernetes.io/legacy-token-invalid-since, when present. */
  invalidSince?: string;
  /** TokenReview of the secret's current token; not-provable: not the account's token secret, never reviewed. */
  review: 'authenticated' | 'rejected' | 'no-token' | 'review-failed' | 'not-provable';
  /** Why the secret is not provably the account's token secret (review not-provable). */
  notProvable?: Verdict;
  /** Username TokenReview reported, when authenticated. */
  reviewedAs?: string;
  /** Why the review failed, for the message. */
  reviewError?: string;
}

export interface HealBudget {
  /** Heals of this AuthProbe in the last hour. */
  probeHealsLastHour: number;
  /** Heals still allowed cluster-wide this hour. */
  clusterRemaining: number;
  /** A failed heal holds further attempts back until then (epoch ms). */
  backoffUntil?: number;
  now: number;
}

export type HealDecision =
  | { kind: 'none' }
  | { kind: 'report'; reason: ReadyReason; message: string }
  | { kind: 'dry-run'; action: HealKind; message: string }
  | { kind: 'rate-limited'; action: HealKind; message: string }
  | { kind: 'heal'; action: HealKind; message: string };

/**
 * Whether and how to heal, as a chain of small rules in the order an admin would ask them. A
 * secret is only ever touched when (1) a probe pod got 401 with the token, (2) the token comes
 * from a Secret, (3) a TokenReview of the secret's *current* token confirms the rejection, and
 * (4) the policy and every budget allow it. 403, timeouts, TLS and 5xx never get here.
 */
export function decideHeal(
  spec: ResolvedSpec,
  verdict: Verdict,
  evidence: SecretEvidence | undefined,
  budget: HealBudget,
): HealDecision {
  if (!verdict.tokenProvenInvalid) return { kind: 'none' };
  if (spec.token.source !== 'Secret') {
    return {
      kind: 'report',
      reason: HealReason.ProjectedTokenRejected,
      message:
        `${verdict.message} Healing does not apply to projected tokens: restart the pods that use them ` +
        `(new pods get a fresh token) or fix the apiserver's service-account key flags.`,
    };
  }
  const secret = spec.token.secretName;
  if (!evidence || !evidence.exists) return { kind: 'none' };
  if (evidence.review === 'not-provable') {
    const why = evidence.notProvable;
    return {
      kind: 'report',
      reason: why?.reason ?? ProbeReason.SecretForOtherServiceAccount,
      message: `${why?.message ?? `Secret ${secret} is not provably the token secret of the account.`} Nothing was changed.`,
    };
  }
  if (evidence.review === 'authenticated') {
    return {
      kind: 'report',
      reason: HealReason.StaleMountedToken,
      message:
        `The probe pod's token was rejected, but a TokenReview of secret ${secret}'s current token says it ` +
        `authenticates${evidence.reviewedAs ? ` as ${evidence.reviewedAs}` : ''}: the mounted copy is stale ` +
        `(the secret changed after the pod started). Nothing was deleted; pods that mount the secret pick up ` +
        `the new token within the kubelet's sync period, pods that copied it into env must restart.`,
    };
  }
  if (evidence.review === 'review-failed') {
    return {
      kind: 'report',
      reason: verdict.reason,
      message: `${verdict.message} The rejection could not be confirmed with a TokenReview (${evidence.reviewError ?? 'unknown error'}), so nothing was changed; the next probe tries again.`,
    };
  }
  if (evidence.review === 'no-token') {
    return {
      kind: 'report',
      reason: ProbeReason.TokenNotMounted,
      message: `Secret ${secret} has no token yet; the tokens controller of kube-controller-manager has not filled it.`,
    };
  }
  // A token signed by a key the apiserver no longer trusts stays dead whatever its label says.
  const invalidated = evidence.invalidSince !== undefined && verdict.reason !== ProbeReason.SigningKeyRetired;
  if (invalidated && spec.heal.invalidatedLegacyToken === 'Report') {
    return {
      kind: 'report',
      reason: ProbeReason.TokenInvalidated,
      message: `${verdict.message} spec.heal.invalidatedLegacyToken is Report, so nothing was changed.`,
    };
  }
  const action: HealKind =
    invalidated && spec.heal.invalidatedLegacyToken === 'Revalidate'
      ? HealAction.LabelRemoved
      : HealAction.SecretRecreated;
  const what =
    action === HealAction.LabelRemoved
      ? `remove the label kubernetes.io/legacy-token-invalid-since from secret ${secret}`
      : `replace secret ${secret} with a new kubernetes.io/service-account-token secret of the same name, labels and annotations`;
  return decideByPolicy(spec, verdict, action, what, budget);
}

/**
 * The last rules, shared by every kind of heal once the rejection is proven: the policy (Disabled,
 * DryRun), the back-off after a failed heal, heal.maxPerHour and the cluster-wide budget.
 */
export function decideByPolicy(
  spec: ResolvedSpec,
  verdict: Verdict,
  action: HealKind,
  what: string,
  budget: HealBudget,
): HealDecision {
  if (spec.heal.policy === 'Disabled') {
    return {
      kind: 'report',
      reason: verdict.reason,
      message: `${verdict.message} TokenReview confirmed the rejection. spec.heal.policy is Disabled; to heal by hand, ${what}.`,
    };
  }
  if (spec.heal.policy === 'DryRun') {
    return {
      kind: 'dry-run',
      action,
      message: `TokenReview confirmed the rejection. DryRun: would ${what}. Nothing was changed.`,
    };
  }
  if (budget.backoffUntil !== undefined && budget.backoffUntil > budget.now) {
    const seconds = Math.ceil((budget.backoffUntil - budget.now) / 1000);
    return {
      kind: 'rate-limited',
      action,
      message: `The last heal failed; the next attempt to ${what} waits ${seconds}s (back-off).`,
    };
  }
  if (budget.probeHealsLastHour >= spec.heal.maxPerHour) {
    return {
      kind: 'rate-limited',
      action,
      message: `TokenReview confirmed the rejection, but this AuthProbe already healed ${budget.probeHealsLastHour} time(s) in the last hour (spec.heal.maxPerHour=${spec.heal.maxPerHour}); nothing was changed. Something keeps invalidating this token: look for a repeated key rotation or a process deleting the ServiceAccount.`,
    };
  }
  if (budget.clusterRemaining <= 0) {
    return {
      kind: 'rate-limited',
      action,
      message: `TokenReview confirmed the rejection, but the operator's cluster-wide heal budget for this hour is used up (--heal-budget-per-hour); nothing was changed.`,
    };
  }
  return { kind: 'heal', action, message: `TokenReview confirmed the rejection; about to ${what}.` };
}
