/**
 * Tokens copied out of their secret (issue #13), on real clusters: a kubeconfig Secret for this cluster
 * and an Argo CD cluster Secret for the second, control-plane-only cluster (npm run cluster:second:up),
 * each used by a consumer Deployment that talks to its apiserver through @kubernetes/client-node
 * (test/e2e/fixtures/copy-consumer.mjs) and logs OK or FAIL. Then:
 * - a copy of another account's token, a server that does not answer, a CA that does not match and a
 *   server the admin did not allow each get their own reason, and nothing is written;
 * - after a key rotation of the cluster that issued it, each copy is rewritten (CopyRewritten) within
 *   interval + 30 s (the second cluster's token minted there with a credential the user gave, allowed
 *   nothing but serviceaccounts/token for that account), its consumer logs OK again, and every other
 *   byte of each Secret is as it was;
 * - a copy holding a 10-minute TokenRequest token is renewed at half its lifetime, with no failure in
 *   its consumer.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  REPO,
  apply,
  assertNoClusterWideOperator,
  clusterScript,
  createLegacyTokenSecret,
  createNamespace,
  deleteNamespace,
  ensureImage,
  eventsFor,
  installCrd,
  isOwnCluster,
  kubectl,
  kubectlJson,
  startOperator,
  waitFor,
  waitForReason,
  type OperatorProcess,
} from '../support/cluster.js';

const run = promisify(execFile);
const INTERVAL_S = 20;
/** The kubernetes Service, as pods reach the apiserver. */
const SERVICE_SERVER = 'https://10.96.0.1:443';
/** A loopback port nothing listens on: allowed, and never answers. */
const DEAD_SERVER = 'https://127.0.0.1:9';
let ns: string;
let opNs: string;
let image: string;
let operator: OperatorProcess;
let caPem: string;
/** The second cluster: its admin kubeconfig, server, CA, and the namespace this test owns there. */
let second: { kubeconfig: string; server: string; caPem: string; caFile: string; ns: string };
const k2 = (...args: string[]) => kubectl('--kubeconfig', second.kubeconfig, ...args);
const originals: Record<string, Record<string, string>> = {};

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString('utf8');

interface SecretJson {
  metadata: { resourceVersion: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}
const secret = (name: string) => kubectlJson<SecretJson>('get', 'secret', name, '-n', ns);
const tokenOf = async (name: string) => unb64((await secret(name)).data?.['token']);

function kubeconfig(server: string, ca: string, token: string): string {
  // Hand-written, with a comment, flow style and a second user: all of it must survive a rewrite.
  return `# CI deploy credentials (hand-written)
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(ca)}
- name: elsewhere
  cluster: {server: 'https://elsewhere.invalid:6443'}
users:
- name: viewer
  user: {token: placeholder-not-a-token}
- name: deployer
  user:
    token: ${token}
contexts:
- name: ci
  context: {cluster: prod, user: deployer, namespace: ${ns}}
current-context: ci
preferences: {}
`;
}

function argoConfig(token: string, ca: string): string {
  return JSON.stringify({ bearerToken: token, tlsClientConfig: { insecure: false, caData: b64(ca) } });
}

async function copySecret(name: string, data: Record<string, string>, labels: Record<string, string> = {}) {
  await apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, labels },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  });
  originals[name] = (await secret(name)).data ?? {};
}

const copyProbe = (name: string, copy: Record<string, unknown>, account = 'deployer') => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace: ns },
  spec: { serviceAccountName: account, check: 'Copy', interval: `${INTERVAL_S}s`, timeout: '5s', copy },
});

function consumer(name: string, secretName: string, mode: 'kubeconfig' | 'argocd' | 'token') {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'consumer',
              image,
              imagePullPolicy: 'IfNotPresent',
              command: ['node', '/consumer/copy-consumer.mjs'],
              env: [{ name: 'MODE', value: mode }],
              volumeMounts: [
                { name: 'copy', mountPath: '/copy', readOnly: true },
                { name: 'consumer', mountPath: '/consumer', readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'copy', secret: { secretName } },
            { name: 'consumer', configMap: { name: 'copy-consumer' } },
          ],
        },
      },
    },
  };
}

