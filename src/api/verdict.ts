import type { ReadyReason } from './reasons.js';
import type { ConditionStatus } from './types.js';

/**
 * A verdict a person can act on: the Ready condition's status, reason and message, and whether the
 * token is proven invalid (the only thing that may ever lead to healing). Checks produce verdicts,
 * the healer may rewrite them, the controller records them; none of them imports another for it.
 *
 * Ready's status is three-valued on purpose: True when a consumer with this token can authenticate,
 * False when the check proved it cannot (rejected, not mounted, wrong account, untrusted CA), Unknown
 * when the check could not tell (apiserver unreachable or failing, pod never ran).
 */
export interface Verdict {
  reason: ReadyReason;
  readyStatus: ConditionStatus;
  message: string;
  /** True only for a 401 (or TokenReview "authenticated: false") of the token. Nothing else may lead to a heal. */
  tokenProvenInvalid: boolean;
  /** Evidence for status.lastProbe, when the check got that far. */
  httpStatus?: number;
  latencyMs?: number;
  identity?: string;
  /** The probe pod the verdict came from (check Pod). */
  pod?: string;
  /** The probe-now annotation value this verdict answered. */
  probeNow?: string;
  /** The AuthProbe generation the check ran for, when not the current one (a pod started earlier). */
  generation?: number;
  /** The key id (`kid`) and issuer of the checked token, as the operator read it from the secret. */
  tokenKeyID?: string;
  tokenIssuer?: string;
  /** check Copy: when the copy's token (minted with an expiry) is due for renewal, epoch ms. Not stored. */
  renewAt?: number;
}

export type VerdictEvidence = Pick<Verdict, 'httpStatus' | 'latencyMs' | 'identity'>;

/** A verdict that proves nothing about the token (tokenProvenInvalid false). */
export function verdict(
  reason: ReadyReason,
  readyStatus: ConditionStatus,
  message: string,
  evidence: VerdictEvidence = {},
): Verdict {
  const v: Verdict = { reason, readyStatus, message, tokenProvenInvalid: false };
  if (evidence.httpStatus !== undefined) v.httpStatus = evidence.httpStatus;
  if (evidence.latencyMs !== undefined) v.latencyMs = evidence.latencyMs;
  if (evidence.identity !== undefined) v.identity = evidence.identity;
  return v;
}

/** A verdict that proves the token invalid: the healer may act on it (after its own confirmation). */
export function provenInvalid(reason: ReadyReason, message: string, evidence: VerdictEvidence = {}): Verdict {
  return { ...verdict(reason, 'False', message, evidence), tokenProvenInvalid: true };
}
