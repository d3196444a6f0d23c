import { ProbeReason } from '../api/reasons.js';
import { provenInvalid, type Verdict } from '../api/verdict.js';

/** What the operator knows about the apiserver's trusted signing keys (see TrustedKeys). */
export interface KeyFacts {
  /** The key ids the apiserver publishes; undefined while unknown. */
  current(): ReadonlySet<string> | undefined;
  /** When a key id left the published set, if the operator saw it go. */
  retiredAt(kid: string): number | undefined;
  /** Reads the set again now (a key may have been added seconds ago). */
  refresh?(): Promise<void>;
}

/**
 * Names the cause of a plain 401 (TokenRejected) of a secret's token from the key that signed it:
 *  - its key id is not in the apiserver's published set → SigningKeyRetired (with the key id and, when
 *    the operator saw it leave, when): every token that key signed is dead; the heal replaces the secret
 *    with one the tokens controller signs with its current key (and the canary checks that key is trusted);
 *  - its key is still published → TokenRejected, said plainly: the cause is none of the known ones
 *    (the legacy cleaner's label and a recreated account or secret get their own reasons before this), and
 *    the heal goes ahead only after the second TokenReview some seconds later confirms it.
 * Other verdicts pass through unchanged. The key id comes from the secret the operator read itself.
 */
export function nameRejectionCause(found: Verdict, keys: KeyFacts | undefined): Verdict {
  if (found.reason !== ProbeReason.TokenRejected || !found.tokenProvenInvalid) return found;
  const trusted = keys?.current();
  const kid = found.tokenKeyID;
  if (!trusted || kid === undefined) return found;
  const carried = {
    ...(found.httpStatus !== undefined ? { httpStatus: found.httpStatus } : {}),
    ...(found.latencyMs !== undefined ? { latencyMs: found.latencyMs } : {}),
  };
  const keep = (v: Verdict): Verdict => ({
    ...v,
    ...(found.pod !== undefined ? { pod: found.pod } : {}),
    ...(found.probeNow !== undefined ? { probeNow: found.probeNow } : {}),
    ...(found.generation !== undefined ? { generation: found.generation } : {}),
    ...(found.tokenIssuer !== undefined ? { tokenIssuer: found.tokenIssuer } : {}),
    tokenKeyID: kid,
  });
  if (trusted.has(kid)) {
    return keep(
      provenInvalid(
        ProbeReason.TokenRejected,
        `${found.message} The token is signed by key ${kid}, which the apiserver still trusts, so the signing key ` +
          `is not the cause; it is replaced only after a second TokenReview a few seconds later also rejects it.`,
        carried,
      ),
    );
  }
  const left = keys?.retiredAt(kid);
  const when =
    left !== undefined
      ? `it left the apiserver's published key set at ${new Date(left).toISOString()}`
      : `it is not among the ${trusted.size} key(s) the apiserver publishes (${[...trusted].slice(0, 5).join(', ')})`;
  return keep(
    provenInvalid(
      ProbeReason.SigningKeyRetired,
      `SigningKeyRetired: the token is rejected (401) because it is signed by key ${kid}, which the apiserver no ` +
        `longer trusts: ${when}. Every token that key signed fails the same way; a new token secret gets a ` +
        `token signed with kube-controller-manager's current key.`,
      carried,
    ),
  );
}
