/**
 * A verdict that will change by itself within seconds is checked again within seconds (issue #15), on
 * the real cluster, with AuthProbes whose interval is an hour:
 * - one `kubectl apply` of 20 ServiceAccounts, their token Secrets and AuthProbes (half Pod, half
 *   TokenReview): all Ready=True within 30 s, three times;
 * - an AuthProbe created before its ServiceAccount, before its Secret, or naming a Secret of the wrong
 *   type that is then re-created right: Ready=True within 30 s of the fix.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  apply,
  assertNoClusterWideOperator,
  createNamespace,
  deleteNamespace,
  ensureImage,
  eventsFor,
  installCrd,
  kubectl,
  kubectlJson,
  readyOf,
  startOperator,
  waitFor,
  type OperatorProcess,
} from '../support/cluster.js';

const COUNT = 20;
const ROUNDS = 3;
let image: string;
let opNs: string;
const namespaces: string[] = [];
let operator: OperatorProcess | undefined;

const tokenSecret = (
  ns: string,
  name: string,
  account: string,
  type = 'kubernetes.io/service-account-token',
) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: ns, annotations: { 'kubernetes.io/service-account.name': account } },
  type,
});
const authProbe = (
  ns: string,
  name: string,
  account: string,
  secretName: string,
  check: 'Pod' | 'TokenReview',
) => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace: ns },
  spec: { serviceAccountName: account, check, interval: '1h', token: { source: 'Secret', secretName } },
});

/** One `kubectl apply` of many objects (a List), as a user applies one file. */
const applyAll = (items: unknown[]): Promise<void> => apply({ apiVersion: 'v1', kind: 'List', items });

async function watchedNamespace(prefix: string): Promise<string> {
  const ns = await createNamespace(prefix);
  namespaces.push(ns);
  return ns;
}

/** One operator watching every namespace of this file (restarted when a namespace is added). */
async function operatorFor(): Promise<void> {
  await operator?.stop();
  operator = startOperator(
    {
      AUTHPROBE_IMAGE: image,
      AUTHPROBE_OPERATOR_NAMESPACE: opNs,
      AUTHPROBE_WATCH_NAMESPACES: namespaces.join(','),
      AUTHPROBE_LEADER_ELECTION: 'false',
    },
    `settling-${namespaces.length}`,
  );
  await waitFor('the operator to serve /readyz', 30_000, async () =>
    (await operator?.get('/readyz').catch(() => undefined))?.status === 200 ? true : undefined,
  );
}

async function readyWithin(ns: string, name: string, ms: number): Promise<number> {
  const started = Date.now();
  await waitFor(`${ns}/${name} to be Ready=True`, ms, async () =>
    (await readyOf(ns, name))?.status === 'True' ? true : undefined,
  );
  return Date.now() - started;
}

beforeAll(async () => {
  await assertNoClusterWideOperator();
  await installCrd();
  image = await ensureImage();
  opNs = await createNamespace('settle-op');
  for (let round = 1; round <= ROUNDS; round++) await watchedNamespace(`settle-${round}`);
  await watchedNamespace('settle-late');
  await operatorFor();
}, 240_000);

afterAll(async () => {
  await operator?.stop();
  await Promise.all([opNs, ...namespaces].filter(Boolean).map((n) => deleteNamespace(n)));
}, 120_000);

