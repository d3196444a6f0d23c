/**
 * The controller runtime against a real apiserver: watches survive an apiserver restart, and two
 * operator processes elect one leader, the other taking over after the first is SIGKILLed.
 * Runs the built CLI (npm run build) as separate processes, exactly as the image runs it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  apply,
  clusterScript,
  createNamespace,
  deleteNamespace,
  installCrd,
  isOwnCluster,
  kubectlJson,
  startOperator,
  waitFor,
  type OperatorProcess,
} from '../support/cluster.js';
import type { AuthProbe } from '../../src/api/types.js';

let ns: string;
// The operators' own namespace (leases): never where the AuthProbes are, since an operator does not
// run AuthProbes in its own namespace.
let opNs: string;
const operators: OperatorProcess[] = [];

beforeAll(async () => {
  await installCrd();
  ns = await createNamespace('rt');
  opNs = await createNamespace('rt-op');
}, 90_000);

afterEach(async () => {
  for (const op of operators.splice(0)) {
    const code = await op.stop();
    if (code !== 0 && code !== null)
      process.stderr.write(`operator ${op.identity} exited ${code}; log ${op.logFile}\n`);
  }
}, 60_000);

afterAll(async () => {
  await deleteNamespace(ns);
  await deleteNamespace(opNs);
}, 30_000);

async function readyReason(name: string): Promise<string | undefined> {
  const probe = await kubectlJson<AuthProbe>('get', 'authprobe', name, '-n', ns);
  return probe.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
}

/** An AuthProbe for a ServiceAccount that does not exist: a verdict without any pod. */
async function createProbe(name: string): Promise<void> {
  await apply({
    apiVersion: 'authprobe.io/v1alpha1',
    kind: 'AuthProbe',
    metadata: { name, namespace: ns },
    spec: { serviceAccountName: `missing-${name}` },
  });
}

const leaseHolder = async (lease: string): Promise<string | undefined> =>
  (await kubectlJson<{ spec?: { holderIdentity?: string } }>('get', 'lease', lease, '-n', opNs)).spec
    ?.holderIdentity || undefined;

describe('controller runtime on a real apiserver', () => {
  it('keeps running across an apiserver restart, and its watches resume', async () => {
    if (!isOwnCluster())
      throw new Error(
        'this test restarts the apiserver: point KUBECONFIG at the test cluster (npm run cluster:env)',
      );
    const op = startOperator({
      AUTHPROBE_OPERATOR_NAMESPACE: opNs,
      AUTHPROBE_WATCH_NAMESPACES: ns,
      AUTHPROBE_LEASE_NAME: 'restart-test',
    });
    operators.push(op);
    await createProbe('before');
    await waitFor('the first AuthProbe to get a verdict', 30_000, async () =>
      (await readyReason('before')) === 'ServiceAccountNotFound' ? true : undefined,
    );

    await clusterScript('apiserver-outage', '15');
    expect(op.child.exitCode).toBeNull();

    // A change made after the restart is seen only if the watch resumed (or re-listed).
    await createProbe('after');
    await waitFor('the AuthProbe created after the restart to get a verdict', 60_000, async () =>
      (await readyReason('after')) === 'ServiceAccountNotFound' ? true : undefined,
    );
    expect(op.child.exitCode).toBeNull();
    expect((await op.get('/healthz')).status).toBe(200);
    await waitFor('/readyz to recover', 30_000, async () =>
      (await op.get('/readyz')).status === 200 ? true : undefined,
    );
    expect(await op.metric('authprobe_watch_errors_total')).toBeGreaterThan(0);
    expect(op.logs()).toMatch(/watch failed; resuming|list failed; retrying/);
  }, 240_000);

  it('two processes elect one leader; after SIGKILL the other takes over within the lease duration', async () => {
    const lease = 'election-test';
    const timing = {
      AUTHPROBE_LEASE_DURATION: '8s',
      AUTHPROBE_RENEW_DEADLINE: '6s',
      AUTHPROBE_RETRY_PERIOD: '1s',
    };
    const env = {
      AUTHPROBE_OPERATOR_NAMESPACE: opNs,
      AUTHPROBE_WATCH_NAMESPACES: ns,
      AUTHPROBE_LEASE_NAME: lease,
      ...timing,
    };
    const a = startOperator(env, 'elector-a');
    const b = startOperator(env, 'elector-b');
    operators.push(a, b);
    const first = await waitFor('a leader', 30_000, () => leaseHolder(lease));
    const [leader, standby] = first === a.identity ? [a, b] : [b, a];
    expect([a.identity, b.identity]).toContain(first);
    // Both are ready (warm caches), but only one leads.
    await waitFor('both replicas ready', 30_000, async () =>
      (await leader.get('/readyz')).status === 200 && (await standby.get('/readyz')).status === 200
        ? true
        : undefined,
    );
    expect((await standby.get('/readyz')).body).toContain('standby');
    expect(await leader.metric('authprobe_leader')).toBe(1);
    expect(await standby.metric('authprobe_leader')).toBe(0);

    const killedAt = Date.now();
    await leader.stop('SIGKILL');
    await waitFor(
      'the standby to take the lease',
      30_000,
      async () => ((await leaseHolder(lease)) === standby.identity ? true : undefined),
      200,
    );
    const takeoverMs = Date.now() - killedAt;
    process.stdout.write(`leader take-over after SIGKILL: ${takeoverMs} ms (lease duration 8 s)\n`);
    // Lease duration, plus one retry period (with jitter) to notice, plus polling slack.
    expect(takeoverMs).toBeLessThanOrEqual(8_000 + 1_200 + 1_000);

    // The new leader does the work.
    await createProbe('after-takeover');
    await waitFor('the new leader to reconcile', 30_000, async () =>
      (await readyReason('after-takeover')) === 'ServiceAccountNotFound' ? true : undefined,
    );
    expect(await standby.metric('authprobe_leader')).toBe(1);
  }, 120_000);
});
