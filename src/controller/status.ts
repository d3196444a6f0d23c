import { setCondition, toApiTime } from '../api/conditions.js';
import { ConditionType, HealReason, ProbeReason, type ReadyReason } from '../api/reasons.js';
import type { AuthProbe, AuthProbeStatus, HealStatus } from '../api/types.js';
import type { Verdict } from '../api/verdict.js';

/** Reasons that say the token authenticates (a success for lastSuccessTime). */
const AUTHENTICATING = new Set<ReadyReason>([
  ProbeReason.Authenticated,
  ProbeReason.AuthenticatedForbidden,
  HealReason.Healed,
]);

/** The status after a verdict. Pure: same inputs, same status, so "changed?" is a comparison. */
export function statusAfterVerdict(
  probe: AuthProbe,
  verdict: Verdict,
  now: Date,
  heals?: HealStatus,
): AuthProbeStatus {
  // The heal intent is the healer's: written through its own patches, never carried along (a merge patch
  // leaves a field it does not name as it is).
  const { healIntent: _healIntent, ...previous } = probe.status ?? {};
  // The generation the check ran for: a pod started before a spec change speaks for the old spec.
  const generation = verdict.generation ?? probe.metadata.generation ?? 0;
  const time = toApiTime(now);
  return {
    ...previous,
    observedGeneration: generation,
    conditions: setCondition(
      previous.conditions,
      {
        type: ConditionType.Ready,
        status: verdict.readyStatus,
        reason: verdict.reason,
        message: verdict.message,
        observedGeneration: generation,
      },
      now,
    ),
    lastProbe: stripUndefined({
      time,
      outcome: verdict.reason,
      httpStatus: verdict.httpStatus,
      latencyMs: verdict.latencyMs,
      pod: verdict.pod,
      identity: verdict.identity,
      message: verdict.message,
      probeNow: verdict.probeNow,
      tokenKeyID: verdict.tokenKeyID,
      tokenIssuer: verdict.tokenIssuer,
    }),
    lastSuccessTime: AUTHENTICATING.has(verdict.reason) ? time : previous.lastSuccessTime,
    consecutiveFailures: verdict.readyStatus === 'True' ? 0 : (previous.consecutiveFailures ?? 0) + 1,
    ...(heals ? { heals } : {}),
  };
}

/** First sight, or a probe in flight with no verdict yet: Ready=Unknown, as the API conventions ask. */
export function statusWhileProbing(
  probe: AuthProbe,
  message: string,
  now: Date,
): AuthProbeStatus | undefined {
  const { healIntent: _healIntent, ...previous } = probe.status ?? {};
  if (previous.conditions?.some((c) => c.type === ConditionType.Ready)) return undefined;
  return {
    ...previous,
    conditions: setCondition(
      previous.conditions,
      {
        type: ConditionType.Ready,
        status: 'Unknown',
        reason: ProbeReason.Probing,
        message,
        observedGeneration: probe.metadata.generation ?? 0,
      },
      now,
    ),
  };
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
