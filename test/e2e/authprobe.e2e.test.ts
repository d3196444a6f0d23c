/**
 * The AuthProbe controller on the real cluster, through what a user sees: `kubectl get authprobes`,
 * the Ready condition, Events. Probe pods really run (the project's image) as the probed account.
 * The operator runs as a separate process from dist/, watching only this test's namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  assertNoClusterWideOperator,
  REPO,
  apply,
  createLegacyTokenSecret,
  createNamespace,
  deleteNamespace,
  ensureImage,
  eventsFor,
  installCrd,
  isOwnCluster,
  kubectl,
  kubectlJson,
  readyOf,
  secretUid,
  startOperator,
  waitFor,
  waitForReason,
  type OperatorProcess,
} from '../support/cluster.js';

const run = promisify(execFile);
let ns: string;
let opNs: string;
let operator: OperatorProcess;

const probe = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace: ns },
  spec: { interval: '5m', timeout: '15s', ...spec },
});

const serviceAccount = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  metadata: { name, namespace: ns },
  ...extra,
});

async function probePods(name: string): Promise<string[]> {
  const out = await kubectl('get', 'pods', '-n', ns, '-l', `authprobe.io/probe=${name}`, '-o', 'name');
  return out.split('\n').filter(Boolean);
}

beforeAll(async () => {
  await assertNoClusterWideOperator();
  await installCrd();
  const image = await ensureImage();
  ns = await createNamespace('ap');
  // The operator's own namespace is never where its AuthProbes are (it does not run those).
  opNs = await createNamespace('ap-op');
  operator = startOperator({
    AUTHPROBE_IMAGE: image,
    AUTHPROBE_OPERATOR_NAMESPACE: opNs,
    AUTHPROBE_WATCH_NAMESPACES: ns,
    AUTHPROBE_LEADER_ELECTION: 'false',
  });
  await apply(serviceAccount('app'));
}, 180_000);

afterAll(async () => {
  const code = await operator?.stop();
  if (code !== 0) process.stderr.write(`operator exited ${code}; its log: ${operator.logFile}\n`);
  await deleteNamespace(ns);
  if (opNs) await deleteNamespace(opNs);
}, 60_000);

describe('AuthProbe verdicts on a real cluster', () => {
  it('a projected-token probe for a healthy account is Ready=True/Authenticated within seconds of its pod finishing', async () => {
    await apply(probe('projected', { serviceAccountName: 'app' }));
    const ready = await waitForReason(ns, 'projected', 'Authenticated', 90_000);
    expect(ready.status).toBe('True');
    const ap = await kubectlJson<{
      status: { lastProbe: { pod: string; httpStatus: number; identity: string; time: string } };
    }>('get', 'authprobe', 'projected', '-n', ns);
    expect(ap.status.lastProbe.httpStatus).toBe(200);
    expect(ap.status.lastProbe.identity).toBe(`system:serviceaccount:${ns}:app`);
    // From the pod's container finishing to the status saying so.
    const pod = await kubectlJson<{
      status: { containerStatuses: Array<{ state: { terminated: { finishedAt: string } } }> };
    }>('get', 'pod', ap.status.lastProbe.pod, '-n', ns);
    const finished = Date.parse(pod.status.containerStatuses[0]?.state.terminated.finishedAt ?? '');
    const recorded = Date.parse(ap.status.lastProbe.time);
    process.stdout.write(
      `projected probe: verdict recorded ${recorded - finished} ms after the pod finished\n`,
    );
    expect(recorded - finished).toBeLessThan(5_000);
    const table = await kubectl('get', 'authprobes', '-n', ns);
    expect(table).toMatch(/projected\s+app\s+Projected\s+True\s+Authenticated/);
  }, 120_000);

  it('a secret-sourced probe with a valid legacy token is Ready=True/Authenticated', async () => {
    const { uid } = await createLegacyTokenSecret(ns, 'app', 'app-token');
    await apply(
      probe('legacy', { serviceAccountName: 'app', token: { source: 'Secret', secretName: 'app-token' } }),
    );
    const ready = await waitForReason(ns, 'legacy', 'Authenticated', 90_000);
    expect(ready.status).toBe('True');
    expect(await secretUid(ns, 'app-token')).toBe(uid);
  }, 120_000);

  it('check: TokenReview proves a secret token without a pod, says what is wrong, and answers probe-now', async () => {
    await createLegacyTokenSecret(ns, 'app', 'reviewed-token');
    await apply(
      probe('reviewed', {
        serviceAccountName: 'app',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'reviewed-token' },
      }),
    );
    // A token secret for another account: it authenticates, but not as "app".
    await apply(serviceAccount('other'));
    await createLegacyTokenSecret(ns, 'other', 'other-token');
    await apply(
      probe('wrong-account', {
        serviceAccountName: 'app',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'other-token' },
      }),
    );
    // A token secret of "app" whose token was copied from "other": it authenticates, but not as "app".
    const appUid = (
      await kubectlJson<{ metadata: { uid: string } }>('get', 'serviceaccount', 'app', '-n', ns)
    ).metadata.uid;
    const otherData = (
      await kubectlJson<{ data: Record<string, string> }>('get', 'secret', 'other-token', '-n', ns)
    ).data;
    await apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'copied-token',
        namespace: ns,
        annotations: {
          'kubernetes.io/service-account.name': 'app',
          'kubernetes.io/service-account.uid': appUid,
        },
      },
      type: 'kubernetes.io/service-account-token',
      data: otherData,
    });
    await apply(
      probe('copied', {
        serviceAccountName: 'app',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'copied-token' },
      }),
    );
    await apply(
      probe('reviewed-missing', {
        serviceAccountName: 'app',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'ghost-token' },
      }),
    );
    const ready = await waitForReason(ns, 'reviewed', 'Authenticated', 30_000);
    expect(ready.status).toBe('True');
    expect(ready.message).toMatch(
      new RegExp(`authenticates as system:serviceaccount:${ns}:app \\(TokenReview, \\d+ms\\)`),
    );
    // Another account's token secret is never read for its token (nor sent to TokenReview).
    expect(
      (await waitForReason(ns, 'wrong-account', 'SecretForOtherServiceAccount', 30_000)).message,
    ).toContain('ServiceAccount other');
    expect((await waitForReason(ns, 'copied', 'TokenIdentityMismatch', 30_000)).message).toContain(
      `system:serviceaccount:${ns}:other`,
    );
    expect((await waitForReason(ns, 'reviewed-missing', 'SecretNotFound', 30_000)).message).toContain(
      'ghost-token',
    );
    type Reviewed = {
      status: { lastProbe: { time: string; identity?: string; pod?: string; probeNow?: string } };
    };
    const before = await kubectlJson<Reviewed>('get', 'authprobe', 'reviewed', '-n', ns);
    expect(before.status.lastProbe.identity).toBe(`system:serviceaccount:${ns}:app`);
    expect(before.status.lastProbe.pod).toBeUndefined();
    // lastProbe.time has one-second resolution: make the next check land in another second.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const request = String(Date.now());
    await kubectl(
      'annotate',
      '--overwrite',
      'authprobe',
      'reviewed',
      '-n',
      ns,
      `authprobe.io/probe-now=${request}`,
    );
    const after = await waitFor('a TokenReview check on demand', 30_000, async () => {
      const ap = await kubectlJson<Reviewed>('get', 'authprobe', 'reviewed', '-n', ns);
      return ap.status.lastProbe.probeNow === request ? ap : undefined;
    });
    expect(after.status.lastProbe.time > before.status.lastProbe.time).toBe(true);
    for (const name of ['reviewed', 'wrong-account', 'reviewed-missing'])
      expect(await probePods(name)).toEqual([]);
  }, 120_000);

  it('gives each failure its own reason and touches no secret', async () => {
    const { uid } = await createLegacyTokenSecret(ns, 'app', 'untouched-token');
    await apply(serviceAccount('no-automount', { automountServiceAccountToken: false }));
    await apply(probe('no-sa', { serviceAccountName: 'ghost' }));
    await apply(
      probe('no-secret', {
        serviceAccountName: 'app',
        token: { source: 'Secret', secretName: 'ghost-token' },
      }),
    );
    await apply(probe('not-mounted', { serviceAccountName: 'no-automount' }));
    await apply(
      probe('forbidden', {
        serviceAccountName: 'app',
        token: { source: 'Secret', secretName: 'untouched-token' },
        path: '/api/v1/namespaces/kube-system/secrets',
      }),
    );
    await apply(
      probe('unschedulable', {
        serviceAccountName: 'app',
        podTemplate: { nodeSelector: { 'authprobe.io/no-such-node': 'true' } },
      }),
    );

    expect((await waitForReason(ns, 'no-sa', 'ServiceAccountNotFound', 60_000)).message).toContain('ghost');
    expect((await waitForReason(ns, 'no-secret', 'SecretNotFound', 60_000)).message).toContain('ghost-token');
    const notMounted = await waitForReason(ns, 'not-mounted', 'TokenNotMounted', 90_000);
    expect(notMounted.message).toMatch(/automountServiceAccountToken/);
    expect(notMounted.message).toMatch(/admission plugin/);
    const forbidden = await waitForReason(ns, 'forbidden', 'AuthenticatedForbidden', 90_000);
    expect(forbidden.status).toBe('True');
    const unschedulable = await waitForReason(ns, 'unschedulable', 'ProbePodFailed', 90_000);
    expect(unschedulable.message).toMatch(/cannot be scheduled/);
    expect(await secretUid(ns, 'untouched-token')).toBe(uid);
    const events = await eventsFor(ns, 'AuthProbe', 'forbidden');
    expect(events.map((e) => e.reason)).toContain('AuthenticatedForbidden');
  }, 240_000);

  it('says APIServerUnreachable when the pod cannot reach the apiserver, and deletes nothing', async () => {
    if (!isOwnCluster())
      throw new Error(
        'this test blocks pod traffic with iptables: run it on the test cluster (npm run cluster:env)',
      );
    const { uid } = await createLegacyTokenSecret(ns, 'app', 'unreach-token');
    // Pods reach the apiserver through the kubernetes Service, DNATed to the bridge address: refuse
    // exactly that, for the duration of this test only.
    const rule = [
      'INPUT',
      '-i',
      'authprobe0',
      '-p',
      'tcp',
      '--dport',
      '6443',
      '-m',
      'comment',
      '--comment',
      'authprobe-e2e-unreachable',
      '-j',
      'REJECT',
      '--reject-with',
      'tcp-reset',
    ];
    await run('iptables', ['-w', '-I', ...rule]);
    try {
      await apply(
        probe('unreachable', {
          serviceAccountName: 'app',
          token: { source: 'Secret', secretName: 'unreach-token' },
          timeout: '10s',
        }),
      );
      const ready = await waitForReason(ns, 'unreachable', 'APIServerUnreachable', 90_000);
      expect(ready.status).toBe('Unknown');
      expect(ready.message).toMatch(/says nothing about the token/);
    } finally {
      await run('iptables', ['-w', '-D', ...rule]);
    }
    expect(await secretUid(ns, 'unreach-token')).toBe(uid);
  }, 120_000);

  it('probes at once after a spec edit (observedGeneration follows) and on the probe-now annotation', async () => {
    const before = await kubectlJson<{
      metadata: { generation: number };
      status: { observedGeneration: number; lastProbe: { pod: string } };
    }>('get', 'authprobe', 'projected', '-n', ns);
    expect(before.status.observedGeneration).toBe(before.metadata.generation);
    await kubectl(
      'patch',
      'authprobe',
      'projected',
      '-n',
      ns,
      '--type=merge',
      '-p',
      '{"spec":{"timeout":"20s"}}',
    );
    const edited = await waitFor('a probe of the new generation', 60_000, async () => {
      const ap = await kubectlJson<typeof before>('get', 'authprobe', 'projected', '-n', ns);
      return ap.status.observedGeneration === before.metadata.generation + 1 &&
        ap.status.lastProbe.pod !== before.status.lastProbe.pod
        ? ap
        : undefined;
    });
    expect((await readyOf(ns, 'projected'))?.reason).toBe('Authenticated');
    await kubectl(
      'annotate',
      '--overwrite',
      'authprobe',
      'projected',
      '-n',
      ns,
      `authprobe.io/probe-now=${Date.now()}`,
    );
    await waitFor('a probe on demand', 60_000, async () => {
      const ap = await kubectlJson<typeof before>('get', 'authprobe', 'projected', '-n', ns);
      return ap.status.lastProbe.pod !== edited.status.lastProbe.pod ? true : undefined;
    });
  }, 150_000);

  it('`authprobe check` gives the controller verdict for the healthy case', async () => {
    const { stdout } = await run(process.execPath, [
      path.join(REPO, 'dist/cli/main.js'),
      'check',
      '-n',
      ns,
      '--service-account',
      'app',
      '--secret',
      'app-token',
    ]);
    expect(stdout).toMatch(/verdict: Authenticated \(Ready=True\)/);
    const projected = await run(process.execPath, [
      path.join(REPO, 'dist/cli/main.js'),
      'check',
      '-n',
      ns,
      '--service-account',
      'app',
      '-o',
      'json',
    ]);
    expect(JSON.parse(projected.stdout).verdict.reason).toBe('Authenticated');
    await expect(
      run(process.execPath, [
        path.join(REPO, 'dist/cli/main.js'),
        'check',
        '-n',
        ns,
        '--service-account',
        'ghost',
      ]),
    ).rejects.toMatchObject({ code: 1 });
  }, 60_000);

  it('deleting an AuthProbe removes its probe pods', async () => {
    expect((await probePods('projected')).length).toBeGreaterThan(0);
    await kubectl('delete', 'authprobe', 'projected', '-n', ns);
    await waitFor('probe pods to be garbage-collected', 60_000, async () =>
      (await probePods('projected')).length === 0 ? true : undefined,
    );
  }, 90_000);
});
