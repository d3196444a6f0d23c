import type { KubeClient } from './client.js';

export type TokenReviewOutcome =
  | { authenticated: true; username: string; uid?: string; groups?: string[] }
  | { authenticated: false; error?: string };

/**
 * Asks the apiserver (authentication.k8s.io/v1 TokenReview) whether a token authenticates and as
 * whom. The token goes only into the request body; nothing returned here contains it.
 */
export async function reviewToken(
  client: KubeClient,
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
    '/apis/authentication.k8s.io/v1/tokenreviews',
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

/** The token of a `kubernetes.io/service-account-token` secret, decoded, or undefined when not filled yet. */
export function secretToken(secret: { data?: Record<string, string> }): string | undefined {
  const encoded = secret.data?.token;
  if (!encoded) return undefined;
  const token = Buffer.from(encoded, 'base64').toString('utf8').trim();
  return token || undefined;
}
