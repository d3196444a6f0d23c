/**
 * Healing on the real cluster. One service-account key rotation (npm run cluster:rotate-sa-key)
 * breaks every legacy token secret created before it; the test then checks, through status,
 * Events, secrets and the consumers' own logs, that:
 * - Auto probes are healed within interval + 30 s, with Events telling the story in order, also a
 *   probe checked by the operator's own TokenReview (spec.check TokenReview, no pod);
 * - a Deployment mounting the secret and one reading it from env (restartWorkloads) recover;
 * - DryRun, an exhausted heal budget, a 403 and an apiserver outage delete nothing;
 * - an operator SIGKILLed right after deleting a secret finishes the heal after its restart;
 * - two replicas heal a stale secret once.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  REPO,
  waitForHeal,
  assertNoClusterWideOperator,
  apply,
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
  secretUid,
  startOperator,
  waitFor,
  waitForReason,
  type OperatorProcess,
} from '../support/cluster.js';

const run = promisify(execFile);
const INTERVAL_S = 20;
const TOOLBOX = 'docker.io/authprobe/toolbox:1';
const operators: OperatorProcess[] = [];
let image: string;
let main: string; // namespace of the main scenarios
let crash: string; // namespace of the crash scenario
let ha: string; // namespace of the two-replica scenario
let side: string; // a second namespace of the main operator: rejections in two namespaces at once
// The operators' own namespace (leases, canary, heal ledger): never where the AuthProbes are, since
// an operator does not run AuthProbes in its own namespace.
let opNs: string;
const uids: Record<string, string> = {};
let rotatedAt = 0;

const probe = (ns: string, name: string, secretName: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace: ns },
  spec: {
    serviceAccountName: 'app',
    token: { source: 'Secret', secretName },
    interval: `${INTERVAL_S}s`,
    timeout: '10s',
    ...extra,
  },
});

/**
 * A consumer that keeps calling the apiserver with the token, as a dashboard would, and logs one
 * line per call: "<unix time> <http status>". Never the token.
 */
function consumer(ns: string, name: string, secretName: string, via: 'volume' | 'env') {
  const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
  const token = via === 'volume' ? `$(cat ${dir}/token)` : '$TOKEN';
  const loop = `while true; do code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert ${dir}/ca.crt -H "Authorization: Bearer ${token}" https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api); echo "$(date +%s) $code"; sleep 2; done`;
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
          automountServiceAccountToken: false,
          serviceAccountName: 'app',
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'consumer',
              image: TOOLBOX,
              imagePullPolicy: 'IfNotPresent',
              command: ['sh', '-c', loop],
              ...(via === 'env'
                ? {
                    env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: secretName, key: 'token' } } }],
                  }
                : {}),
              volumeMounts: [{ name: 'sa', mountPath: dir, readOnly: true }],
            },
          ],
          volumes: [{ name: 'sa', secret: { secretName } }],
        },
      },
    },
  };
}

/** The consumer's latest HTTP status and when it was logged (seconds since the epoch). */
async function consumerLatest(ns: string, name: string): Promise<{ at: number; code: string } | undefined> {
  const logs = await kubectl('logs', '-n', ns, `deployment/${name}`, '--tail=1');
  const [at, code] = logs.trim().split(' ');
  return at && code ? { at: Number(at), code } : undefined;
}

/** Finished checks per AuthProbe of `main` so far (authprobe_probes_total summed over its reasons). */
async function checksByProbe(op: OperatorProcess): Promise<Map<string, number>> {
  const { body } = await op.get('/metrics');
  const counts = new Map<string, number>();
  for (const line of body.split('\n')) {
    const m = /^authprobe_probes_total\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || !m[1]?.includes(`namespace="${main}"`)) continue;
    const name = /authprobe="([^"]+)"/.exec(m[1])?.[1] ?? '';
    counts.set(name, (counts.get(name) ?? 0) + Number(m[2]));
  }
  return counts;
}

async function heals(
  ns: string,
  name: string,
): Promise<{ count?: number; lastAction?: string; lastResult?: string }> {
  const ap = await kubectlJson<{
    status?: { heals?: { count?: number; lastAction?: string; lastResult?: string } };
  }>('get', 'authprobe', name, '-n', ns);
  return ap.status?.heals ?? {};
}

