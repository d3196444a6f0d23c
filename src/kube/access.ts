import { readFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import type https from 'node:https';
import { load as loadYaml } from 'js-yaml';
import { SERVICE_ACCOUNT_DIR } from '../probe/result.js';

/**
 * How the operator reaches the apiserver: the server URL and the credentials to put on each request.
 *
 * This is a small loader of its own rather than `@kubernetes/client-node`'s KubeConfig: importing
 * client-node pulls in its whole generated API (about 65 MiB of resident memory in a process that
 * otherwise needs about 60 MiB). Token, client-certificate and in-cluster credentials, which are all
 * the operator and the test cluster use, are handled here; a kubeconfig user with an `exec` plugin
 * or an `auth-provider` (cloud workstations running `authprobe check`) is handed to client-node,
 * imported only then.
 */
export interface ClusterAccess {
  readonly server: URL;
  /** Where the settings came from, for log lines and errors (never a credential). */
  readonly source: string;
  /** The namespace of the current context (or of the in-cluster service account), if any. */
  readonly namespace?: string;
  /** Adds TLS settings and the Authorization header to one request's options. */
  apply(options: https.RequestOptions): Promise<void>;
}

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeconfigError';
  }
}

/** A token file is read again after this long, so a token the kubelet re-issued is picked up. */
export const TOKEN_FILE_REFRESH_MS = 5_000;

export interface LoadOptions {
  /** An explicit kubeconfig file (a `--kubeconfig` flag); wins over everything else. */
  kubeconfig?: string;
  env?: NodeJS.ProcessEnv;
  /** Directory of the in-cluster service account files (tests point it elsewhere). */
  serviceAccountDir?: string;
  home?: string;
  now?: () => number;
}

/**
 * Finds the cluster the way controller-runtime does: an explicit file, then `KUBECONFIG` (a
 * `:`-separated list, merged with the first file winning), then in-cluster (the pod's service
 * account), then `~/.kube/config`. Fails with a message that says what was looked for.
 */
export async function loadClusterAccess(options: LoadOptions = {}): Promise<ClusterAccess> {
  const env = options.env ?? process.env;
  const saDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const now = options.now ?? Date.now;
  if (options.kubeconfig) return fromKubeconfigFiles([options.kubeconfig], now);
  const listed = (env.KUBECONFIG ?? '').split(':').filter(Boolean);
  if (listed.length > 0) return fromKubeconfigFiles(listed, now);
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(saDir, 'token'))) {
    return inCluster(env, saDir, now);
  }
  const home = join(options.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromKubeconfigFiles([home], now);
  throw new KubeconfigError(
    'no cluster to talk to: set KUBECONFIG (or --kubeconfig), or run in a pod with a service account token ' +
      `(${saDir}/token and KUBERNETES_SERVICE_HOST), or create ~/.kube/config`,
  );
}

function inCluster(env: NodeJS.ProcessEnv, saDir: string, now: () => number): ClusterAccess {
  const host = env.KUBERNETES_SERVICE_HOST as string;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  const server = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
  const ca = readFileSync(join(saDir, 'ca.crt'));
  const token = new TokenFile(join(saDir, 'token'), now);
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(saDir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return {
    server,
    source: `in-cluster (${saDir})`,
    ...(namespace ? { namespace } : {}),
    apply: async (o) => {
      o.ca = ca;
      setAuthorization(o, `Bearer ${token.read()}`);
    },
  };
}

/** A token file, re-read at most every TOKEN_FILE_REFRESH_MS (the kubelet rewrites projected tokens). */
export class TokenFile {
  private value = '';
  private readAt = -Infinity;

  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
  ) {}

  read(): string {
    const t = this.now();
    if (t - this.readAt >= TOKEN_FILE_REFRESH_MS || !this.value) {
      try {
        this.value = readFileSync(this.path, 'utf8').trim();
        this.readAt = t;
      } catch (err) {
        // Keep the last token when the file is briefly missing (the kubelet swaps a symlink).
        if (!this.value) {
          throw new KubeconfigError(`cannot read the token file ${this.path}: ${(err as Error).message}`);
        }
      }
    }
    return this.value;
  }
}

