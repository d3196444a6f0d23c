/**
 * The credential a user gives the operator to mint tokens on another cluster (copy.renew
 * .credentialsSecretName): a kubeconfig kept in a Secret, whose account should be allowed nothing but
 * `create serviceaccounts/token` for the one account. It comes from a namespace user, so only inline
 * data is read: a server, its CA, and a bearer token or a client certificate and key. File paths, exec
 * plugins, auth providers, proxies and insecure-skip-tls-verify are refused (each would let the author
 * make the operator read its files, run a command or talk without TLS).
 */
import { load } from 'js-yaml';
import type { ClusterAccess } from '../kube/access.js';
import type { CopyResult } from './copy-format.js';

/** The key of the Secret that holds the kubeconfig. */
export const MINTING_KUBECONFIG_KEY = 'kubeconfig';

interface Kubeconfig {
  'current-context'?: string;
  contexts?: Array<{ name?: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{ name?: string; cluster?: Record<string, unknown> }>;
  users?: Array<{ name?: string; user?: Record<string, unknown> }>;
}

const ALLOWED_CLUSTER_FIELDS = new Set(['server', 'certificate-authority-data', 'tls-server-name']);
const ALLOWED_USER_FIELDS = new Set(['token', 'client-certificate-data', 'client-key-data']);

/** A ClusterAccess for the kubeconfig in `data` (a Secret's base64 data), or why it cannot be used. */
export function mintingAccess(
  data: Record<string, string> | undefined,
  secretName: string,
): CopyResult<ClusterAccess> {
  const fail = (message: string): CopyResult<ClusterAccess> => ({
    ok: false,
    message: `secret ${secretName} (copy.renew.credentialsSecretName) ${message}`,
  });
  const text = data?.[MINTING_KUBECONFIG_KEY];
  if (text === undefined) return fail(`has no key "${MINTING_KUBECONFIG_KEY}" holding a kubeconfig`);
  let config: Kubeconfig;
  try {
    config = (load(Buffer.from(text, 'base64').toString('utf8')) ?? {}) as Kubeconfig;
  } catch {
    return fail('does not hold a readable kubeconfig');
  }
  const context = config.contexts?.find((c) => c.name === config['current-context'])?.context;
  const cluster = config.clusters?.find((c) => c.name === context?.cluster)?.cluster;
  const user = config.users?.find((u) => u.name === context?.user)?.user;
  if (!cluster || !user) return fail('has no current context with a cluster and a user');
  const extra = [
    ...Object.keys(cluster).filter((k) => !ALLOWED_CLUSTER_FIELDS.has(k)),
    ...Object.keys(user).filter((k) => !ALLOWED_USER_FIELDS.has(k)),
  ];
  if (extra.length)
    return fail(
      `uses ${extra.join(', ')}: only server, certificate-authority-data, tls-server-name, token, client-certificate-data and client-key-data are read from it`,
    );
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
  const serverText = str(cluster['server']);
  let server: URL;
  try {
    server = new URL(serverText ?? '');
  } catch {
    return fail('names no server URL');
  }
  if (server.protocol !== 'https:') return fail('names a server that is not https');
  const b64 = (v: unknown) => (str(v) ? Buffer.from(str(v) as string, 'base64') : undefined);
  const ca = b64(cluster['certificate-authority-data']);
  const cert = b64(user['client-certificate-data']);
  const key = b64(user['client-key-data']);
  const token = str(user['token']);
  const servername = str(cluster['tls-server-name']);
  if (!token && !(cert && key)) return fail('has neither a token nor a client certificate and key');
  return {
    ok: true,
    value: {
      server,
      source: `secret ${secretName}`,
      apply: async (o) => {
        if (ca) o.ca = ca;
        if (servername) o.servername = servername;
        if (cert && key) {
          o.cert = cert;
          o.key = key;
        }
        if (token) o.headers = { ...(o.headers as Record<string, string>), Authorization: `Bearer ${token}` };
      },
    },
  };
}
