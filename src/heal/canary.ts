import type { Logger } from 'pino';
import { ANNOTATION_SERVICE_ACCOUNT_NAME, SECRET_TYPE_SERVICE_ACCOUNT_TOKEN } from '../api/labels.js';
import type { KubeApi } from '../kube/client.js';
import { errorMessage, isNotFound } from '../kube/errors.js';
import { apiPaths, getOrUndefined, secretToken, type SecretJson } from '../kube/resources.js';
import { readTokenClaims } from '../probe/claims.js';
import { pollUntil } from './procedures/procedure.js';

/** The apiserver's trusted signing keys, as the canary needs them (see TrustedKeys). */
export interface SignerCheck {
  /** Reads the trusted set again (a rotation may have changed it seconds ago). */
  refresh(): Promise<void>;
  current(): ReadonlySet<string> | undefined;
}

export interface CanaryDeps {
  client: KubeApi;
  logger: Logger;
  /** The operator's own namespace: the canary lives there, never in a tenant's. */
  namespace: string;
  /** A ServiceAccount with no permissions, created by the operator when missing. */
  serviceAccountName: string;
  now: () => number;
  /** How long the tokens controller may take to fill the canary. */
  fillTimeoutMs?: number;
  /** A proof of life stays good this long (and a failed one is not repeated sooner). */
  freshForMs?: number;
  /** When set, the canary's token must be signed with a key the apiserver trusts. */
  keys?: SignerCheck;
  /** Told the key the tokens controller signs with and whether the apiserver trusts it, after every fill. */
  onSigner?: (keyID: string, trusted: boolean, trustedKeys: ReadonlySet<string>) => void | Promise<void>;
}

/**
 * How long a proof of life holds: short, because a heal that starts after the tokens controller died
 * would delete a secret nobody replaces; long enough that a burst of heals after a key rotation shares one.
 */
export const CANARY_FRESH_FOR_MS = 10_000;

export type CanaryResult = { ok: true } | { ok: false; message: string };

/**
 * Proof that kube-controller-manager's tokens controller is working right now, asked before any token
 * secret is deleted: a deleted secret is replaced only if that controller fills the replacement. The
 * canary is a token secret of a permission-less account in the operator's own namespace, created,
 * watched until it is filled, and deleted again. Only its token's header is read: the key id (`kid`) it
 * is signed with must be one the apiserver trusts, or every heal would mint another dead token (a key
 * rotation done in the wrong order): heals are then paused until the two agree.
 */
export class TokensControllerCanary {
  private last: { startedAt: number; at: number; result: CanaryResult } | undefined;
  private inFlight: { startedAt: number; result: Promise<CanaryResult> } | undefined;

  constructor(private readonly deps: CanaryDeps) {}

  /**
   * The tokens controller's proof of life. `notBefore`: only a proof that started at or after that time
   * counts (a heal passes the time it began confirming its rejection, so a controller that stopped or
   * switched to an untrusted key since an earlier proof is noticed); heals that start together still
   * share one canary.
   */
  check(notBefore = 0): Promise<CanaryResult> {
    const { now, freshForMs = CANARY_FRESH_FOR_MS } = this.deps;
    const last = this.last;
    if (last !== undefined && last.startedAt >= notBefore && now() - last.at < freshForMs)
      return Promise.resolve(last.result);
    if (this.inFlight && this.inFlight.startedAt >= notBefore) return this.inFlight.result;
    const startedAt = now();
    const flight: { startedAt: number; result: Promise<CanaryResult> } = {
      startedAt,
      result: this.probe().then((result) => {
        if (!this.last || this.last.startedAt <= startedAt)
          this.last = { startedAt, at: this.deps.now(), result };
        if (this.inFlight === flight) this.inFlight = undefined;
        return result;
      }),
    };
    this.inFlight = flight;
    return flight.result;
  }