/** The consumer's log lines since `since` (unix seconds): "<time> OK|FAIL <detail>". */
async function consumerLines(
  name: string,
  since = 0,
): Promise<Array<{ at: number; ok: boolean; detail: string }>> {
  const logs = await kubectl('logs', '-n', ns, `deployment/${name}`, '--tail=400');
  return logs
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([at, what]) => at && (what === 'OK' || what === 'FAIL'))
    .map(([at, what, ...rest]) => ({ at: Number(at), ok: what === 'OK', detail: rest.join(' ') }))
    .filter((l) => l.at >= since);
}

async function consumerOkAfter(name: string, since: number, timeoutMs: number): Promise<void> {
  await waitFor(`consumer ${name} to log OK after ${since}`, timeoutMs, async () =>
    (await consumerLines(name, since)).some((l) => l.ok) ? true : undefined,
  );
}

/** A client certificate for `user`, signed by the second cluster's CA (read from its state dir). */
async function clientCertificate(user: string, caFile: string): Promise<{ cert: string; key: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'authprobe-minter-'));
  const f = (name: string) => path.join(dir, name);
  try {
    await run('openssl', [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${user}`,
      '-keyout',
      f('key.pem'),
      '-out',
      f('req.pem'),
    ]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      f('req.pem'),
      '-CA',
      caFile,
      '-CAkey',
      caFile.replace(/ca\.crt$/, 'ca.key'),
      '-CAcreateserial',
      '-CAserial',
      f('ca.srl'),
      '-days',
      '1',
      '-out',
      f('cert.pem'),
    ]);
    return { cert: await readFile(f('cert.pem'), 'utf8'), key: await readFile(f('key.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Brings the second cluster up and gives this test a namespace there with argocd-manager and its minter. */
async function secondCluster(): Promise<typeof second> {
  await clusterScript('second/up');
  const env = Object.fromEntries(
    (await clusterScript('second/env'))
      .split('\n')
      .map((l) => /^export (\w+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  ) as Record<string, string>;
  const s = {
    kubeconfig: env['KUBECONFIG2'] ?? '',
    server: env['AUTHPROBE_SECOND_SERVER'] ?? '',
    caPem: await readFile(env['AUTHPROBE_SECOND_CA'] ?? '', 'utf8'),
    ns: `copies-remote-${Date.now().toString(36)}`,
    caFile: env['AUTHPROBE_SECOND_CA'] ?? '',
  };
  second = s;
  await k2('create', 'namespace', s.ns);
  await k2('create', 'serviceaccount', 'argocd-manager', '-n', s.ns);
  // The minimal Role the README shows: the minter may create tokens of argocd-manager, nothing else.
  await k2(
    'create',
    'role',
    'mint-argocd-manager',
    '-n',
    s.ns,
    '--verb=create',
    '--resource=serviceaccounts/token',
    '--resource-name=argocd-manager',
  );
  await k2(
    'create',
    'rolebinding',
    'mint-argocd-manager',
    '-n',
    s.ns,
    '--role=mint-argocd-manager',
    '--user=authprobe-minter',
  );
  return s;
}

/** A CA that signed nothing the cluster serves. */
async function selfSignedCa(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'authprobe-ca-'));
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=not-the-cluster-ca',
      '-keyout',
      path.join(dir, 'ca.key'),
      '-out',
      path.join(dir, 'ca.crt'),
    ]);
    return await readFile(path.join(dir, 'ca.crt'), 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  if (!isOwnCluster())
    throw new Error(
      'copy tests rotate the cluster signing key: point KUBECONFIG at the test cluster (npm run cluster:env)',
    );
  await assertNoClusterWideOperator();
  await installCrd();
  image = await ensureImage();
  [ns, opNs] = await Promise.all([createNamespace('copies'), createNamespace('copies-op')]);
  for (const sa of ['deployer', 'other'])
    await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } });
  await createLegacyTokenSecret(ns, 'deployer', 'deployer-token');
  await createLegacyTokenSecret(ns, 'other', 'other-token');
  caPem =
    (await kubectlJson<{ data: Record<string, string> }>('get', 'configmap', 'kube-root-ca.crt', '-n', ns))
      .data['ca.crt'] ?? '';
  const deployer = await tokenOf('deployer-token');
  await copySecret('ci-kubeconfig', {
    kubeconfig: kubeconfig(SERVICE_SERVER, caPem, deployer),
    note: 'owned by CI',
  });
  const remote = await secondCluster();
  const managerToken = (
    await k2('create', 'token', 'argocd-manager', '-n', remote.ns, '--duration=24h')
  ).trim();
  await copySecret(
    'cluster-prod',
    { name: 'prod', server: remote.server, config: argoConfig(managerToken, remote.caPem) },
    { 'argocd.argoproj.io/secret-type': 'cluster' },
  );
  const minter = await clientCertificate('authprobe-minter', remote.caFile);
  await copySecret('second-minter', {
    kubeconfig: `apiVersion: v1
kind: Config
clusters:
- name: second
  cluster: {server: '${remote.server}', certificate-authority-data: ${b64(remote.caPem)}}
users:
- name: minter
  user: {client-certificate-data: ${b64(minter.cert)}, client-key-data: ${b64(minter.key)}}
contexts:
- name: second
  context: {cluster: second, user: minter}
current-context: second
`,
  });
  await apply({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'copy-consumer', namespace: ns },
    data: {
      'copy-consumer.mjs': await readFile(path.join(REPO, 'test/e2e/fixtures/copy-consumer.mjs'), 'utf8'),
    },
  });
  await apply(consumer('kubeconfig-consumer', 'ci-kubeconfig', 'kubeconfig'));
  await apply(consumer('argocd-consumer', 'cluster-prod', 'argocd'));
  await apply(copyProbe('ci-kubeconfig', { secretName: 'ci-kubeconfig', format: 'Kubeconfig' }));
  await apply(
    copyProbe(
      'cluster-prod',
      {
        secretName: 'cluster-prod',
        format: 'ArgoCDCluster',
        serviceAccountNamespace: remote.ns,
        renew: { credentialsSecretName: 'second-minter' },
      },
      'argocd-manager',
    ),
  );
  operator = startOperator(
    {
      AUTHPROBE_IMAGE: image,
      AUTHPROBE_OPERATOR_NAMESPACE: opNs,
      AUTHPROBE_WATCH_NAMESPACES: ns,
      AUTHPROBE_LEADER_ELECTION: 'false',
      AUTHPROBE_ALLOWED_COPY_SERVERS: `${DEAD_SERVER},${remote.server}`,
      // What a pod of the cluster (the operator's, installed by the chart) is told; here the operator is
      // a host process: the kubernetes Service's address is this cluster's, where copies used by pods point.
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
    },
    'copies-op',
  );
  for (const name of ['ci-kubeconfig', 'cluster-prod'])
    await waitForReason(ns, name, 'Authenticated', 120_000);
  const started = Math.floor(Date.now() / 1000);
  await consumerOkAfter('kubeconfig-consumer', started - 60, 120_000);
  await consumerOkAfter('argocd-consumer', started - 60, 120_000);
}, 420_000);

afterAll(async () => {
  await operator?.stop();
  if (ns) await deleteNamespace(ns);
  if (opNs) await deleteNamespace(opNs);
}, 180_000);

describe('a copied token', () => {
  it('is checked where it is used: the account it authenticates as is in status', async () => {
    const ap = await kubectlJson<{ status: { lastProbe: { identity?: string; message?: string } } }>(
      'get',
      'authprobe',
      'ci-kubeconfig',
      '-n',
      ns,
    );
    expect(ap.status.lastProbe.identity).toBe(`system:serviceaccount:${ns}:deployer`);
    expect(ap.status.lastProbe.message).toContain('used with https://10.96.0.1)');
  });

  it("another account's token, a server that does not answer, a wrong CA and a server not allowed: own reasons, no write", async () => {
    const other = await tokenOf('other-token');
    const deployer = await tokenOf('deployer-token');
    await copySecret('other-copy', { token: other });
    await copySecret('dead-copy', { kubeconfig: kubeconfig(DEAD_SERVER, caPem, deployer) });
    await copySecret('wrong-ca-copy', {
      kubeconfig: kubeconfig(SERVICE_SERVER, await selfSignedCa(), deployer),
    });
    await copySecret('far-copy', { kubeconfig: kubeconfig('https://127.0.0.2:6443', caPem, deployer) });
    const rvs = Object.fromEntries(
      await Promise.all(
        ['other-copy', 'dead-copy', 'wrong-ca-copy', 'far-copy'].map(async (n) => [
          n,
          (await secret(n)).metadata.resourceVersion,
        ]),
      ),
    );
    await apply(copyProbe('other-copy', { secretName: 'other-copy' }));
    await apply(copyProbe('dead-copy', { secretName: 'dead-copy', format: 'Kubeconfig' }));
    await apply(copyProbe('wrong-ca-copy', { secretName: 'wrong-ca-copy', format: 'Kubeconfig' }));
    await apply(copyProbe('far-copy', { secretName: 'far-copy', format: 'Kubeconfig' }));
    const mismatch = await waitForReason(ns, 'other-copy', 'TokenIdentityMismatch', 60_000);
    expect(mismatch.message).toContain(`system:serviceaccount:${ns}:other`);
    expect((await waitForReason(ns, 'dead-copy', 'APIServerUnreachable', 60_000)).status).toBe('Unknown');
    expect((await waitForReason(ns, 'wrong-ca-copy', 'CACertMismatch', 60_000)).status).toBe('False');
    const far = await waitForReason(ns, 'far-copy', 'CopyServerNotAllowed', 60_000);
    expect(far.message).toMatch(/--allowed-copy-servers/);
    // Another interval later nothing has been written to any of them.
    await new Promise((resolve) => setTimeout(resolve, (INTERVAL_S + 2) * 1000));
    for (const [name, rv] of Object.entries(rvs))
      expect({ name, rv: (await secret(name)).metadata.resourceVersion }).toEqual({ name, rv });
    for (const name of Object.keys(rvs))
      expect((await eventsFor(ns, 'AuthProbe', name)).map((e) => e.reason)).not.toContain('CopyRewritten');
  }, 180_000);

  it('is rewritten after a key rotation of its cluster within interval + 30 s; the consumers recover; every other byte stays', async () => {
    const rotatedAt: Record<string, number> = {};
    for (const [name, rotate] of [
      ['ci-kubeconfig', 'rotate-sa-key'],
      ['cluster-prod', 'second/rotate-sa-key'],
    ] as const) {
      await clusterScript(rotate);
      rotatedAt[name] = Date.now();
      await waitFor(`${name} to be rewritten and Ready`, (INTERVAL_S + 30) * 1000 + 30_000, async () => {
        const ap = await kubectlJson<{
          status?: {
            heals?: { count?: number };
            conditions?: Array<{ type: string; status: string }>;
          };
        }>('get', 'authprobe', name, '-n', ns);
        const ready = ap.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
        return ready && (ap.status?.heals?.count ?? 0) >= 1 ? ap : undefined;
      });
      const elapsed = Date.now() - (rotatedAt[name] ?? 0);
      process.stdout.write(
        `${name} rewritten and Ready ${elapsed} ms after its cluster's rotation (interval ${INTERVAL_S}s)\n`,
      );
      expect(elapsed).toBeLessThanOrEqual((INTERVAL_S + 30) * 1000);
      const reasons = (await eventsFor(ns, 'AuthProbe', name)).map((e) => e.reason);
      expect(reasons).toEqual(
        expect.arrayContaining(['TokenRejected', 'TokenRejectionConfirmed', 'CopyRewritten']),
      );
    }
    // Every other byte: the data with the new token put back to the old one is the original.
    const kube = (await secret('ci-kubeconfig')).data ?? {};
    const argo = (await secret('cluster-prod')).data ?? {};
    const tokenIn = (text: string) => /token: (\S+)\n/.exec(text.split('name: deployer')[1] ?? '')?.[1] ?? '';
    const oldKubeText = unb64(originals['ci-kubeconfig']?.['kubeconfig']);
    const newKube = unb64(kube['kubeconfig']);
    expect(tokenIn(newKube)).not.toBe(tokenIn(oldKubeText));
    expect(newKube.replace(tokenIn(newKube), tokenIn(oldKubeText))).toBe(oldKubeText);
    expect(kube['note']).toBe(originals['ci-kubeconfig']?.['note']);
    const oldArgoText = unb64(originals['cluster-prod']?.['config']);
    const oldArgo = JSON.parse(oldArgoText) as { bearerToken: string };
    const newArgo = JSON.parse(unb64(argo['config'])) as { bearerToken: string };
    expect(newArgo.bearerToken).not.toBe(oldArgo.bearerToken);
    expect(unb64(argo['config']).replace(newArgo.bearerToken, oldArgo.bearerToken)).toBe(oldArgoText);
    expect(argo['server']).toBe(originals['cluster-prod']?.['server']);
    expect(argo['name']).toBe(originals['cluster-prod']?.['name']);
    expect((await secret('cluster-prod')).metadata.labels).toEqual({
      'argocd.argoproj.io/secret-type': 'cluster',
    });
    // The new token is the second cluster's, for argocd-manager there.
    const claims = JSON.parse(
      Buffer.from(newArgo.bearerToken.split('.')[1] ?? '', 'base64url').toString('utf8'),
    ) as { iss?: string; sub?: string };
    expect(claims).toMatchObject({
      iss: 'https://second.authprobe.test',
      sub: `system:serviceaccount:${second.ns}:argocd-manager`,
    });
    // The consumers, which read the copy again for every call, authenticate again.
    await consumerOkAfter(
      'kubeconfig-consumer',
      Math.floor((rotatedAt['ci-kubeconfig'] ?? 0) / 1000),
      120_000,
    );
    await consumerOkAfter('argocd-consumer', Math.floor((rotatedAt['cluster-prod'] ?? 0) / 1000), 120_000);
  }, 360_000);

  it('holding a 10-minute TokenRequest token, is renewed at half its lifetime with no failure in its consumer', async () => {
    const first = (await kubectl('create', 'token', 'deployer', '-n', ns, '--duration=10m')).trim();
    await copySecret('short-copy', { token: first });
    await apply(consumer('short-consumer', 'short-copy', 'token'));
    await apply(copyProbe('short-copy', { secretName: 'short-copy', renew: { expirationSeconds: 600 } }));
    const created = Math.floor(Date.now() / 1000);
    await waitForReason(ns, 'short-copy', 'Authenticated', 60_000);
    await consumerOkAfter('short-consumer', created, 120_000);
    const renewed = await waitFor(
      'the short copy to be renewed',
      7 * 60_000,
      async () => {
        const events = await eventsFor(ns, 'AuthProbe', 'short-copy');
        return events.find((e) => e.reason === 'CopyRewritten' && /^Renewed/.test(e.message));
      },
      5_000,
    );
    const renewedAt = Date.parse(renewed.metadata.creationTimestamp);
    process.stdout.write(
      `short copy renewed ${Math.round(renewedAt / 1000 - created)} s after it was written\n`,
    );
    const second = await tokenOf('short-copy');
    expect(second).not.toBe(first);
    // Renewed after half the lifetime and well before the end of it.
    expect(renewedAt / 1000 - created).toBeGreaterThanOrEqual(290);
    expect(renewedAt / 1000 - created).toBeLessThan(600);
    expect((await readyOfCopy('short-copy')).status).toBe('True');
    // The consumer never failed, before or after the renewal.
    await consumerOkAfter('short-consumer', Math.floor(renewedAt / 1000) + 2, 60_000);
    expect((await consumerLines('short-consumer', created)).filter((l) => !l.ok)).toEqual([]);
  }, 600_000);
});

async function readyOfCopy(name: string) {
  const ap = await kubectlJson<{
    status?: { conditions?: Array<{ type: string; status: string; reason: string }> };
  }>('get', 'authprobe', name, '-n', ns);
  return ap.status?.conditions?.find((c) => c.type === 'Ready') ?? { status: 'missing', reason: '' };
}
