import type { ResolvedCopy } from '../../api/defaults.js';
import { EventReason, HealAction, HealReason, withWorkloadsRestarted } from '../../api/reasons.js';
import type { AuthProbe } from '../../api/types.js';
import type { Verdict } from '../../api/verdict.js';
import type { CopyFound } from '../../checks/copy/copy-check.js';
import { judgeTokenSecret } from '../../checks/provenance.js';
import { rewriteCopy } from '../../copies/copy-format.js';
import { errorMessage, isConflict } from '../../kube/errors.js';
import {
  apiPaths,
  getOrUndefined,
  secretToken,
  serviceAccountUsername,
  type SecretJson,
  type ServiceAccountJson,
} from '../../kube/resources.js';
import { reviewToken } from '../../kube/token-review.js';
import type { ResolvedSpec } from '../../api/defaults.js';
import { readTokenClaims } from '../../probe/claims.js';
import { KubeClient, type KubeApi } from '../../kube/client.js';
import { mintingAccess } from '../../copies/minting-credentials.js';
import { restartConsumers } from '../workloads.js';
import { blocked, type HealContext, type HealServices, type ProcedureResult } from './procedure.js';

/** The copy check, run again by the procedure (around the watch cache). */
export type CopyRecheck = (
  probe: AuthProbe,
  spec: ResolvedSpec,
) => Promise<{ verdict: Verdict; found?: CopyFound }>;

/** A new token for the account: its text (never logged) and what to say about it. */
interface Minted {
  token: string;
  how: string;
}

/**
 * Writes a new token into a copy that is proven invalid, or about to expire: the new token comes from
 * the TokenRequest API (with the lifetime the spec asks) or from the account's token secret (which must
 * itself authenticate as the account); only the token inside the copy changes (src/copies), in one
 * merge patch of that data key with the copy's resourceVersion as a precondition; then the copy is
 * checked again where it is used. A rejection is confirmed by a second check a few seconds after the
 * first before anything is written.
 */
export class RewriteCopy {
  readonly kind = HealAction.CopyRewritten;

  constructor(
    private readonly services: HealServices,
    private readonly recheck: CopyRecheck,
    private readonly reconfirmAfterMs: number,
  ) {}

  /** The second confirmation of a rejection: the copy, read fresh, is still rejected. */
  async confirm(ctx: HealContext): Promise<{ ok: true; found: CopyFound } | { ok: false; verdict: Verdict }> {
    if (this.reconfirmAfterMs > 0) await new Promise((resolve) => setTimeout(resolve, this.reconfirmAfterMs));
    const again = await this.recheck(ctx.probe, ctx.spec);
    if (!again.verdict.tokenProvenInvalid || !again.found) return { ok: false, verdict: again.verdict };
    return { ok: true, found: again.found };
  }

  /** The copy read again around the cache (for a renewal: the secret's current resourceVersion). */
  async recheckFresh(ctx: HealContext): Promise<CopyFound | undefined> {
    return (await this.recheck(ctx.probe, ctx.spec)).found;
  }

