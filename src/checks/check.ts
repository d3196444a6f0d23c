import type { ResolvedSpec } from '../api/defaults.js';
import {
  ANNOTATION_CHECK_GENERATION,
  ANNOTATION_CHECK_PROBE_NOW,
  ANNOTATION_PROBE_NOW,
} from '../api/labels.js';
import type { AuthProbe } from '../api/types.js';
import type { Verdict } from '../api/verdict.js';

/**
 * Why a check runs now. AfterHeal: the replaced token is confirmed at once, not an interval later.
 * Settling: a verdict that will change by itself is checked again on a short back-off;
 * DependencyChanged: its ServiceAccount or token Secret changed. KeyRetired: the key that signed the
 * token it last checked left the apiserver's trusted set.
 */
export type ProbeTrigger =
  | 'First'
  | 'SpecChanged'
  | 'Requested'
  | 'Interval'
  | 'AfterHeal'
  | 'Settling'
  | 'DependencyChanged'
  | 'KeyRetired';

/**
 * When the last check of an AuthProbe ran and what it answered, as the schedule reads it: a probe pod's
 * creation time and annotations, or (checks without pods) the same read from status.lastProbe.
 */
export interface CheckMark {
  name: string;
  createdAt: number;
  annotations: Record<string, string>;
}

/** A verdict a check reached, with how long the check took (authprobe_probe_duration_seconds). */
export interface CheckVerdict {
  kind: 'verdict';
  verdict: Verdict;
  durationMs?: number;
  /** Look again after this long instead of at the next interval (e.g. a pod could not be created). */
  retryInMs?: number;
}

/** What the check found when the reconciler looked. */
export type Observation =
  | CheckVerdict
  /** A check is running (a probe pod without a result yet); its own updates wake the reconciler. */
  | { kind: 'in-flight'; message: string; recheckInMs: number }
  | { kind: 'nothing' };

/** What starting a check came to. */
export type Started =
  /** The check finished at once (TokenReview), or found without using the token why it cannot run. */
  | CheckVerdict
  /** A probe pod was created; its result arrives later. */
  | { kind: 'started'; message: string; recheckInMs: number }
  /** Nothing was started this time (e.g. the pod already exists); look again soon. */
  | { kind: 'retry'; inMs: number };

/**
 * One way of proving a token ("a check kind"): the probe pod, the controller-side TokenReview, later a
 * copy checked against another server. The reconciler only chooses one by spec.check and calls it; how
 * a check is done, and how its raw result becomes a verdict, is the check's business.
 */
export interface TokenCheck {
  /** A finished check whose verdict has not been recorded yet, or one still running. */
  observe(probe: AuthProbe, spec: ResolvedSpec): Observation;
  /** The mark of the last check, for the schedule. */
  lastMark(probe: AuthProbe): CheckMark | undefined;
  /** Runs or starts a check now. After a heal (`AfterHeal`) it reads around caches. */
  start(probe: AuthProbe, spec: ResolvedSpec, trigger: ProbeTrigger): Promise<Started>;
  /** Clean-up once a verdict is recorded (e.g. old probe pods). */
  afterRecord?(probe: AuthProbe, spec: ResolvedSpec): Promise<void>;
}

export type CheckKinds = Record<ResolvedSpec['check'], TokenCheck>;

/**
 * The mark of the last recorded verdict, read from status: when it was recorded, which generation
 * and which probe-now request it answered (every check kind records both).
 */
export function markFromStatus(probe: AuthProbe): CheckMark | undefined {
  const last = probe.status?.lastProbe;
  if (!last?.time) return undefined;
  return {
    name: '',
    createdAt: Date.parse(last.time) || 0,
    annotations: {
      [ANNOTATION_CHECK_GENERATION]: String(probe.status?.observedGeneration ?? ''),
      ...(last.probeNow !== undefined ? { [ANNOTATION_CHECK_PROBE_NOW]: last.probeNow } : {}),
    },
  };
}

/**
 * A check that needs no pod (TokenReview, Copy): it reaches its verdict within start(), records the
 * probe-now request it answered, and its mark is status.lastProbe.
 */
export abstract class PodlessCheck implements TokenCheck {
  observe(): Observation {
    return { kind: 'nothing' };
  }

  lastMark(probe: AuthProbe): CheckMark | undefined {
    return markFromStatus(probe);
  }

  async start(probe: AuthProbe, spec: ResolvedSpec, trigger: ProbeTrigger): Promise<Started> {
    const probeNow = probe.metadata.annotations?.[ANNOTATION_PROBE_NOW];
    const found = await this.verdictNow(probe, spec, trigger === 'AfterHeal');
    const retryInMs = this.retryInMs(found, spec);
    return {
      kind: 'verdict',
      verdict: { ...found, ...(probeNow !== undefined ? { probeNow } : {}) },
      ...(found.latencyMs !== undefined ? { durationMs: found.latencyMs } : {}),
      ...(retryInMs !== undefined ? { retryInMs } : {}),
    };
  }

  /** The verdict; `fresh` (right after a heal) reads around the apiserver's watch cache. */
  protected abstract verdictNow(probe: AuthProbe, spec: ResolvedSpec, fresh: boolean): Promise<Verdict>;

  /** Look again sooner than the interval (undefined: at the interval). */
  protected retryInMs(_found: Verdict, _spec: ResolvedSpec): number | undefined {
    return undefined;
  }
}