beforeAll(async () => {
  if (!isOwnCluster())
    throw new Error(
      'healing tests rotate the cluster signing key: point KUBECONFIG at the test cluster (npm run cluster:env)',
    );
  await assertNoClusterWideOperator();
  await installCrd();
  image = await ensureImage();
  [main, crash, ha, opNs, side] = await Promise.all([
    createNamespace('heal'),
    createNamespace('crash'),
    createNamespace('ha'),
    createNamespace('heal-op'),
    createNamespace('side'),
  ]);
  for (const ns of [main, crash, ha, side])
    await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: ns } });
  const secrets: Array<[string, string]> = [
    [main, 'vol-token'],
    [main, 'env-token'],
    [main, 'dry-token'],
    [main, 'limited-token'],
    [main, 'reviewed-token'],
    [crash, 'crash-token'],
    [ha, 'ha-token'],
    [side, 'side-token'],
  ];
  for (const [ns, name] of secrets)
    uids[`${ns}/${name}`] = (await createLegacyTokenSecret(ns, 'app', name)).uid;
  await apply(consumer(main, 'vol-consumer', 'vol-token', 'volume'));
  await apply(consumer(main, 'env-consumer', 'env-token', 'env'));
  await apply(probe(main, 'vol', 'vol-token'));
  await apply(probe(main, 'env', 'env-token', { heal: { restartWorkloads: true } }));
  await apply(probe(main, 'dry', 'dry-token', { heal: { policy: 'DryRun' } }));
  await apply(probe(main, 'limited', 'limited-token', { heal: { maxPerHour: 0 } }));
  await apply(probe(main, 'reviewed', 'reviewed-token', { check: 'TokenReview' }));
  await apply(probe(crash, 'crashy', 'crash-token'));
  await apply(probe(ha, 'ha', 'ha-token'));
  await apply(probe(side, 'side', 'side-token', { check: 'TokenReview' }));
  const base = { AUTHPROBE_IMAGE: image, AUTHPROBE_ROTATION_SUSPECT_NAMESPACES: '3' };
  operators.push(
    startOperator(
      {
        ...base,
        AUTHPROBE_OPERATOR_NAMESPACE: opNs,
        AUTHPROBE_WATCH_NAMESPACES: `${main},${side}`,
        AUTHPROBE_ROTATION_SUSPECT_NAMESPACES: '2',
        AUTHPROBE_LEADER_ELECTION: 'false',
      },
      'heal-main',
    ),
  );
  operators.push(
    startOperator(
      {
        ...base,
        AUTHPROBE_OPERATOR_NAMESPACE: opNs,
        AUTHPROBE_WATCH_NAMESPACES: crash,
        AUTHPROBE_LEADER_ELECTION: 'false',
        AUTHPROBE_FAILPOINTS: 'after-secret-delete',
      },
      'heal-crash-1',
    ),
  );
  const haEnv = {
    ...base,
    AUTHPROBE_OPERATOR_NAMESPACE: opNs,
    AUTHPROBE_WATCH_NAMESPACES: ha,
    AUTHPROBE_LEASE_DURATION: '8s',
    AUTHPROBE_RENEW_DEADLINE: '6s',
    AUTHPROBE_RETRY_PERIOD: '1s',
  };
  operators.push(startOperator(haEnv, 'heal-ha-a'), startOperator(haEnv, 'heal-ha-b'));
  for (const [ns, name] of [
    [main, 'vol'],
    [main, 'env'],
    [main, 'dry'],
    [main, 'limited'],
    [main, 'reviewed'],
    [crash, 'crashy'],
    [ha, 'ha'],
    [side, 'side'],
  ] as const) {
    await waitForReason(ns, name, 'Authenticated', 120_000);
  }
  await waitFor('both consumers to authenticate', 60_000, async () =>
    (await consumerLatest(main, 'vol-consumer'))?.code === '200' &&
    (await consumerLatest(main, 'env-consumer'))?.code === '200'
      ? true
      : undefined,
  );
  await clusterScript('rotate-sa-key');
  rotatedAt = Date.now();
}, 600_000);