// ---------------------------------------------------------------------------------------------
// kubeconfig files

interface Named<T> {
  name: string;
  value: T;
}
interface KcCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
  'proxy-url'?: string;
}
interface KcUser {
  token?: string;
  tokenFile?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  'auth-provider'?: unknown;
}
interface KcContext {
  cluster?: string;
  user?: string;
  namespace?: string;
}
/** One entry with the directory of the file it came from (relative paths resolve against it). */
interface FromFile<T> {
  value: T;
  dir: string;
}

interface MergedKubeconfig {
  files: string[];
  currentContext?: string;
  clusters: Map<string, FromFile<KcCluster>>;
  users: Map<string, FromFile<KcUser>>;
  contexts: Map<string, FromFile<KcContext>>;
}

/** Reads and merges kubeconfig files as kubectl does: for every name, the first file that sets it wins. */
function readKubeconfigFiles(paths: string[]): MergedKubeconfig {
  const merged: MergedKubeconfig = { files: [], clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      // kubectl skips listed files that do not exist; an explicit single file must exist.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && paths.length > 1) continue;
      throw new KubeconfigError(`cannot read kubeconfig ${path}: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = loadYaml(text);
    } catch (err) {
      throw new KubeconfigError(
        `kubeconfig ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
      );
    }
    if (doc === undefined || doc === null) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      throw new KubeconfigError(`kubeconfig ${path} is not a mapping (apiVersion: v1, kind: Config)`);
    }
    merged.files.push(path);
    const dir = dirname(path);
    const d = doc as Record<string, unknown>;
    if (!merged.currentContext && typeof d['current-context'] === 'string' && d['current-context']) {
      merged.currentContext = d['current-context'];
    }
    addNamed(merged.clusters, d.clusters, 'cluster', path, dir);
    addNamed(merged.users, d.users, 'user', path, dir);
    addNamed(merged.contexts, d.contexts, 'context', path, dir);
  }
  if (merged.files.length === 0) {
    throw new KubeconfigError(`none of the kubeconfig files exists or has content: ${paths.join(', ')}`);
  }
  return merged;
}

function addNamed<T>(
  into: Map<string, FromFile<T>>,
  list: unknown,
  key: string,
  path: string,
  dir: string,
): void {
  if (list === undefined || list === null) return;
  if (!Array.isArray(list)) throw new KubeconfigError(`kubeconfig ${path}: ${key}s must be a list`);
  for (const [i, entry] of (list as Array<Partial<Named<T>> & Record<string, unknown>>).entries()) {
    const name = entry?.name;
    if (typeof name !== 'string' || !name) {
      throw new KubeconfigError(`kubeconfig ${path}: ${key}s[${i}] has no name`);
    }
    if (!into.has(name)) into.set(name, { value: (entry[key] ?? {}) as T, dir });
  }
}

