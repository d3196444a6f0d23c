/**
 * What healing does to a verdict and to status.heals, as pure functions: nothing but data in and out,
 * table-tested in test/unit/heal/rewrites.test.ts.
 */
import { LABEL_LEGACY_TOKEN_INVALID_SINCE } from '../api/labels.js';
import { HealProgress, HealReason, ProbeReason, type HealAction } from '../api/reasons.js';
import type { HealStatus } from '../api/types.js';
import { verdict as makeVerdict, type Verdict } from '../api/verdict.js';
import { toApiTime } from '../api/conditions.js';
import { appendHistory } from './budget.js';

/**
 * TokenRejected → TokenInvalidated when the secret carries the legacy cleaner's label: the cause is
 * then known, and heal.invalidatedLegacyToken decides what happens.
 */
export function withInvalidatedCause(verdict: Verdict, invalidSince: string | undefined): Verdict {
  if (invalidSince === undefined || verdict.reason !== ProbeReason.TokenRejected) return verdict;
  return {
    ...verdict,
    reason: ProbeReason.TokenInvalidated,
    message: `${verdict.message} The secret carries ${LABEL_LEGACY_TOKEN_INVALID_SINCE}=${invalidSince}.`,
  };
}

/**
 * AwaitingProbe → Healed: the first check after a replacement authenticated, which confirms the heal.
 * Undefined when there is nothing to confirm.
 */
export function confirmHeal(
  verdict: Verdict,
  heals: HealStatus | undefined,
): { verdict: Verdict; heals: HealStatus } | undefined {
  if (verdict.readyStatus !== 'True' || heals?.lastResult !== HealProgress.AwaitingProbe) return undefined;
  const by = verdict.pod ? 'a probe pod' : 'a TokenReview';
  return {
    verdict: {
      ...verdict,
      reason: HealReason.Healed,
      message: `${verdict.message} The token was replaced at ${heals.lastTime ?? ''} and ${by} confirmed it.`,
    },
    heals: { ...heals, lastResult: HealProgress.Confirmed },
  };
}

/** The Event text that goes with confirmHeal. */
export function confirmationMessage(verdict: Verdict): string {
  return `${verdict.pod ? `Probe pod ${verdict.pod}` : 'A TokenReview check'} authenticated with the replaced token: the heal is confirmed.`;
}

/** A heal that did not end with a working token: Ready=False, reason HealFailed. */
export function healFailedVerdict(message: string): Verdict {
  return makeVerdict(HealReason.HealFailed, 'False', message);
}

/** status.heals after a heal attempt; a failed one is recorded but not counted. */
export function healStatusAfter(
  previous: HealStatus | undefined,
  action: HealAction | string,
  progress: HealProgress,
  now: number,
): HealStatus {
  const time = toApiTime(new Date(now));
  const before = previous ?? {};
  return {
    ...before,
    count: (before.count ?? 0) + (progress === HealProgress.Failed ? 0 : 1),
    lastTime: time,
    lastAction: action,
    lastResult: progress,
    history: appendHistory(before.history, time, now),
  };
}
