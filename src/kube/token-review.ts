import type { KubeApi } from './client.js';
import { apiPaths } from './resources.js';

export type TokenReviewOutcome =
  | { authenticated: true; username: string; uid?: string; groups?: string[] }
  | { authenticated: false; error?: string };

/**
 * Asks the apiserver (authentication.k8s.io/v1 TokenReview) whether a token authenticates and as
 * whom. The token goes only into the request body; nothing returned here contains it.
 */
export async function reviewToken(
  client: Pick<KubeApi, 'post'>,
  token: string,
  timeoutMs = 10_000,
): Promise<TokenReviewOutcome> {
  const review = await client.post<{
    status?: {
      authenticated?: boolean;
      user?: { username?: string; uid?: string; groups?: string[] };
      error?: string;
    };
  }>(
    apiPaths.tokenReviews(),
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
    { timeoutMs },
  );
  const status = review.status ?? {};
  if (status.authenticated && status.user?.username) {
    return {
      authenticated: true,
      username: status.user.username,
      uid: status.user.uid,
      groups: status.user.groups,
    };
  }
  return { authenticated: false, error: status.error };
}
