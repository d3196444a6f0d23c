import type { TokenClaims } from './result.js';

/**
 * The token's public claims (header and payload of the JWT; the signature is not looked at). They say
 * whether a rejected token is legacy or bound, which key signed it and when it expires.
 */
export function readTokenClaims(token: string): TokenClaims {
  const [header, payload] = token.split('.');
  try {
    const h = JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const p = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const kind = p['kubernetes.io']
      ? 'bound'
      : p['kubernetes.io/serviceaccount/secret.name']
        ? 'legacy'
        : 'unknown';
    const claims: TokenClaims = { kind };
    const fields: Array<[keyof TokenClaims, string | undefined]> = [
      ['issuer', asString(p['iss'])],
      ['subject', asString(p['sub'])],
      ['keyId', asString(h['kid'])],
      ['issuedAt', toIsoSeconds(p['iat'])],
      ['expiresAt', toIsoSeconds(p['exp'])],
    ];
    for (const [key, value] of fields) if (value !== undefined) Object.assign(claims, { [key]: value });
    return claims;
  } catch {
    return { kind: 'unknown' };
  }
}

function toIsoSeconds(epochSeconds: unknown): string | undefined {
  return typeof epochSeconds === 'number' ? new Date(epochSeconds * 1000).toISOString() : undefined;
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
