/**
 * The verdict on the operator's own TokenReview of a secret's token (spec.check TokenReview). Only
 * "authenticated: false" proves the token invalid; a review that could not be made says nothing
 * about the token.
 */
import { ProbeReason } from '../../api/reasons.js';
import { provenInvalid, verdict, type Verdict } from '../../api/verdict.js';
import { serviceAccountUsername } from '../../kube/resources.js';
import type { TokenClaims } from '../../probe/result.js';
import {
  capitalize,
  describeClaims,
  quote,
  SECRET_REJECTION_CAUSES,
  type ClassifyContext,
} from '../verdicts.js';

/** What the operator's TokenReview of a secret's token came to. */
export type TokenReviewCheck =
  | { kind: 'reviewed'; authenticated: true; username: string; latencyMs: number }
  | { kind: 'reviewed'; authenticated: false; error?: string; latencyMs: number; claims?: TokenClaims }
  /** The review could not be made: transport failure (status undefined) or an HTTP error. */
  | { kind: 'failed'; status?: number; message: string };

/**
 * Classifies a TokenReview of a secret's token. Only "authenticated: false" proves the token
 * invalid (the healer still confirms it with a review of its own before touching anything); a
 * review that could not be made says nothing about the token.
 */
export function classifyTokenReview(check: TokenReviewCheck, ctx: ClassifyContext): Verdict {
  const secret = `the token in secret ${ctx.secretName ?? '(unnamed)'}`;
  if (check.kind === 'failed') {
    if (check.status === undefined) {
      return verdict(
        ProbeReason.APIServerUnreachable,
        'Unknown',
        `The operator could not reach the apiserver to review ${secret}: ${quote(check.message)}. This says ` +
          `nothing about the token.`,
      );
    }
    if (check.status === 403) {
      return verdict(
        ProbeReason.APIServerError,
        'Unknown',
        `The operator may not create TokenReviews (403: ${quote(check.message)}). Grant its service account ` +
          `create on tokenreviews.authentication.k8s.io (the Helm chart does), or use check: Pod.`,
        { httpStatus: check.status },
      );
    }
    return verdict(
      ProbeReason.APIServerError,
      'Unknown',
      `The apiserver answered ${check.status} to the TokenReview of ${secret}: ${quote(check.message)}. It is ` +
        `reachable but failing; this says nothing about the token.`,
      { httpStatus: check.status },
    );
  }
  const { latencyMs } = check;
  if (!check.authenticated) {
    const why = check.error ? `: ${quote(check.error)}` : '';
    if (ctx.legacyTokenInvalidSince !== undefined) {
      return provenInvalid(
        ProbeReason.TokenInvalidated,
        `TokenReview rejected ${secret}${why}: the secret carries kubernetes.io/legacy-token-invalid-since=` +
          `${ctx.legacyTokenInvalidSince}, set by the legacy token cleaner because the token looked unused. ` +
          `It is rejected until the label is removed, and the secret will later be deleted. Remove the ` +
          `label to revalidate the token, or replace the secret (spec.heal.invalidatedLegacyToken).`,
        { latencyMs },
      );
    }
    return provenInvalid(
      ProbeReason.TokenRejected,
      `TokenReview rejected ${secret}${why}${describeClaims(check.claims)}; a request with it gets 401 ` +
        `Unauthorized. ${SECRET_REJECTION_CAUSES}`,
      { latencyMs },
    );
  }
  const expected = serviceAccountUsername(ctx.namespace, ctx.serviceAccountName);
  const evidence = { latencyMs, identity: check.username };
  if (check.username !== expected) {
    return verdict(
      ProbeReason.TokenIdentityMismatch,
      'False',
      `${capitalize(secret)} authenticates as ${check.username}, not as ${expected}. The secret holds another ` +
        `account's token: check its kubernetes.io/service-account.name annotation.`,
      evidence,
    );
  }
  return verdict(
    ProbeReason.Authenticated,
    'True',
    `${capitalize(secret)} authenticates as ${check.username} (TokenReview, ${latencyMs}ms).`,
    evidence,
  );
}
