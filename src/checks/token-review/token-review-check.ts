import type { ResolvedSpec } from '../../api/defaults.js';
import { LABEL_LEGACY_TOKEN_INVALID_SINCE } from '../../api/labels.js';
import type { AuthProbe } from '../../api/types.js';
import type { Verdict } from '../../api/verdict.js';
import type { KubeApi } from '../../kube/client.js';
import { errorMessage, isNotFound, KubeApiError } from '../../kube/errors.js';
import {
  apiPaths,
  getOrUndefined,
  secretToken,
  type SecretJson,
  type ServiceAccountJson,
} from '../../kube/resources.js';
import { judgeTokenSecret } from '../provenance.js';
import { reviewToken } from '../../kube/token-review.js';
import { readTokenClaims } from '../../probe/claims.js';
import { PodlessCheck } from '../check.js';
import {
  classifyContext,
  secretNotFoundVerdict,
  serviceAccountNotFoundVerdict,
  tokenNotIssuedVerdict,
} from '../verdicts.js';
import { classifyTokenReview, type TokenReviewCheck } from './classify.js';

/** ServiceAccounts by `namespace/name` (the operator's metadata-only informer: enough for the uid). */
export interface AccountCache {
  get(key: string): { metadata?: { uid?: string } } | undefined;
}

export interface TokenReviewCheckDeps {
  client: KubeApi;
  now: () => number;
  /** When set, a scheduled check takes the account's uid from here instead of a GET. */
  accounts?: AccountCache;
}

/**
 * spec.check TokenReview: no pod. The operator reads the secret's token and asks the apiserver's
 * TokenReview API whether it authenticates and as whom. Two requests when the token is fine: GET
 * secret (from the apiserver's watch cache) and POST tokenreviews; the ServiceAccount comes from the
 * operator's informer, and an unchanged verdict is written to status only as a heartbeat.
 */
export class TokenReviewCheckKind extends PodlessCheck {
  constructor(private readonly deps: TokenReviewCheckDeps) {
    super();
  }

  protected verdictNow(probe: AuthProbe, spec: ResolvedSpec, fresh: boolean): Promise<Verdict> {
    return this.review(probe, spec, fresh);
  }

  /**
   * A scheduled check reads the secret from the apiserver's watch cache (resourceVersion 0: no quorum
   * read from etcd per check; at worst milliseconds stale, and a rejection is re-checked with a fresh
   * read by the healer before anything is touched). The check right after a heal reads fresh, so it
   * sees the replacement.
   */
  private async review(probe: AuthProbe, spec: ResolvedSpec, fresh: boolean): Promise<Verdict> {
    const { client } = this.deps;
    const ns = probe.metadata.namespace;
    const ctx = classifyContext(probe, spec);
    if (spec.token.source !== 'Secret') {
      // resolveSpec refuses this combination; kept total so that a type, not a cast, says so.
      return secretNotFoundVerdict(ctx);
    }
    const failed = (err: unknown): Verdict =>
      classifyTokenReview(
        err instanceof KubeApiError
          ? { kind: 'failed', status: err.status, message: err.message }
          : { kind: 'failed', message: errorMessage(err) },
        ctx,
      );
    // Reads come from the apiserver's watch cache unless this check follows a heal.
    const cached = fresh ? {} : { query: { resourceVersion: '0' } };
    const readAccount = async (): Promise<{ metadata: { uid?: string } } | undefined> => {
      const known = fresh ? undefined : this.deps.accounts?.get(`${ns}/${spec.serviceAccountName}`);
      if (known?.metadata?.uid) return { metadata: { uid: known.metadata.uid } };
      // Not in the informer (just created, or truly missing): ask the apiserver.
      return getOrUndefined<ServiceAccountJson>(
        client,
        apiPaths.serviceAccount(ns, spec.serviceAccountName),
        {
          timeoutMs: 10_000,
          ...cached,
        },
      );
    };
    let secret: SecretJson;
    try {
      secret = await client.get<SecretJson>(apiPaths.secret(ns, spec.token.secretName), {
        timeoutMs: spec.timeoutMs,
        ...cached,
      });
    } catch (err) {
      if (!isNotFound(err)) return failed(err);
      // A missing account explains a missing secret better than the secret does.
      return (await readAccount()) ? secretNotFoundVerdict(ctx) : serviceAccountNotFoundVerdict(ctx);
    }
    let account: { metadata: { uid?: string } } | undefined;
    try {
      account = await readAccount();
    } catch (err) {
      return failed(err);
    }
    if (!account) return serviceAccountNotFoundVerdict(ctx);
    // Only the account's own token secret is ever read for its token and sent to TokenReview.
    const notProvable = judgeTokenSecret(secret, spec.serviceAccountName, account.metadata.uid);
    if (notProvable) return notProvable;
    const invalidSince = secret.metadata.labels?.[LABEL_LEGACY_TOKEN_INVALID_SINCE];
    const token = secretToken(secret);
    if (!token) return tokenNotIssuedVerdict(ctx);
    const claims = readTokenClaims(token);
    const key = {
      ...(claims.keyId !== undefined ? { tokenKeyID: claims.keyId } : {}),
      ...(claims.issuer !== undefined ? { tokenIssuer: claims.issuer } : {}),
    };
    const started = this.deps.now();
    let check: TokenReviewCheck;
    try {
      const review = await reviewToken(client, token, spec.timeoutMs);
      const latencyMs = Math.max(0, this.deps.now() - started);
      check = review.authenticated
        ? { kind: 'reviewed', authenticated: true, username: review.username, latencyMs }
        : {
            kind: 'reviewed',
            authenticated: false,
            latencyMs,
            ...(review.error ? { error: review.error } : {}),
            claims,
          };
    } catch (err) {
      return { ...failed(err), ...key };
    }
    return { ...classifyTokenReview(check, classifyContext(probe, spec, invalidSince)), ...key };
  }
}