describe('objects applied together with their AuthProbes', () => {
  it.each(Array.from({ length: ROUNDS }, (_, i) => i + 1))(
    'round %i: one apply of 20 accounts, token secrets and AuthProbes (interval 1h) → all Ready=True within 30 s',
    async (round) => {
      const ns = namespaces[round - 1] as string;
      const items: unknown[] = [];
      for (let i = 0; i < COUNT; i++) {
        items.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `sa${i}`, namespace: ns } });
        items.push(tokenSecret(ns, `sa${i}-token`, `sa${i}`));
        items.push(authProbe(ns, `p${i}`, `sa${i}`, `sa${i}-token`, i % 2 ? 'Pod' : 'TokenReview'));
      }
      const started = Date.now();
      await applyAll(items);
      const notReady = await waitFor('all 20 AuthProbes to be Ready=True', 30_000, async () => {
        const list = await kubectlJson<{
          items: Array<{
            metadata: { name: string };
            status?: { conditions?: Array<{ type: string; status: string }> };
          }>;
        }>('get', 'authprobes', '-n', ns);
        const ready = list.items.filter((p) =>
          p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === COUNT ? [] : undefined;
      });
      expect(notReady).toEqual([]);
      process.stdout.write(
        `round ${round}: 20 AuthProbes Ready=True ${Date.now() - started} ms after the apply\n`,
      );
      // Nothing that was only not ready yet was reported as broken.
      for (let i = 0; i < COUNT; i++) {
        const warnings = (await eventsFor(ns, 'AuthProbe', `p${i}`)).filter((e) => e.type === 'Warning');
        expect(warnings.map((e) => e.reason)).toEqual([]);
      }
    },
    90_000,
  );
});

describe('a fix the user makes is noticed within seconds, not after the interval', () => {
  it('an AuthProbe created before its ServiceAccount: Ready=True within 30 s of creating the account', async () => {
    const ns = namespaces[ROUNDS] as string;
    await apply(authProbe(ns, 'early', 'late-sa', 'late-sa-token', 'TokenReview'));
    await waitFor('ServiceAccountNotFound', 30_000, async () =>
      (await readyOf(ns, 'early'))?.reason === 'ServiceAccountNotFound' ? true : undefined,
    );
    // Long enough that the back-off has grown past its first steps.
    await new Promise((resolve) => setTimeout(resolve, 20_000));
    expect((await readyOf(ns, 'early'))?.message).toMatch(/Checking again in \d+s/);
    await applyAll([
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'late-sa', namespace: ns } },
      tokenSecret(ns, 'late-sa-token', 'late-sa'),
    ]);
    const ms = await readyWithin(ns, 'early', 30_000);
    process.stdout.write(`account created late: Ready=True after ${ms} ms\n`);
  }, 120_000);

  it('a token Secret created late: Ready=True within 30 s of creating it', async () => {
    const ns = namespaces[ROUNDS] as string;
    await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'has-sa', namespace: ns } });
    await apply(authProbe(ns, 'no-secret-yet', 'has-sa', 'has-sa-token', 'Pod'));
    await waitFor('SecretNotFound', 30_000, async () =>
      (await readyOf(ns, 'no-secret-yet'))?.reason === 'SecretNotFound' ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 40_000));
    await apply(tokenSecret(ns, 'has-sa-token', 'has-sa'));
    const ms = await readyWithin(ns, 'no-secret-yet', 30_000);
    process.stdout.write(`secret created late: Ready=True after ${ms} ms\n`);
  }, 150_000);

  it('a Secret of the wrong type, fixed by re-creating it: Ready=True within 30 s of the fix', async () => {
    const ns = namespaces[ROUNDS] as string;
    await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'typo-sa', namespace: ns } });
    await apply({ ...tokenSecret(ns, 'typo-token', 'typo-sa', 'Opaque'), stringData: { token: 'x' } });
    await apply(authProbe(ns, 'wrong-type', 'typo-sa', 'typo-token', 'TokenReview'));
    await waitFor('SecretNotServiceAccountToken', 30_000, async () =>
      (await readyOf(ns, 'wrong-type'))?.reason === 'SecretNotServiceAccountToken' ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 40_000));
    await kubectl('delete', 'secret', 'typo-token', '-n', ns);
    await apply(tokenSecret(ns, 'typo-token', 'typo-sa'));
    const ms = await readyWithin(ns, 'wrong-type', 30_000);
    process.stdout.write(`secret re-created with the right type: Ready=True after ${ms} ms\n`);
  }, 150_000);
});