  /** Writes a new token into the copy `found` (read fresh); `why` says what for in the Event. */
  async begin(ctx: HealContext, found: CopyFound, why: 'rejected' | 'renewal'): Promise<ProcedureResult> {
    const { client, recorder } = this.services;
    const copy = ctx.spec.copy as ResolvedCopy;
    const ns = ctx.probe.metadata.namespace;
    const accountNs = copy.serviceAccountNamespace ?? ns;
    if (found.local && accountNs !== ns) {
      return blocked(
        `spec.copy.serviceAccountNamespace (${accountNs}) names another namespace of this cluster: tokens are only ` +
          `minted for accounts of the AuthProbe's own namespace, so nothing was written.`,
      );
    }
    if (!found.local && (copy.renew.from !== 'TokenRequest' || !copy.renew.credentialsSecretName)) {
      // A token of this cluster's account would not authenticate there: never write one.
      return blocked(
        `The copy in secret ${copy.secretName} is used with ${found.server.origin}, another cluster: a new token ` +
          `can only come from that cluster. Give the operator a credential for it that may create ` +
          `serviceaccounts/token for ${accountNs}/${ctx.spec.serviceAccountName} (spec.copy.renew.credentialsSecretName); ` +
          `nothing was written.`,
      );
    }
    // The rejected token must itself say it was this account's (its own `sub` claim): a copy of someone
    // else's token is not this AuthProbe's to rewrite.
    const expected = serviceAccountUsername(accountNs, ctx.spec.serviceAccountName);
    const issuedFor = readTokenClaims(found.copy.token).subject;
    if (why === 'rejected' && issuedFor !== expected) {
      return blocked(
        `The rejected token in secret ${copy.secretName} was issued for ${issuedFor ?? 'an unknown subject'}, not for ` +
          `${expected}: it is not provably a copy of this account's token, so nothing was written.`,
      );
    }
    const minted = await this.mint(ctx, found);
    if ('kind' in minted) return minted;
    const data = rewriteCopy(found.secret.data, copy, minted.token);
    if (!data.ok)
      return blocked(`The new token could not be written into secret ${copy.secretName}: ${data.message}.`);
    const changedKey =
      copy.format === 'ArgoCDCluster'
        ? 'config'
        : Object.keys(data.value).find((k) => data.value[k] !== found.secret.data?.[k]);
    try {
      await client.mergePatch(
        apiPaths.secret(ns, copy.secretName),
        {
          metadata: { resourceVersion: found.secret.metadata.resourceVersion },
          data: changedKey ? { [changedKey]: data.value[changedKey] } : {},
        },
        { timeoutMs: 15_000 },
      );
    } catch (err) {
      if (isConflict(err)) {
        await recorder.record(
          ctx.target,
          'Normal',
          EventReason.HealAborted,
          `Secret ${copy.secretName} changed after the copy was checked; nothing was written. Checking it again.`,
        );
        return { kind: 'aborted', verdict: (await this.recheck(ctx.probe, ctx.spec)).verdict };
      }
      return {
        kind: 'failed',
        message: `Writing the new token into secret ${copy.secretName} failed: ${errorMessage(err)}.`,
      };
    }
    await recorder.record(
      ctx.target,
      'Normal',
      EventReason.CopyRewritten,
      `${why === 'renewal' ? 'Renewed' : 'Replaced'} the token in secret ${copy.secretName} (${found.copy.where}) with ${minted.how}; every other key and field is as it was.`,
    );
    const after = await this.recheck(ctx.probe, ctx.spec);
    if (after.verdict.readyStatus !== 'True') {
      return {
        kind: 'failed',
        message: `The new token was written into secret ${copy.secretName}, but the copy still does not authenticate: ${after.verdict.message}`,
      };
    }
    let action: string = this.kind;
    if (ctx.spec.heal.restartWorkloads) {
      const restarted = await restartConsumers(this.services, ctx, copy.secretName);
      if (restarted.length) action = withWorkloadsRestarted(this.kind);
    }
    const healed =
      why === 'renewal'
        ? after.verdict
        : {
            ...after.verdict,
            reason: HealReason.Healed,
            message: `The copy in secret ${copy.secretName} was rejected and now holds ${minted.how}, which authenticates: ${after.verdict.message}`,
          };
    return { kind: 'healed', action, verdict: healed };
  }

  /**
   * A client for the copy's (other) cluster from the user's minting credential: it must name the very
   * server the copy is used with, so a token is never minted on a third cluster.
   */
  private async remoteClient(
    ctx: HealContext,
    found: CopyFound,
    secretName: string,
  ): Promise<KubeClient | ProcedureResult> {
    const ns = ctx.probe.metadata.namespace;
    const secret = await getOrUndefined<SecretJson>(this.services.client, apiPaths.secret(ns, secretName), {
      timeoutMs: 15_000,
    });
    if (!secret)
      return blocked(
        `The minting credential secret ${secretName} (spec.copy.renew.credentialsSecretName) does not exist.`,
      );
    const access = mintingAccess(secret.data, secretName);
    if (!access.ok)
      return blocked(`The minting credential is not usable: ${access.message}; nothing was written.`);
    if (access.value.server.origin !== found.server.origin) {
      return blocked(
        `The minting credential in secret ${secretName} is for ${access.value.server.origin}, but the copy is used with ` +
          `${found.server.origin}: nothing was written.`,
      );
    }
    return new KubeClient(access.value);
  }

