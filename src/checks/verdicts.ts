/**
 * What every check says the same way: the context a verdict is worded in, the verdicts a check
 * reaches without using the token (account or secret missing, token not issued), and the wording
 * helpers. Messages never contain a token: they are built from status codes, names and public claims
 * only, and texts that come from outside (apiserver, kubelet, probe pod) pass through quote().
 */
import type { ResolvedSpec } from '../api/defaults.js';
import { ProbeReason } from '../api/reasons.js';
import type { TokenSource } from '../api/types.js';
import { verdict, type Verdict } from '../api/verdict.js';
import { redactSecrets, type TokenClaims } from '../probe/result.js';

/** What the controller knows about the AuthProbe and the secret, to word a verdict. */
export interface ClassifyContext {
  namespace: string;
  serviceAccountName: string;
  tokenSource: TokenSource;
  /** spec.token.secretName, for source Secret. */
  secretName?: string;
  /** Value of the secret's kubernetes.io/legacy-token-invalid-since label, when it has one. */
  legacyTokenInvalidSince?: string;
}

export const MAX_QUOTED = 300;

/** Text from outside (apiserver, kubelet) shortened and redacted before it enters a message. */
export function quote(text: string | undefined): string {
  if (!text) return '';
  const clean = redactSecrets(text.replace(/\s+/g, ' ').trim());
  return clean.length > MAX_QUOTED ? `${clean.slice(0, MAX_QUOTED - 1)}…` : clean;
}

export function tokenDescription(ctx: ClassifyContext): string {
  return ctx.tokenSource === 'Secret'
    ? `the token in secret ${ctx.secretName ?? '(unnamed)'}`
    : `the projected token of ServiceAccount ${ctx.serviceAccountName}`;
}

export function describeClaims(claims: TokenClaims | undefined): string {
  if (!claims) return '';
  const parts = [
    claims.issuer && `issuer ${claims.issuer}`,
    claims.keyId && `key id ${claims.keyId}`,
    claims.issuedAt && `issued ${claims.issuedAt}`,
    claims.expiresAt && `expires ${claims.expiresAt}`,
  ].filter(Boolean);
  return parts.length > 0 ? ` (token ${parts.join(', ')})` : '';
}

export const SECRET_REJECTION_CAUSES =
  `Usual causes: the key that signed it was removed from the apiserver's --service-account-key-file, ` +
  `etcd was restored from another cluster, or the ServiceAccount was deleted and recreated. Nothing ` +
  `regenerates a token secret on current clusters; replacing the secret issues a new token.`;

export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---- Verdicts a check reaches without using the token ----------------------------------------------

export function serviceAccountNotFoundVerdict(ctx: ClassifyContext): Verdict {
  return verdict(
    ProbeReason.ServiceAccountNotFound,
    'False',
    `ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName} does not exist: no pod can run as it and ` +
      `no token is issued for it. Create it, or fix spec.serviceAccountName.`,
  );
}

export function secretNotFoundVerdict(ctx: ClassifyContext): Verdict {
  return verdict(
    ProbeReason.SecretNotFound,
    'False',
    `Secret ${ctx.namespace}/${ctx.secretName ?? '(unnamed)'} does not exist, so workloads that mount it ` +
      `cannot start. On Kubernetes 1.24 and later nobody creates token secrets automatically: create a ` +
      `Secret of type kubernetes.io/service-account-token annotated ` +
      `kubernetes.io/service-account.name: ${ctx.serviceAccountName}, or fix spec.token.secretName.`,
  );
}

export function tokenNotIssuedVerdict(ctx: ClassifyContext): Verdict {
  return verdict(
    ProbeReason.TokenNotIssued,
    'False',
    `Secret ${ctx.namespace}/${ctx.secretName ?? '(unnamed)'} holds no token: the tokens controller fills only ` +
      `secrets of type kubernetes.io/service-account-token annotated kubernetes.io/service-account.name: ` +
      `${ctx.serviceAccountName}, for a ServiceAccount that exists. Check the type and the annotation.`,
  );
}

/** The wording context of an AuthProbe's verdicts. */
export function classifyContext(
  probe: { metadata: { namespace: string } },
  spec: ResolvedSpec,
  legacyTokenInvalidSince?: string,
): ClassifyContext {
  return {
    namespace: probe.metadata.namespace,
    serviceAccountName: spec.serviceAccountName,
    tokenSource: spec.token.source,
    ...(spec.token.source === 'Secret' ? { secretName: spec.token.secretName } : {}),
    ...(legacyTokenInvalidSince !== undefined ? { legacyTokenInvalidSince } : {}),
  };
}
