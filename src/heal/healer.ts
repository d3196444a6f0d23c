import type { ResolvedSpec } from '../api/defaults.js';
import type { AuthProbe, HealStatus } from '../api/types.js';
import type { Verdict } from '../api/verdict.js';
import type { EventTarget } from '../events/recorder.js';

export interface HealInput {
  probe: AuthProbe;
  spec: ResolvedSpec;
  verdict: Verdict;
  target: EventTarget;
}

export interface HealOutcome {
  /** The verdict to record: the check's, or one that says what healing found or did. */
  verdict: Verdict;
  heals?: HealStatus;
  /** A replacement token is in place (or the secret changed): check again at once, not an interval later. */
  probeAgainNow: boolean;
}

/** Acts on a verdict; only a proven-invalid token may lead to a change. */
export interface Healer {
  afterVerdict(input: HealInput): Promise<HealOutcome>;
  /**
   * The AuthProbe is being deleted and still holds the heal-in-flight finalizer: finish the heal (or
   * find there is none) and release it. False while that could not be done yet.
   */
  finishBeforeDeletion(probe: AuthProbe, spec: ResolvedSpec, target: EventTarget): Promise<boolean>;
}