async function fromKubeconfigFiles(paths: string[], now: () => number): Promise<ClusterAccess> {
  const kc = readKubeconfigFiles(paths);
  const where = kc.files.join(':');
  const contextName = kc.currentContext;
  if (!contextName) {
    throw new KubeconfigError(
      `kubeconfig ${where} has no current-context: run kubectl config use-context NAME`,
    );
  }
  const context = kc.contexts.get(contextName);
  if (!context)
    throw new KubeconfigError(`kubeconfig ${where}: current-context "${contextName}" is not defined`);
  const clusterName = context.value.cluster;
  const cluster = clusterName ? kc.clusters.get(clusterName) : undefined;
  if (!cluster) {
    throw new KubeconfigError(
      `kubeconfig ${where}: context "${contextName}" names cluster "${clusterName ?? ''}", which is not defined`,
    );
  }
  const userName = context.value.user;
  const user = userName ? kc.users.get(userName) : undefined;
  if (userName && !user) {
    throw new KubeconfigError(
      `kubeconfig ${where}: context "${contextName}" names user "${userName}", which is not defined`,
    );
  }
  const c = cluster.value;
  if (!c.server) throw new KubeconfigError(`kubeconfig ${where}: cluster "${clusterName}" has no server`);
  let server: URL;
  try {
    server = new URL(c.server);
  } catch {
    throw new KubeconfigError(
      `kubeconfig ${where}: cluster "${clusterName}" server "${c.server}" is not a URL`,
    );
  }
  const source = `kubeconfig ${where} (context ${contextName})`;
  const namespace = context.value.namespace;
  const u = user?.value ?? {};
  if (u.exec || u['auth-provider']) return delegated(paths, server, source, namespace);
  if (c['proxy-url']) {
    throw new KubeconfigError(
      `kubeconfig ${where}: cluster "${clusterName}" sets proxy-url, which authprobe does not support`,
    );
  }
  const file = (p: string, dir: string): Buffer => {
    const full = isAbsolute(p) ? p : join(dir, p);
    try {
      return readFileSync(full);
    } catch (err) {
      throw new KubeconfigError(`kubeconfig ${where}: cannot read ${full}: ${(err as Error).message}`);
    }
  };
  const data = (b64: string): Buffer => Buffer.from(b64, 'base64');

  const ca = c['certificate-authority-data']
    ? data(c['certificate-authority-data'])
    : c['certificate-authority']
      ? file(c['certificate-authority'], cluster.dir)
      : undefined;
  const udir = user?.dir ?? cluster.dir;
  const cert = u['client-certificate-data']
    ? data(u['client-certificate-data'])
    : u['client-certificate']
      ? file(u['client-certificate'], udir)
      : undefined;
  const key = u['client-key-data']
    ? data(u['client-key-data'])
    : u['client-key']
      ? file(u['client-key'], udir)
      : undefined;
  if (Boolean(cert) !== Boolean(key)) {
    throw new KubeconfigError(
      `kubeconfig ${where}: user "${userName}" needs both a client certificate and a client key`,
    );
  }
  const tokenFile = u.tokenFile
    ? new TokenFile(isAbsolute(u.tokenFile) ? u.tokenFile : join(udir, u.tokenFile), now)
    : undefined;
  const staticToken = u.token;
  const basic =
    u.username !== undefined
      ? Buffer.from(`${u.username}:${u.password ?? ''}`).toString('base64')
      : undefined;
  return {
    server,
    source,
    ...(namespace ? { namespace } : {}),
    apply: async (o) => {
      if (ca) o.ca = ca;
      if (cert && key) {
        o.cert = cert;
        o.key = key;
      }
      if (c['insecure-skip-tls-verify']) o.rejectUnauthorized = false;
      if (c['tls-server-name']) o.servername = c['tls-server-name'];
      if (staticToken) setAuthorization(o, `Bearer ${staticToken}`);
      else if (tokenFile) setAuthorization(o, `Bearer ${tokenFile.read()}`);
      else if (basic) setAuthorization(o, `Basic ${basic}`);
    },
  };
}

/** exec plugins and auth providers: client-node runs them (imported only for such a kubeconfig). */
async function delegated(
  paths: string[],
  server: URL,
  source: string,
  namespace?: string,
): Promise<ClusterAccess> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (paths.length === 1) kc.loadFromFile(paths[0] as string);
  else kc.loadFromDefault();
  return {
    server,
    source: `${source}, credentials from an exec plugin or auth provider`,
    ...(namespace ? { namespace } : {}),
    apply: (o) => kc.applyToHTTPSOptions(o),
  };
}

function setAuthorization(o: https.RequestOptions, value: string): void {
  o.headers = { ...(o.headers as Record<string, string> | undefined), Authorization: value };
}
