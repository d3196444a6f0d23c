/**
 * A verdict that describes a state still settling (SETTLING_REASONS: the account or secret not there
 * yet, the token not issued yet, ...) is not the last word: the condition says when it is checked
 * again, and within SETTLE_GRACE_MS of the AuthProbe's creation it is Ready=Unknown rather than False,
 * so that objects applied together never show as broken. Pure.
 */
import { formatDuration } from '../api/duration.js';
import { HealReason } from '../api/reasons.js';
import type { AuthProbe } from '../api/types.js';
import type { Verdict } from '../api/verdict.js';
import { SETTLE_GRACE_MS, SETTLING_REASONS, settleRecheckMs } from './schedule.js';

export function settle(
  probe: AuthProbe,
  verdict: Verdict,
  intervalMs: number,
  now: number,
): { verdict: Verdict; inGrace: boolean } {
  if (!SETTLING_REASONS.has(verdict.reason) || verdict.readyStatus === 'True')
    return { verdict, inGrace: false };
  const failures = (probe.status?.consecutiveFailures ?? 0) + 1;
  const recheckMs = settleRecheckMs(failures, intervalMs, verdict.reason);
  const created = Date.parse(probe.metadata.creationTimestamp ?? '');
  // A heal held back is about a token proven broken: never "not ready yet".
  const inGrace =
    verdict.reason !== HealReason.HealBlocked && Number.isFinite(created) && now - created < SETTLE_GRACE_MS;
  const note =
    recheckMs < intervalMs
      ? ` Checking again in ${formatDuration(recheckMs)}, or as soon as the ServiceAccount changes.`
      : ` Checking again at the next interval (${formatDuration(intervalMs)}), or as soon as the ServiceAccount changes.`;
  return {
    verdict: {
      ...verdict,
      ...(inGrace ? { readyStatus: 'Unknown' as const } : {}),
      message: `${verdict.message}${note}`,
    },
    inGrace,
  };
}