  /** A new token of the account, from where the spec says (for another cluster: from that cluster). */
  private async mint(ctx: HealContext, found: CopyFound): Promise<Minted | ProcedureResult> {
    const { now } = this.services;
    const copy = ctx.spec.copy as ResolvedCopy;
    const ns = copy.serviceAccountNamespace ?? ctx.probe.metadata.namespace;
    const account = ctx.spec.serviceAccountName;
    if (copy.renew.from === 'TokenRequest') {
      let client: KubeApi = this.services.client;
      let remote: KubeClient | undefined;
      if (!found.local && copy.renew.credentialsSecretName) {
        const opened = await this.remoteClient(ctx, found, copy.renew.credentialsSecretName);
        if (!(opened instanceof KubeClient)) return opened;
        remote = opened;
        client = remote;
      }
      try {
        const answer = await client.post<{ status?: { token?: string; expirationTimestamp?: string } }>(
          `${apiPaths.serviceAccount(ns, account)}/token`,
          {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: { expirationSeconds: copy.renew.expirationSeconds },
          },
          { timeoutMs: 15_000 },
        );
        const token = answer.status?.token;
        if (!token)
          return { kind: 'failed', message: `The TokenRequest for ${ns}/${account} returned no token.` };
        const expires =
          answer.status?.expirationTimestamp ??
          new Date(now() + copy.renew.expirationSeconds * 1000).toISOString();
        return {
          token,
          how: `a TokenRequest token of ${ns}/${account} that expires at ${expires} (key ${readTokenClaims(token).keyId ?? 'unknown'})`,
        };
      } catch (err) {
        return {
          kind: 'failed',
          message: `The TokenRequest for ${ns}/${account}${remote ? ` on ${found.server.origin}` : ''} failed: ${errorMessage(err)}.`,
        };
      } finally {
        remote?.close();
      }
    }
    const { client } = this.services;
    // From the account's own token secret: provably its secret, and its token authenticates as it.
    const options = { timeoutMs: 15_000 };
    const sa = await getOrUndefined<ServiceAccountJson>(
      client,
      apiPaths.serviceAccount(ns, account),
      options,
    );
    if (!sa)
      return blocked(
        `ServiceAccount ${ns}/${account} does not exist, so no new token can be made for the copy.`,
      );
    const secret = await getOrUndefined<SecretJson>(
      client,
      apiPaths.secret(ns, copy.renew.secretName),
      options,
    );
    if (!secret)
      return blocked(
        `The account's token secret ${copy.renew.secretName} (spec.copy.renew.secretName) does not exist.`,
      );
    const notProvable = judgeTokenSecret(secret, account, sa.metadata.uid);
    if (notProvable) return blocked(`${notProvable.message} Its token is not copied anywhere.`);
    const token = secretToken(secret);
    if (!token) return blocked(`The account's token secret ${copy.renew.secretName} holds no token yet.`);
    const review = await reviewToken(client, token);
    if (!review.authenticated || review.username !== serviceAccountUsername(ns, account)) {
      return blocked(
        `The account's token secret ${copy.renew.secretName} does not authenticate as ${ns}/${account} either: an AuthProbe of that secret (token.source: Secret) heals it first; the copy is written once it works.`,
      );
    }
    return {
      token,
      how: `the token of secret ${copy.renew.secretName} (key ${readTokenClaims(token).keyId ?? 'unknown'})`,
    };
  }
}
