/**
 * Tokens copied out of their secret into another system's Secret, in the three shapes users keep them:
 * a key holding the bearer token, a key holding a kubeconfig, and an Argo CD cluster Secret. Pure: reads
 * a copy (the token, the server it is used with and the CA stored beside it) and rewrites only the token,
 * leaving every other byte of the Secret as it was.
 */
import { load } from 'js-yaml';
import type { CopyFormat } from '../api/types.js';

/** The label Argo CD puts on its cluster Secrets. */
export const ARGOCD_SECRET_TYPE_LABEL = 'argocd.argoproj.io/secret-type';

export interface CopyLocation {
  format: CopyFormat;
  /** Token: the key holding the token (default "token"); Kubeconfig: the key holding it (default "kubeconfig"). */
  key?: string;
  /** Kubeconfig: the user whose token it is (default: the current context's user). */
  user?: string;
}

/** What a copy holds: the token, and where and how it is used (absent server: this cluster). */
export interface ReadCopy {
  token: string;
  /** The server the copy is used with; undefined for a bare token (used with this cluster). */
  server?: string;
  /** PEM of the CA the copy trusts for that server; undefined: the system or this cluster's CA. */
  caPem?: string;
  /** The copy skips TLS verification (reported; the operator still verifies with the CA it has). */
  insecure?: boolean;
  /** Where in the Secret the token sits, for messages ("data.kubeconfig users[admin]"). */
  where: string;
}

export type CopyResult<T> = { ok: true; value: T } | { ok: false; message: string };

const fail = <T>(message: string): CopyResult<T> => ({ ok: false, message });
const decode = (b64: string | undefined): string | undefined =>
  b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');

export const defaultKey = (location: CopyLocation): string =>
  location.key ?? (location.format === 'Kubeconfig' ? 'kubeconfig' : 'token');

interface Kubeconfig {
  'current-context'?: string;
  contexts?: Array<{ name?: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{
    name?: string;
    cluster?: {
      server?: string;
      'certificate-authority-data'?: string;
      'insecure-skip-tls-verify'?: boolean;
    };
  }>;
  users?: Array<{ name?: string; user?: { token?: string } }>;
}

interface ArgoConfig {
  bearerToken?: string;
  tlsClientConfig?: { caData?: string; insecure?: boolean };
}

/** Reads the copy in `data` (a Secret's base64 data) as `location` says. */
export function readCopy(
  data: Record<string, string> | undefined,
  location: CopyLocation,
): CopyResult<ReadCopy> {
  const values = data ?? {};
  switch (location.format) {
    case 'Token': {
      const key = defaultKey(location);
      const token = decode(values[key])?.trim();
      if (!token) return fail(`the Secret has no key "${key}" holding a token (copy.key)`);
      return { ok: true, value: { token, where: `data.${key}` } };
    }
    case 'Kubeconfig': {
      const key = defaultKey(location);
      const text = decode(values[key]);
      if (text === undefined) return fail(`the Secret has no key "${key}" holding a kubeconfig (copy.key)`);
      let config: Kubeconfig;
      try {
        config = (load(text) ?? {}) as Kubeconfig;
      } catch (err) {
        return fail(`data.${key} is not a readable kubeconfig (${(err as Error).message.split('\n')[0]})`);
      }
      const context = config.contexts?.find((c) => c.name === config['current-context'])?.context;
      const userName = location.user ?? context?.user;
      if (!userName) return fail(`data.${key} has no current context naming a user; set copy.user`);
      const user = config.users?.find((u) => u.name === userName);
      const token = user?.user?.token;
      if (!token) return fail(`data.${key} has no user "${userName}" with a token (copy.user)`);
      // The cluster this user is used with: the context that names the user (the current one first).
      const ctx =
        context?.user === userName
          ? context
          : config.contexts?.find((c) => c.context?.user === userName)?.context;
      const cluster = config.clusters?.find((c) => c.name === ctx?.cluster)?.cluster;
      if (!cluster?.server)
        return fail(`data.${key} has no cluster with a server for a context of user "${userName}"`);
      return {
        ok: true,
        value: {
          token,
          server: cluster.server,
          ...(cluster['certificate-authority-data']
            ? { caPem: decode(cluster['certificate-authority-data']) }
            : {}),
          ...(cluster['insecure-skip-tls-verify'] ? { insecure: true } : {}),
          where: `data.${key} users[${userName}]`,
        },
      };
    }
    case 'ArgoCDCluster': {
      const server = decode(values['server'])?.trim();
      const text = decode(values['config']);
      if (!server) return fail('the Argo CD cluster Secret has no "server" key');
      if (text === undefined) return fail('the Argo CD cluster Secret has no "config" key');
      let config: ArgoConfig;
      try {
        config = JSON.parse(text) as ArgoConfig;
      } catch {
        return fail('data.config of the Argo CD cluster Secret is not JSON');
      }
      if (!config.bearerToken) return fail('data.config of the Argo CD cluster Secret has no bearerToken');
      const ca = config.tlsClientConfig?.caData;
      return {
        ok: true,
        value: {
          token: config.bearerToken,
          server,
          ...(ca ? { caPem: decode(ca) } : {}),
          ...(config.tlsClientConfig?.insecure ? { insecure: true } : {}),
          where: 'data.config bearerToken',
        },
      };
    }
  }
}

/**
 * The Secret's data with the copy's token replaced by `token`, and nothing else changed: the old token
 * is replaced where it is, as text, so every other byte of that key (and every other key) stays as it
 * was. Refuses when the old token does not occur exactly once, or when reading the result does not give
 * the new token back.
 */
export function rewriteCopy(
  data: Record<string, string> | undefined,
  location: CopyLocation,
  token: string,
): CopyResult<Record<string, string>> {
  const current = readCopy(data, location);
  if (!current.ok) return current;
  if (!/^[A-Za-z0-9._-]+$/.test(token)) return fail('the new token is not a JWT');
  const key = location.format === 'ArgoCDCluster' ? 'config' : defaultKey(location);
  const text = decode(data?.[key]) ?? '';
  const old = current.value.token;
  const first = text.indexOf(old);
  if (first < 0 || text.indexOf(old, first + old.length) >= 0)
    return fail(`the token does not occur exactly once in data.${key}; nothing was written`);
  const rewritten = text.slice(0, first) + token + text.slice(first + old.length);
  const next = { ...data, [key]: Buffer.from(rewritten, 'utf8').toString('base64') };
  const check = readCopy(next, location);
  if (!check.ok || check.value.token !== token)
    return fail(`data.${key} did not read back with the new token; nothing was written`);
  return { ok: true, value: next };
}
