import type { ResolvedSpec } from '../../api/defaults.js';
import { ANNOTATION_PROBE_NOW, LABEL_LEGACY_TOKEN_INVALID_SINCE } from '../../api/labels.js';
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
import {
  markFromStatus,
  type CheckMark,
  type Observation,
  type ProbeTrigger,
  type Started,
  type TokenCheck,
} from '../check.js';
import {
  classifyContext,
  secretNotFoundVerdict,
  serviceAccountNotFoundVerdict,
  tokenNotIssuedVerdict,
} from '../verdicts.js';
import { classifyTokenReview, type TokenReviewCheck } from './classify.js';

export interface TokenReviewCheckDeps {
  client: KubeApi;
  now: () => number;
}

/**
 * spec.check TokenReview: no pod. The operator reads the secret's token and asks the apiserver's
 * TokenReview API whether it authenticates and as whom. Three requests when the token is fine: GET
 * secret (from the watch cache), POST tokenreviews, and the status write the reconciler makes.
 */
export class TokenReviewCheckKind implements TokenCheck {
  constructor(private readonly deps: TokenReviewCheckDeps) {}

  observe(): Observation {
    return { kind: 'nothing' };
  }

  lastMark(probe: AuthProbe): CheckMark | undefined {
    return markFromStatus(probe);
  }

  async start(probe: AuthProbe, spec: ResolvedSpec, trigger: ProbeTrigger): Promise<Started> {
    const probeNow = probe.metadata.annotations?.[ANNOTATION_PROBE_NOW];
    const found = await this.review(probe, spec, trigger === 'AfterHeal');
    return {
      kind: 'verdict',
      verdict: { ...found, ...(probeNow !== undefined ? { probeNow } : {}) },
      ...(found.latencyMs !== undefined ? { durationMs: found.latencyMs } : {}),
    };
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
    const readAccount = () =>
      getOrUndefined<ServiceAccountJson>(client, apiPaths.serviceAccount(ns, spec.serviceAccountName), {
        timeoutMs: 10_000,
        ...cached,
      });
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
    let account: ServiceAccountJson | undefined;
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
            claims: readTokenClaims(token),
          };
    } catch (err) {
      return failed(err);
    }
    return classifyTokenReview(check, classifyContext(probe, spec, invalidSince));
  }
}
