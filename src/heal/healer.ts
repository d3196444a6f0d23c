import type { ResolvedSpec } from '../api/defaults.js';
import type { AuthProbe, HealStatus } from '../api/types.js';
import type { EventTarget } from '../events/recorder.js';
import type { Verdict } from '../controller/status.js';

export interface HealInput {
  probe: AuthProbe;
  spec: ResolvedSpec;
  verdict: Verdict;
  target: EventTarget;
}

export interface HealOutcome {
  /** The verdict to record: the probe's, or one that says what healing found or did. */
  verdict: Verdict;
  heals?: HealStatus;
  /** A replacement token is in place: probe again at once instead of waiting an interval. */
  probeAgainNow: boolean;
}

/** Acts on a verdict; only a proven-invalid token may lead to a change. */
export interface Healer {
  afterVerdict(input: HealInput): Promise<HealOutcome>;
}
