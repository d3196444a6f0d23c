import { createHash } from 'node:crypto';
import {
  ANNOTATION_CHECK_GENERATION,
  ANNOTATION_CHECK_PROBE_NOW,
  ANNOTATION_PROBE_NOW,
} from '../api/labels.js';
import type { AuthProbe } from '../api/types.js';
import type { CheckMark, ProbeTrigger } from '../checks/check.js';

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
 * value of the probe-now annotation, or the interval (plus jitter) since the last probe ended.
 */
export function decideSchedule(
  probe: AuthProbe,
  latestPod: CheckMark | undefined,
  intervalMs: number,
  now: number,
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
  const dueAt = base + intervalMs + jitterMs(probe.metadata.uid, intervalMs);
  if (dueAt <= now) return { probeNow: true, trigger: 'Interval' };
  return { probeNow: false, inMs: dueAt - now };
}