afterAll(async () => {
  for (const op of operators) await op.stop();
  await Promise.all([main, crash, ha, opNs, side].filter(Boolean).map((ns) => deleteNamespace(ns)));
}, 120_000);

describe('healing after a service-account key rotation', () => {
  it('heals a secret-sourced probe within interval + 30 s, and the Events tell the story in order', async () => {
    await waitForHeal(main, 'vol', (INTERVAL_S + 30) * 1000 + 60_000);
    const elapsed = Date.now() - rotatedAt;
    process.stdout.write(`vol healed ${elapsed} ms after the rotation finished (interval ${INTERVAL_S}s)\n`);
    expect(elapsed).toBeLessThanOrEqual((INTERVAL_S + 30) * 1000);
    expect(await secretUid(main, 'vol-token')).not.toBe(uids[`${main}/vol-token`]);
    // Right after the heal a new probe pod confirms the new token, without waiting an interval.
    const events = await waitFor('the heal to be confirmed by a probe pod', 30_000, async () => {
      const all = await eventsFor(main, 'AuthProbe', 'vol');
      return all.some((e) => e.reason === 'HealConfirmed') ? all : undefined;
    });
    const story = [
      'TokenRejected',
      'TokenRejectionConfirmed',
      'SecretDeleted',
      'SecretRecreated',
      'TokenIssued',
      'Healed',
      'HealConfirmed',
    ];
    // Every step is told once, and in order: the operator gives each Event a strictly increasing
    // eventTime (microseconds), so steps written within one second still sort.
    for (const reason of story) {
      expect({ reason, times: events.filter((e) => e.reason === reason).map((e) => e.count ?? 1) }).toEqual({
        reason,
        times: [1],
      });
    }
    const told = [...events]
      .filter((e) => story.includes(e.reason))
      .sort((a, b) => (a.eventTime ?? '').localeCompare(b.eventTime ?? ''))
      .map((e) => e.reason);
    expect(events.filter((e) => story.includes(e.reason) && !e.eventTime)).toEqual([]);
    expect(told).toEqual(story);
    expect(await heals(main, 'vol')).toMatchObject({ count: 1, lastAction: 'SecretRecreated' });
  }, 180_000);

  it('heals a probe checked by TokenReview (no pod) the same way, confirmed by a TokenReview', async () => {
    await waitForHeal(main, 'reviewed', (INTERVAL_S + 30) * 1000 + 60_000);
    const elapsed = Date.now() - rotatedAt;
    process.stdout.write(`reviewed (TokenReview) healed ${elapsed} ms after the rotation finished\n`);
    expect(elapsed).toBeLessThanOrEqual((INTERVAL_S + 30) * 1000);
    expect(await secretUid(main, 'reviewed-token')).not.toBe(uids[`${main}/reviewed-token`]);
    const events = await waitFor('the heal to be confirmed by a TokenReview', 30_000, async () => {
      const all = await eventsFor(main, 'AuthProbe', 'reviewed');
      return all.some((e) => e.reason === 'HealConfirmed') ? all : undefined;
    });
    const reasons = events.map((e) => e.reason);
    for (const step of [
      'TokenRejected',
      'TokenRejectionConfirmed',
      'SecretDeleted',
      'SecretRecreated',
      'Healed',
    ])
      expect(reasons).toContain(step);
    expect(events.find((e) => e.reason === 'HealConfirmed')?.message).toMatch(
      /^A TokenReview check authenticated/,
    );
    const ap = await kubectlJson<{ status?: { lastProbe?: { identity?: string; pod?: string } } }>(
      'get',
      'authprobe',
      'reviewed',
      '-n',
      main,
    );
    expect(ap.status?.lastProbe?.identity).toBe(`system:serviceaccount:${main}:app`);
    expect(ap.status?.lastProbe?.pod).toBeUndefined();
    const pods = await kubectlJson<{ items: unknown[] }>(
      'get',
      'pods',
      '-n',
      main,
      '-l',
      'authprobe.io/probe=reviewed',
    );
    expect(pods.items).toHaveLength(0);
  }, 180_000);

  it('the consumer that mounts the secret recovers on its own', async () => {
    const recovered = await waitFor(
      'the volume consumer to authenticate again',
      180_000,
      async () => {
        const latest = await consumerLatest(main, 'vol-consumer');
        return latest && latest.code === '200' && latest.at * 1000 > rotatedAt + 5_000 ? latest : undefined;
      },
      2_000,
    );
    // The failure was real: between the rotation and the recovery the consumer got 401s.
    const lines = (await kubectl('logs', '-n', main, 'deployment/vol-consumer', '--tail=400'))
      .trim()
      .split('\n');
    const afterRotation = lines.map((l) => l.split(' ')).filter(([at]) => Number(at) * 1000 >= rotatedAt);
    expect(afterRotation.some(([, code]) => code === '401')).toBe(true);
    process.stdout.write(
      `volume consumer: ${afterRotation.filter(([, c]) => c === '401').length} calls got 401 before it recovered\n`,
    );
    expect(recovered.code).toBe('200');
  }, 240_000);

  it('with restartWorkloads, the consumer that copied the token into env is restarted and recovers', async () => {
    await waitForHeal(main, 'env', 120_000);
    expect((await heals(main, 'env')).lastAction).toBe('SecretRecreated+WorkloadsRestarted');
    const reasons = (await eventsFor(main, 'AuthProbe', 'env')).map((e) => e.reason);
    expect(reasons).toContain('WorkloadsRestarted');
    await waitFor(
      'the env consumer to authenticate with the new token',
      180_000,
      async () => {
        const latest = await consumerLatest(main, 'env-consumer');
        return latest && latest.code === '200' && latest.at * 1000 > rotatedAt ? true : undefined;
      },
      2_000,
    );
  }, 240_000);

  it('DryRun and an exhausted heal budget delete nothing and say why', async () => {
    // The key that signed its token left the apiserver's trusted set: the cause is named.
    const dry = await waitForReason(main, 'dry', 'SigningKeyRetired', 120_000);
    expect(dry.message).toMatch(/DryRun: would replace secret dry-token/);
    expect((await eventsFor(main, 'AuthProbe', 'dry')).map((e) => e.reason)).toContain('HealDryRun');
    const limited = await waitForReason(main, 'limited', 'HealRateLimited', 120_000);
    expect(limited.message).toMatch(/maxPerHour=0/);
    expect(await secretUid(main, 'dry-token')).toBe(uids[`${main}/dry-token`]);
    expect(await secretUid(main, 'limited-token')).toBe(uids[`${main}/limited-token`]);
  }, 180_000);

  it('`authprobe check` gives the same verdict as the controller for the rejected token', async () => {
    const check = await run(process.execPath, [
      path.join(REPO, 'dist/cli/main.js'),
      'check',
      '-n',
      main,
      '--service-account',
      'app',
      '--secret',
      'dry-token',
    ]).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    );
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/verdict: SigningKeyRetired \(Ready=False\)/);
    expect((await waitForReason(main, 'dry', 'SigningKeyRetired', 60_000)).status).toBe('False');
  }, 60_000);

  it('rejections in two namespaces at once raise one SuspectedKeyRotation Warning on the operator namespace', async () => {
    const raised = await waitFor('the SuspectedKeyRotation Event', 120_000, async () => {
      const events = (await eventsFor(opNs, 'Namespace', opNs)).filter(
        (e) => e.reason === 'SuspectedKeyRotation',
      );
      return events.length ? events : undefined;
    });
    expect(raised).toHaveLength(1);
    expect(raised[0]?.type).toBe('Warning');
    expect(raised[0]?.message).toContain(main);
    expect(raised[0]?.message).toContain(side);
    const operator = operators.find((op) => op.identity === 'heal-main') as OperatorProcess;
    expect(operator.logs()).toMatch(/suspected service-account key rotation/);
    // Individual heals go on; once both namespaces recovered, the gauge is back to 0.
    await waitForHeal(side, 'side', 120_000);
    await waitFor('authprobe_suspected_key_rotation back to 0', 120_000, async () =>
      (await operator.metric('authprobe_suspected_key_rotation')) === 0 ? true : undefined,
    );
  }, 300_000);

  it('an operator killed right after deleting a secret finishes the heal within 30 s of its restart', async () => {
    const first = operators.find((op) => op.identity === 'heal-crash-1') as OperatorProcess;
    await waitFor('the first crash operator to die at the failpoint', 120_000, async () =>
      first.child.signalCode === 'SIGKILL' ? true : undefined,
    );
    expect(await secretUid(crash, 'crash-token')).toBeUndefined();
    const restartedAt = Date.now();
    operators.push(
      startOperator(
        {
          AUTHPROBE_IMAGE: image,
          AUTHPROBE_OPERATOR_NAMESPACE: opNs,
          AUTHPROBE_WATCH_NAMESPACES: crash,
          AUTHPROBE_LEADER_ELECTION: 'false',
        },
        'heal-crash-2',
      ),
    );
    await waitFor('the secret to be back with a token', 30_000, async () => {
      const secret = await kubectlJson<{ data?: { token?: string } }>(
        'get',
        'secret',
        'crash-token',
        '-n',
        crash,
      ).catch(() => undefined);
      return secret?.data?.token ? true : undefined;
    });
    process.stdout.write(
      `crash-token recreated ${Date.now() - restartedAt} ms after the operator restarted\n`,
    );
    await waitForHeal(crash, 'crashy', 60_000);
    expect((await eventsFor(crash, 'AuthProbe', 'crashy')).map((e) => e.reason)).toContain('HealResumed');
  }, 240_000);

  it('two replicas heal a stale secret exactly once', async () => {
    await waitForHeal(ha, 'ha', 120_000);
    const deletions = (await eventsFor(ha, 'AuthProbe', 'ha')).filter((e) => e.reason === 'SecretDeleted');
    expect(deletions).toHaveLength(1);
    expect(deletions[0]?.count ?? 1).toBe(1);
    expect((await heals(ha, 'ha')).count).toBe(1);
  }, 180_000);

  it('nothing is deleted while the apiserver is down for 60 s or when the token is only forbidden (403)', async () => {
    await createLegacyTokenSecret(main, 'app', 'forbidden-token');
    await apply(
      probe(main, 'forbidden', 'forbidden-token', { path: '/api/v1/namespaces/kube-system/secrets' }),
    );
    await waitForReason(main, 'forbidden', 'AuthenticatedForbidden', 90_000);
    const before = Object.fromEntries(
      await Promise.all(
        ['vol-token', 'env-token', 'dry-token', 'limited-token', 'forbidden-token', 'reviewed-token'].map(
          async (s) => [s, await secretUid(main, s)] as const,
        ),
      ),
    );
    const deletedBefore = (await eventsFor(main, 'AuthProbe', 'vol')).filter(
      (e) => e.reason === 'SecretDeleted',
    ).length;
    const operator = operators.find((op) => op.identity === 'heal-main') as OperatorProcess;
    await clusterScript('apiserver-outage', '60');
    // With the apiserver back, every probe is checked again (its own count of finished checks grows;
    // an unchanged verdict is not written to status until the heartbeat): the operator was running and
    // probing, and still deleted nothing.
    const probed = ['vol', 'env', 'forbidden', 'reviewed'];
    const checksAfterOutage = await checksByProbe(operator);
    await waitFor('every probe checked again after the outage', 2 * INTERVAL_S * 1000 + 120_000, async () => {
      const now = await checksByProbe(operator);
      return probed.every((name) => (now.get(name) ?? 0) > (checksAfterOutage.get(name) ?? 0))
        ? true
        : undefined;
    });
    for (const [name, uid] of Object.entries(before)) {
      expect(uid).toBeDefined();
      expect(await secretUid(main, name)).toBe(uid);
    }
    expect(
      (await eventsFor(main, 'AuthProbe', 'vol')).filter((e) => e.reason === 'SecretDeleted'),
    ).toHaveLength(deletedBefore);
    // The TokenReview check ran on through the outage and the apiserver's restart: still the one heal.
    expect(await heals(main, 'reviewed')).toMatchObject({ count: 1 });
    expect((await waitForReason(main, 'reviewed', 'Authenticated', 60_000)).status).toBe('True');
    expect((await waitForReason(main, 'forbidden', 'AuthenticatedForbidden', 60_000)).status).toBe('True');
    expect(operators.find((op) => op.identity === 'heal-main')?.child.exitCode).toBeNull();
    // outage 60 s + apiserver start + up to 150 s for kube-proxy's back-off + 2 intervals + 60 s
  }, 420_000);
});