  private async probe(): Promise<CanaryResult> {
    const { namespace, fillTimeoutMs = 15_000 } = this.deps;
    try {
      const created = await this.ensureAccount();
      // A brand-new account may not be in the tokens controller's cache yet; it then deletes the
      // canary as an orphan. One more try covers that; anything else is an answer.
      let outcome = await this.tryOnce();
      if (outcome.state === 'gone' && created) outcome = await this.tryOnce();
      if (outcome.state === 'filled') return await this.judgeSigner(outcome.keyID);
      return {
        ok: false,
        message:
          `kube-controller-manager's tokens controller did not fill a test token secret in namespace ${namespace} ` +
          `within ${Math.round(fillTimeoutMs / 1000)}s, so a deleted token secret would not be replaced: nothing ` +
          `was deleted. Check that kube-controller-manager runs with --service-account-private-key-file and ` +
          `its tokens controller enabled; healing resumes once it fills secrets again.`,
      };
    } catch (err) {
      return {
        ok: false,
        message: `The operator could not test kube-controller-manager's tokens controller in namespace ${namespace} (${errorMessage(err)}), so nothing was deleted.`,
      };
    }
  }

  /** A filled canary proves the tokens controller works; its key must also be one the apiserver trusts. */
  private async judgeSigner(keyID: string | undefined): Promise<CanaryResult> {
    const { keys, onSigner } = this.deps;
    if (!keys || keyID === undefined) return { ok: true };
    await keys.refresh();
    const trusted = keys.current();
    if (!trusted) return { ok: true };
    const ok = trusted.has(keyID);
    await onSigner?.(keyID, ok, trusted);
    if (ok) return { ok: true };
    return {
      ok: false,
      message:
        `kube-controller-manager signs new tokens with key ${keyID}, which the apiserver does not trust (it ` +
        `publishes ${[...trusted].slice(0, 5).join(', ')}): a replaced secret would get another token the ` +
        `apiserver rejects, so nothing was deleted. The signing key was rotated in the wrong order: add its ` +
        `public key to kube-apiserver's --service-account-key-file (or give kube-controller-manager's ` +
        `--service-account-private-key-file a trusted key); heals resume once the two agree.`,
    };
  }

  /** Creates one canary, waits for its token, deletes it. */
  private async tryOnce(): Promise<{ state: 'filled'; keyID?: string } | { state: 'gone' | 'empty' }> {
    const { client, namespace, serviceAccountName, now, fillTimeoutMs = 15_000 } = this.deps;
    const created = await client.post<SecretJson>(
      apiPaths.secrets(namespace),
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          generateName: `${serviceAccountName}-`,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'authprobe', 'authprobe.io/canary': 'true' },
          annotations: { [ANNOTATION_SERVICE_ACCOUNT_NAME]: serviceAccountName },
        },
        type: SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
      },
      { timeoutMs: 10_000 },
    );
    const name = created.metadata.name;
    try {
      const seen = await pollUntil(now, now() + fillTimeoutMs, async () => {
        const secret = await getOrUndefined<SecretJson>(client, apiPaths.secret(namespace, name), {
          timeoutMs: 10_000,
        });
        if (!secret) return { state: 'gone' as const };
        const token = secretToken(secret);
        if (token === undefined) return undefined;
        const keyID = readTokenClaims(token).keyId;
        return { state: 'filled' as const, ...(keyID !== undefined ? { keyID } : {}) };
      });
      return seen ?? { state: 'empty' };
    } finally {
      await this.remove(name);
    }
  }

  /** True when the account had to be created just now. */
  private async ensureAccount(): Promise<boolean> {
    const { client, namespace, serviceAccountName } = this.deps;
    if (
      await getOrUndefined(client, apiPaths.serviceAccount(namespace, serviceAccountName), {
        timeoutMs: 10_000,
      })
    ) {
      return false;
    }
    await client.post(
      apiPaths.serviceAccounts(namespace),
      {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: {
          name: serviceAccountName,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'authprobe' },
        },
        automountServiceAccountToken: false,
      },
      { timeoutMs: 10_000 },
    );
    return true;
  }

  private async remove(name: string): Promise<void> {
    try {
      await this.deps.client.delete(apiPaths.secret(this.deps.namespace, name), undefined, {
        timeoutMs: 10_000,
      });
    } catch (err) {
      if (!isNotFound(err))
        this.deps.logger.warn(
          { secret: name, err: errorMessage(err) },
          'could not delete the canary token secret',
        );
    }
  }
}
