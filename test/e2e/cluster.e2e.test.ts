/**
 * The seed's manual check (shared/seed/dashboard-token-auth-flow.txt), automated on a real cluster,
 * plus the failure the operator exists to heal: a legacy token secret that stops authenticating
 * after a service-account key rotation while projected tokens keep working.
 *
 * Reads KUBECONFIG. The rotation test needs the project's own test cluster (test/cluster/), because
 * it restarts its apiserver with new keys; pointed at another cluster it fails and says why.
 * Tokens are never printed: assertions are on status codes, lengths and review results.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import {
  AuthenticationV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Pod,
} from '@kubernetes/client-node';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../..');
const TOOLBOX = 'docker.io/authprobe/toolbox:1';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const CLUSTER_DIR = process.env.AUTHPROBE_CLUSTER_DIR ?? '/var/lib/authprobe-cluster';

const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const authn = kc.makeApiClient(AuthenticationV1Api);

/** True when KUBECONFIG is the admin kubeconfig of the cluster that test/cluster/up.sh runs here. */
const isOwnCluster = (): boolean => {
  const own = path.join(CLUSTER_DIR, 'kubeconfig');
  const current = (process.env.KUBECONFIG ?? '').split(':')[0] ?? '';
  return (
    current !== '' &&
    path.resolve(current) === own &&
    existsSync(path.join(CLUSTER_DIR, 'pids', 'kube-apiserver.pid'))
  );
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run('kubectl', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Runs a shell command in the pod's container (the toolbox has busybox sh and Debian's curl). */
async function podSh(ns: string, pod: string, script: string): Promise<string> {
  return kubectl('-n', ns, 'exec', pod, '--', 'sh', '-c', script);
}

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(1000);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`,
  );
}

async function startToolboxPod(ns: string, name: string, serviceAccountName: string): Promise<V1Pod> {
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name },
      spec: {
        serviceAccountName,
        terminationGracePeriodSeconds: 1,
        containers: [
          { name: 'toolbox', image: TOOLBOX, imagePullPolicy: 'IfNotPresent', command: ['sleep', '100000'] },
        ],
      },
    },
  });
  return waitFor(`pod ${ns}/${name} Running`, 120_000, async () => {
    const pod = await core.readNamespacedPod({ name, namespace: ns });
    return pod.status?.phase === 'Running' ? pod : undefined;
  });
}

/** In the pod: GET https://<kubernetes Service>/ with the mounted CA (no -k); prints the status code, body to /tmp/body. */
const curlFromPod = (withToken: boolean) =>
  [
    'curl -sS -o /tmp/body -w "%{http_code}" --max-time 15',
    `--cacert ${SA_DIR}/ca.crt`,
    // the token is read inside the pod: it never passes through this test process
    withToken ? `-H "Authorization: Bearer $(cat ${SA_DIR}/token)"` : '',
    'https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/',
  ].join(' ');

/** The apiserver's address and CA as the kubeconfig names them (for requests with a bare bearer token). */
function apiserverTarget(): { url: URL; ca: Buffer } {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in KUBECONFIG');
  const ca = cluster.caData
    ? Buffer.from(cluster.caData, 'base64')
    : cluster.caFile
      ? readFileSync(cluster.caFile)
      : undefined;
  if (!ca) throw new Error('the kubeconfig has no cluster CA');
  return { url: new URL(cluster.server), ca };
}

/** GET <path> on the apiserver with only a bearer token (no client certificate); resolves to the status code. */
function statusWithToken(token: string, urlPath: string): Promise<number> {
  const { url, ca } = apiserverTarget();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: url.hostname,
        port: url.port || 443,
        path: urlPath,
        method: 'GET',
        ca,
        headers: { Authorization: `Bearer ${token}` },
        timeout: 15_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function tokenReview(token: string) {
  const review = await authn.createTokenReview({ body: { spec: { token } } });
  return review.status ?? {};
}

describe('the seed flow on a real cluster', () => {
  const suffix = randomBytes(3).toString('hex');
  const ns = `authprobe-e2e-${suffix}`;
  const sa = 'dashboard';
  const rootReader = `authprobe-e2e-root-reader-${suffix}`;
  const legacySecret = 'dashboard-legacy-token';
  let legacyToken = '';

  beforeAll(async () => {
    await core.createNamespace({
      body: { metadata: { name: ns, labels: { 'app.kubernetes.io/part-of': 'authprobe-e2e' } } },
    });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    // GET / is not part of system:discovery on current clusters (the seed's cluster had no RBAC);
    // allow it for this one service account so the seed's request returns its `paths` document.
    await rbac.createClusterRole({
      body: { metadata: { name: rootReader }, rules: [{ nonResourceURLs: ['/'], verbs: ['get'] }] },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: rootReader },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: rootReader },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
      },
    });
    await startToolboxPod(ns, 'test', sa);
  }, 180_000);

  afterAll(async () => {
    await rbac.deleteClusterRoleBinding({ name: rootReader }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: rootReader }).catch(() => undefined);
    await core.deleteNamespace({ name: ns }).catch(() => undefined);
  }, 60_000);

  it('mounts ca.crt, namespace and token; the kubernetes Service answers 401 without a token and the paths document with it', async () => {
    const listing = (await podSh(ns, 'test', `ls ${SA_DIR}/`)).split(/\s+/).filter(Boolean);
    expect(listing).toEqual(expect.arrayContaining(['ca.crt', 'namespace', 'token']));
    expect((await podSh(ns, 'test', `cat ${SA_DIR}/namespace`)).trim()).toBe(ns);

    // the pod sees the kubernetes Service's ClusterIP, as in the seed's `kubectl get services`
    const svc = await core.readNamespacedService({ name: 'kubernetes', namespace: 'default' });
    expect((await podSh(ns, 'test', 'echo $KUBERNETES_SERVICE_HOST')).trim()).toBe(svc.spec?.clusterIP);

    const anonymous = await podSh(ns, 'test', curlFromPod(false));
    expect(anonymous).toBe('401');
    const anonymousBody = JSON.parse(await podSh(ns, 'test', 'cat /tmp/body')) as {
      reason?: string;
      code?: number;
    };
    expect(anonymousBody).toMatchObject({ reason: 'Unauthorized', code: 401 });

    const withToken = await podSh(ns, 'test', curlFromPod(true));
    expect(withToken).toBe('200');
    const doc = JSON.parse(await podSh(ns, 'test', 'cat /tmp/body')) as { paths?: string[] };
    expect(doc.paths).toEqual(expect.arrayContaining(['/api', '/apis', '/healthz', '/version']));
  }, 60_000);

  it('fills a hand-made kubernetes.io/service-account-token Secret, and its token authenticates', async () => {
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: legacySecret, annotations: { 'kubernetes.io/service-account.name': sa } },
        type: 'kubernetes.io/service-account-token',
      },
    });
    const filled = await waitFor('the tokens controller to fill the secret', 60_000, async () => {
      const s = await core.readNamespacedSecret({ name: legacySecret, namespace: ns });
      return s.data?.token && s.data['ca.crt'] && s.data.namespace ? s : undefined;
    });
    expect(filled.metadata?.annotations?.['kubernetes.io/service-account.uid']).toBeTruthy();
    legacyToken = Buffer.from(filled.data!.token!, 'base64').toString('utf8');
    expect(legacyToken.split('.')).toHaveLength(3);

    const review = await tokenReview(legacyToken);
    expect(review.authenticated).toBe(true);
    expect(review.user?.username).toBe(`system:serviceaccount:${ns}:${sa}`);
    expect(await statusWithToken(legacyToken, '/api')).toBe(200);
  }, 90_000);

  it('after cluster:rotate-sa-key the legacy token gets 401, while a running pod and a new pod still authenticate', async () => {
    // Like every suite that needs the project's own cluster: fail with what to do, never skip.
    if (!isOwnCluster())
      throw new Error(
        "this test rotates the cluster's signing key: point KUBECONFIG at the test cluster (npm run cluster:env)",
      );
    expect(legacyToken).not.toBe('');
    await run('bash', [path.join(REPO, 'test/cluster/rotate-sa-key.sh')], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 600_000,
    });

    // the legacy token was signed with the dropped key: rejected, forever
    const review = await tokenReview(legacyToken);
    expect(review.authenticated).not.toBe(true);
    expect(await statusWithToken(legacyToken, '/api')).toBe(401);

    // the pod that was running before the rotation got a re-issued projected token and still works
    expect(await podSh(ns, 'test', curlFromPod(true))).toBe('200');

    // and so does a pod started after it
    await startToolboxPod(ns, 'after-rotation', sa);
    expect(await podSh(ns, 'after-rotation', curlFromPod(true))).toBe('200');
    const doc = JSON.parse(await podSh(ns, 'after-rotation', 'cat /tmp/body')) as { paths?: string[] };
    expect(doc.paths).toEqual(expect.arrayContaining(['/api', '/apis', '/healthz', '/version']));
  }, 600_000);
});
