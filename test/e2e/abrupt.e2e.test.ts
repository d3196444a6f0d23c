/**
 * The healer's own credential. The operator runs in the cluster (installed with the Helm chart), its
 * projected token signed by the current key. An abrupt key change (etcd restored into another
 * cluster) rejects that token too. The operator must say so (log, /readyz, metric), must not
 * restart in a loop, and must heal the stale secret by itself once the kubelet re-issues its token.
 * Nothing is sped up: the chart's own token lifetime (tokenExpirationSeconds, 600 s) and the
 * kubelet's own refresh (at 80% of that lifetime) decide how long the operator is locked out, and
 * the test measures it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  waitForHeal,
  REPO,
  apply,
  clusterScript,
  createLegacyTokenSecret,
  createNamespace,
  deleteNamespace,
  ensureImage,
  eventsFor,
  isOwnCluster,
  kubectl,
  kubectlJson,
  waitFor,
  waitForReason,
} from '../support/cluster.js';

const run = promisify(execFile);
let operatorNs: string;
let ns: string;
const release = 'abrupt';

interface PodJson {
  metadata: { name: string };
  status?: { startTime?: string; containerStatuses?: Array<{ restartCount: number; ready: boolean }> };
}

/** The chart's projected-token lifetime (values.yaml tokenExpirationSeconds), read, not assumed. */
async function chartTokenLifetimeS(): Promise<number> {
  const values = await run('helm', ['get', 'values', release, '-n', operatorNs, '--all', '-o', 'json']);
  const lifetime = (JSON.parse(values.stdout) as { tokenExpirationSeconds?: number }).tokenExpirationSeconds;
  if (!lifetime) throw new Error('the release has no tokenExpirationSeconds');
  return lifetime;
}

async function operatorPod(): Promise<PodJson> {
  const pods = await kubectlJson<{ items: PodJson[] }>(
    'get',
    'pods',
    '-n',
    operatorNs,
    '-l',
    `app.kubernetes.io/instance=${release}`,
  );
  const pod = pods.items[0];
  if (!pod) throw new Error('no operator pod');
  return pod;
}

beforeAll(async () => {
  if (!isOwnCluster())
    throw new Error(
      'this test changes the cluster signing key: point KUBECONFIG at the test cluster (npm run cluster:env)',
    );
  const image = await ensureImage();
  const [repository, tag] = image.split(/:(?=[^:]+$)/) as [string, string];
  operatorNs = await createNamespace('abrupt-op');
  ns = await createNamespace('abrupt');
  await run('helm', [
    'upgrade',
    '--install',
    release,
    path.join(REPO, 'charts/authprobe-operator'),
    '-n',
    operatorNs,
    '--wait',
    '--timeout',
    '180s',
    '--set',
    `image.repository=${repository}`,
    '--set',
    `image.tag=${tag}`,
    '--set',
    `watchNamespaces={${ns}}`,
  ]);
  await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: ns } });
  await createLegacyTokenSecret(ns, 'app', 'app-token');
  await apply({
    apiVersion: 'authprobe.io/v1alpha1',
    kind: 'AuthProbe',
    metadata: { name: 'app', namespace: ns },
    spec: {
      serviceAccountName: 'app',
      token: { source: 'Secret', secretName: 'app-token' },
      interval: '20s',
      timeout: '10s',
    },
  });
  await waitForReason(ns, 'app', 'Authenticated', 120_000);
}, 400_000);

afterAll(async () => {
  await run('helm', ['uninstall', release, '-n', operatorNs, '--wait']).catch(() => undefined);
  await Promise.all([deleteNamespace(ns), deleteNamespace(operatorNs)]);
}, 120_000);

describe('after an abrupt signing-key change', () => {
  it('the operator reports its own rejected credential, does not crash-loop, and heals once its token is re-issued', async () => {
    await clusterScript('rotate-sa-key', '--abrupt');
    const rotatedAt = Date.now();
    const name = (await operatorPod()).metadata.name;
    await waitFor(
      'the operator to report that its own token is rejected',
      120_000,
      async () => {
        const logs = await kubectl('logs', '-n', operatorNs, name);
        return logs.includes("rejects the operator's own token") ? true : undefined;
      },
      2_000,
    );
    await waitFor('the operator pod to turn NotReady (/readyz)', 60_000, async () =>
      (await operatorPod()).status?.containerStatuses?.[0]?.ready === false ? true : undefined,
    );
    // Three liveness periods with a rejected token: /healthz stays fine, so no restart.
    await new Promise((resolve) => setTimeout(resolve, 35_000));
    expect((await operatorPod()).status?.containerStatuses?.[0]?.restartCount).toBe(0);

    // Nothing is restarted: the kubelet re-issues the operator's token at 80% of its lifetime,
    // counted from when it was issued (the pod's start, before the rotation).
    const lifetimeS = await chartTokenLifetimeS();
    const issuedAt = Date.parse((await operatorPod()).status?.startTime ?? '');
    const refreshDue = issuedAt + 0.8 * lifetimeS * 1000;
    const acceptedAt = await waitFor(
      "the operator's re-issued token to be accepted",
      lifetimeS * 1000,
      async () => {
        const logs = await kubectl('logs', '-n', operatorNs, name);
        return logs.includes("accepts the operator's token again") ? Date.now() : undefined;
      },
      2_000,
    );
    await waitForHeal(ns, 'app', 120_000);
    const healedAt = Date.now();
    const lockoutS = (acceptedAt - rotatedAt) / 1000;
    process.stdout.write(
      `abrupt key change: operator locked out ${lockoutS.toFixed(0)} s (token lifetime ${lifetimeS} s, ` +
        `issued ${((rotatedAt - issuedAt) / 1000).toFixed(0)} s before the change, kubelet refresh due ` +
        `${((refreshDue - rotatedAt) / 1000).toFixed(0)} s after it); healed ${((healedAt - acceptedAt) / 1000).toFixed(0)} s later\n`,
    );
    // Bounded by the kubelet's refresh at 80% of the lifetime, plus its sync period (up to ~90 s).
    expect(acceptedAt).toBeGreaterThan(refreshDue - 5_000);
    expect(acceptedAt).toBeLessThan(refreshDue + 120_000);
    // The heal follows within one probe interval (20 s) plus the heal itself.
    expect(healedAt - acceptedAt).toBeLessThan(60_000);
    // The heal can finish before the kubelet's next readiness probe of the operator (periodSeconds 5).
    await waitFor('the operator pod to turn Ready again (/readyz)', 60_000, async () =>
      (await operatorPod()).status?.containerStatuses?.[0]?.ready === true ? true : undefined,
    );
    const pod = await operatorPod();
    expect(pod.metadata.name).toBe(name);
    expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    const reasons = (await eventsFor(ns, 'AuthProbe', 'app')).map((e) => e.reason);
    expect(reasons).toEqual(
      expect.arrayContaining(['SecretDeleted', 'SecretRecreated', 'TokenIssued', 'Healed']),
    );
    const logs = await kubectl('logs', '-n', operatorNs, name);
    expect(logs).toContain("accepts the operator's token again");
  }, 900_000);
});
