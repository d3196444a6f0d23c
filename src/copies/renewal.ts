import { readTokenClaims } from '../probe/claims.js';

/** When a copy minted with an expiry is renewed: at half its lifetime, as Cluster API does. */
export function renewAt(token: string): number | undefined {
  const claims = readTokenClaims(token);
  if (!claims.issuedAt || !claims.expiresAt) return undefined;
  const issued = Date.parse(claims.issuedAt);
  const expires = Date.parse(claims.expiresAt);
  if (!Number.isFinite(issued) || !Number.isFinite(expires) || expires <= issued) return undefined;
  return issued + (expires - issued) / 2;
}
