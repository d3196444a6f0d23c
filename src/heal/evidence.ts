import { LABEL_LEGACY_TOKEN_INVALID_SINCE } from '../api/labels.js';
import type { KubeApi } from '../kube/client.js';
import { errorMessage } from '../kube/errors.js';
import { ProbeReason } from '../api/reasons.js';
import { verdict } from '../api/verdict.js';
import { judgeTokenSecret } from '../checks/provenance.js';
import {
  apiPaths,
  getOrUndefined,
  secretToken,
  type SecretJson,
  type ServiceAccountJson,
} from '../kube/resources.js';
import { reviewToken } from '../kube/token-review.js';
import type { SecretEvidence } from './policy.js';

/**
 * Read-only evidence before deciding: does the secret exist (read fresh, not from a cache), is it
 * provably the account's token secret (src/checks/provenance.ts), is it labelled invalid, and what does
 * a TokenReview of its *current* token say. The secret read here is
 * the one a heal acts on: its uid and resourceVersion become the delete's preconditions.
 */
export async function gatherEvidence(
  client: Pick<KubeApi, 'get' | 'post'>,
  namespace: string,
  secretName: string,
  serviceAccountName: string,
  /**
   * A rejection is confirmed twice, this far apart: the apiserver checks a legacy token against its own
   * cache of Secrets, so a secret filled a moment ago can be rejected once before that cache has it.
   */
  reconfirmAfterMs = 2_000,
): Promise<{ evidence: SecretEvidence; secret?: SecretJson }> {
  const options = { timeoutMs: 10_000 };
  const secret = await getOrUndefined<SecretJson>(client, apiPaths.secret(namespace, secretName), options);
  if (!secret)
    return { evidence: { exists: false, review: 'review-failed', reviewError: 'the secret is gone' } };
  // Read fresh, like the secret: the account's uid decides whether this is still its token secret.
  const account = await getOrUndefined<ServiceAccountJson>(
    client,
    apiPaths.serviceAccount(namespace, serviceAccountName),
    options,
  );
  const notProvable = account
    ? judgeTokenSecret(secret, serviceAccountName, account.metadata.uid)
    : verdict(
        ProbeReason.ServiceAccountNotFound,
        'False',
        `ServiceAccount ${namespace}/${serviceAccountName} does not exist, so no token would be issued for a replacement of secret ${secretName}.`,
      );
  // Not the account's token secret: its token is never sent to TokenReview, the secret never touched.
  if (notProvable) return { evidence: { exists: true, review: 'not-provable', notProvable } };
  const invalidSince = secret.metadata.labels?.[LABEL_LEGACY_TOKEN_INVALID_SINCE];
  const token = secretToken(secret);
  if (!token) return { evidence: { exists: true, invalidSince, review: 'no-token' }, secret };
  try {
    let review = await reviewToken(client, token);
    if (!review.authenticated && reconfirmAfterMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, reconfirmAfterMs));
      review = await reviewToken(client, token);
    }
    const evidence: SecretEvidence = review.authenticated
      ? { exists: true, invalidSince, review: 'authenticated', reviewedAs: review.username }
      : { exists: true, invalidSince, review: 'rejected' };
    return { evidence, secret };
  } catch (err) {
    return {
      evidence: { exists: true, invalidSince, review: 'review-failed', reviewError: errorMessage(err) },
      secret,
    };
  }
}
