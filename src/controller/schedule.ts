import { createHash } from 'node:crypto';
import {
  ANNOTATION_CHECK_GENERATION,
  ANNOTATION_CHECK_PROBE_NOW,
  ANNOTATION_PROBE_NOW,
} from '../api/labels.js';
import { HealReason, ProbeReason, type ReadyReason } from '../api/reasons.js';
import type { AuthProbe } from '../api/types.js';
import type { CheckMark, ProbeTrigger } from '../checks/check.js';

/**
 * Verdicts that describe a state still settling: something applied together with the AuthProbe (or
 * fixed by the user) that will be there in seconds. They are checked again on a short back-off, and
 * at once when the ServiceAccount or token Secret they depend on changes.
 */
export const SETTLING_REASONS: ReadonlySet<string> = new Set<ReadyReason>([
  ProbeReason.ServiceAccountNotFound,
  ProbeReason.SecretNotFound,
  ProbeReason.TokenNotIssued,
  ProbeReason.SecretNotServiceAccountToken,
  ProbeReason.SecretForOtherServiceAccount,
  ProbeReason.SecretForRecreatedServiceAccount,
  // A token rejected though the secret's current token authenticates: a just-filled secret that the
  // apiserver's cache (or the pod's mount) has not caught up with yet.
  HealReason.StaleMountedToken,
  // A heal proven needed but held back (the tokens controller not proven, or signing with a key the
  // apiserver does not trust): it proceeds within seconds of the cause being fixed.
  HealReason.HealBlocked,
]);

/**
 * Settling verdicts whose fix the operator watches (a created ServiceAccount wakes the AuthProbe at
 * once): their back-off needs no plateau and doubles straight to the interval.
 */
const WATCHED_REASONS: ReadonlySet<string> = new Set<ReadyReason>([ProbeReason.ServiceAccountNotFound]);

/** A new AuthProbe's settling verdict is Ready=Unknown this long after its creation, not False. */
export const SETTLE_GRACE_MS = 30_000;
/** The back-off's plateau: while something is being fixed, a fix is noticed within this long. */
export const SETTLE_PLATEAU_MS = 15_000;
/** How many re-checks stay on the plateau (about five minutes) before the back-off grows again. */
export const SETTLE_PLATEAU_CHECKS = 20;

/**
 * When a settling verdict is checked again: 2 s, 4 s, 8 s after the first ones, then every 15 s for
 * about five minutes (a user fixing what the condition says is noticed within seconds), then doubling
 * up to the interval, where it stays. A missing ServiceAccount is watched, so its back-off doubles
 * from 2 s straight to the interval (one that never comes costs one check an interval).
 */
export function settleRecheckMs(consecutiveFailures: number, intervalMs: number, reason?: string): number {
  const n = Math.max(1, consecutiveFailures);
  if (reason !== undefined && WATCHED_REASONS.has(reason))
    return Math.min(intervalMs, 1_000 * 2 ** Math.min(30, n));
  const ms =
    n <= 3
      ? 1_000 * 2 ** n
      : n <= SETTLE_PLATEAU_CHECKS
        ? SETTLE_PLATEAU_MS
        : SETTLE_PLATEAU_MS * 2 ** Math.min(30, n - SETTLE_PLATEAU_CHECKS);
  return Math.min(intervalMs, ms);
}

export type ScheduleDecision = { probeNow: true; trigger: ProbeTrigger } | { probeNow: false; inMs: number };

/**
 * A stable spread of up to 10% of the interval, from the AuthProbe's UID, so that a thousand
 * probes created together do not fire together forever after.
 */
export function jitterMs(uid: string, intervalMs: number): number {
  const n = createHash('sha256').update(uid).digest().readUInt32BE(0);
  return Math.floor((n / 0xffffffff) * intervalMs * 0.1);
}

/**
 * Whether a new probe is due: first sight, a spec change (generation not yet probed), a new
 * value of the probe-now annotation, a settling verdict whose ServiceAccount or Secret changed
 * (`dependencyChanged`) or whose back-off ran out, or the interval (plus jitter) since the last
 * probe ended.
 */
export function decideSchedule(
  probe: AuthProbe,
  latestPod: CheckMark | undefined,
  intervalMs: number,
  now: number,
  dependencyChanged = false,
): ScheduleDecision {
  const generation = String(probe.metadata.generation ?? 0);
  const lastProbeAt = probe.status?.lastProbe?.time ? Date.parse(probe.status.lastProbe.time) : undefined;
  if (lastProbeAt === undefined && !latestPod) return { probeNow: true, trigger: 'First' };
  const probedGeneration =
    latestPod?.annotations[ANNOTATION_CHECK_GENERATION] ?? String(probe.status?.observedGeneration ?? '');
  if (probedGeneration !== generation) return { probeNow: true, trigger: 'SpecChanged' };
  const requested = probe.metadata.annotations?.[ANNOTATION_PROBE_NOW];
  if (
    requested !== undefined &&
    requested !== (latestPod?.annotations[ANNOTATION_CHECK_PROBE_NOW] ?? undefined)
  ) {
    return { probeNow: true, trigger: 'Requested' };
  }
  const base = Math.max(lastProbeAt ?? 0, latestPod?.createdAt ?? 0);
  const settling = SETTLING_REASONS.has(probe.status?.lastProbe?.outcome ?? '');
  if (settling && dependencyChanged) return { probeNow: true, trigger: 'DependencyChanged' };
  if (settling && lastProbeAt !== undefined) {
    const recheckAt =
      lastProbeAt +
      settleRecheckMs(probe.status?.consecutiveFailures ?? 1, intervalMs, probe.status?.lastProbe?.outcome);
    if (recheckAt <= now) return { probeNow: true, trigger: 'Settling' };
    return { probeNow: false, inMs: Math.min(recheckAt, base + intervalMs) - now };
  }
  const dueAt = base + intervalMs + jitterMs(probe.metadata.uid, intervalMs);
  if (dueAt <= now) return { probeNow: true, trigger: 'Interval' };
  return { probeNow: false, inMs: dueAt - now };
}
