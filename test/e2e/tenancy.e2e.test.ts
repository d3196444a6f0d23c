/**
 * Tenancy on the real cluster, operator side (issue #11): an AuthProbe makes the operator touch only the
 * stale token secret of the account it names, never a Secret it cannot prove is that, and never runs a
 * pod its author's cluster admin did not allow. Each case tried as a tenant would, ending safely:
 * - an Opaque Secret named by a TokenReview AuthProbe is neither read nor replaced;
 * - another account's token secret, labelled invalid by the legacy cleaner, is not re-purposed;
 * - a hand-written heal-intent annotation is ignored (no token secret is created for another account);
 * - an image outside the allow-list gets no pod; an AuthProbe in the operator's own namespace runs nothing;
 * - the metric series of a deleted AuthProbe are gone;
 * - with the tokens controller stopped nothing is deleted, and the heal happens once it is back;
 * - an AuthProbe deleted in the middle of a heal leaves a filled token secret behind.
 * (Admission, the author's own rights, is tested in tenancy-admission.e2e.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  apply,
  renderTenancyObjects,
  runCommand,
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

interface SecretJson {
  metadata: { uid: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  type: string;
  data?: Record<string, string>;
}

let image: string;
let ns: string; // the tenant's namespace
let opNs: string; // the operator's own namespace
let operator: OperatorProcess;
const operators: OperatorProcess[] = [];
let chartObjects = ''; // the chart's admission policy and aggregated roles, applied by the edit-tenant test

const probe = (name: string, spec: Record<string, unknown>, namespace = ns) => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace },
  spec: { interval: '10s', ...spec },
});
const secret = (name: string, namespace = ns): Promise<SecretJson> =>
  kubectlJson<SecretJson>('get', 'secret', name, '-n', namespace);
const serviceAccount = (name: string) => ({
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  metadata: { name, namespace: ns },
});
/** Asks for a check now and waits until a verdict newer than the request is recorded. */
async function checkAgain(name: string, timeoutMs = 30_000): Promise<void> {
  const asked = new Date(Date.now() + 1_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  await kubectl(
    'annotate',
    '--overwrite',
    'authprobe',
    name,
    '-n',
    ns,
    `authprobe.io/probe-now=${Date.now()}`,
  );
  await waitFor(`a new verdict for ${name}`, timeoutMs, async () => {
    const p = await kubectlJson<{ status?: { lastProbe?: { time?: string } } }>(
      'get',
      'authprobe',
      name,
      '-n',
      ns,
    );
    return (p.status?.lastProbe?.time ?? '') >= asked ? true : undefined;
  });
}

function startTenancyOperator(identity: string, extra: Record<string, string> = {}): OperatorProcess {
  const op = startOperator(
    {
      AUTHPROBE_IMAGE: image,
      AUTHPROBE_OPERATOR_NAMESPACE: opNs,
      // Its own namespace is watched too, to show that AuthProbes there are not run.
      AUTHPROBE_WATCH_NAMESPACES: `${ns},${opNs}`,
      AUTHPROBE_LEADER_ELECTION: 'false',
      ...extra,
    },
    identity,
  );
  operators.push(op);
  return op;
}

beforeAll(async () => {
  if (!isOwnCluster())
    throw new Error(
      'tenancy tests stop kube-controller-manager: point KUBECONFIG at the test cluster (npm run cluster:env)',
    );
  await assertNoClusterWideOperator();
  await installCrd();
  image = await ensureImage();
  [ns, opNs] = await Promise.all([createNamespace('tenant'), createNamespace('tenant-op')]);
  await apply(serviceAccount('p'));
  await apply(serviceAccount('other'));
  operator = startTenancyOperator('tenancy');
}, 240_000);

afterAll(async () => {
  await clusterScript('tokens-controller', 'start').catch(() => undefined);
  if (chartObjects)
    await runCommand('kubectl', ['delete', '--ignore-not-found', '-f', '-'], { input: chartObjects });
  for (const op of operators) {
    const code = await op.stop();
    if (code !== 0 && code !== null)
      process.stderr.write(`operator ${op.identity} exited ${code}; log ${op.logFile}\n`);
  }
  await Promise.all([ns, opNs].filter(Boolean).map((n) => deleteNamespace(n)));
}, 120_000);

describe('an AuthProbe makes the operator touch only the stale token secret of the account it names', () => {
  it("an Opaque Secret holding a CI system's token is never read, reviewed or replaced", async () => {
    await apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'gh', namespace: ns },
      type: 'Opaque',
      stringData: { token: 'not-a-jwt' },
    });
    const before = await secret('gh');
    await apply(
      probe('gh', {
        serviceAccountName: 'p',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'gh' },
      }),
    );
    const ready = await waitForReason(ns, 'gh', 'SecretNotServiceAccountToken', 30_000);
    // A new AuthProbe: Unknown while the state may still be settling (the secret could be re-created).
    expect(ready.status).toBe('Unknown');
    expect(ready.message).toContain('never reads, sends or changes it');
    await checkAgain('gh');
    const after = await secret('gh');
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.type).toBe('Opaque');
    expect(after.data).toEqual(before.data);
  }, 90_000);

  it("another account's token secret, labelled invalid by the legacy cleaner, is not re-purposed", async () => {
    const { uid } = await createLegacyTokenSecret(ns, 'other', 'other-token');
    await kubectl(
      'label',
      'secret',
      'other-token',
      '-n',
      ns,
      'kubernetes.io/legacy-token-invalid-since=2026-11-01',
    );
    await apply(
      probe('wrong-account', {
        serviceAccountName: 'p',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'other-token' },
      }),
    );
    expect(
      (await waitForReason(ns, 'wrong-account', 'SecretForOtherServiceAccount', 30_000)).message,
    ).toContain('ServiceAccount other');
    await checkAgain('wrong-account');
    const after = await secret('other-token');
    expect(after.metadata.uid).toBe(uid);
    expect(after.type).toBe('kubernetes.io/service-account-token');
    expect(after.metadata.annotations?.['kubernetes.io/service-account.name']).toBe('other');
  }, 90_000);

  it('a hand-written heal-intent annotation is ignored: no token secret is created for another account', async () => {
    await createLegacyTokenSecret(ns, 'p', 'p-token');
    const forged = JSON.stringify({
      secretName: 'stolen-token',
      staleUid: 'forged',
      staleResourceVersion: '1',
      serviceAccountName: 'other',
      labels: {},
      annotations: {},
      startedAt: new Date().toISOString(),
    });
    await apply({
      ...probe('forged', {
        serviceAccountName: 'p',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'p-token' },
      }),
      metadata: { name: 'forged', namespace: ns, annotations: { 'authprobe.io/heal-intent': forged } },
    });
    await waitForReason(ns, 'forged', 'Authenticated', 30_000);
    await waitFor('the HealIntentIgnored Event', 30_000, async () =>
      (await eventsFor(ns, 'AuthProbe', 'forged')).some((e) => e.reason === 'HealIntentIgnored')
        ? true
        : undefined,
    );
    await expect(secret('stolen-token')).rejects.toThrow(/NotFound|not found/);
  }, 90_000);

  it('an image outside the allow-list gets ProbePodNotAllowed and no pod', async () => {
    await apply(
      probe('own-image', {
        serviceAccountName: 'p',
        podTemplate: { image: 'docker.io/library/busybox:1.36' },
      }),
    );
    const ready = await waitForReason(ns, 'own-image', 'ProbePodNotAllowed', 30_000);
    expect(ready.message).toContain('spec.podTemplate.image docker.io/library/busybox:1.36');
    const pods = await kubectl('get', 'pods', '-n', ns, '-l', 'authprobe.io/probe=own-image', '-o', 'name');
    expect(pods.trim()).toBe('');
  }, 60_000);

  it("an AuthProbe in the operator's own namespace runs nothing there", async () => {
    await kubectl('create', 'serviceaccount', 'authprobe-operator', '-n', opNs);
    await apply(probe('mine', { serviceAccountName: 'authprobe-operator' }, opNs));
    const ready = await waitForReason(opNs, 'mine', 'NamespaceExcluded', 30_000);
    expect(ready.status).toBe('False');
    const pods = await kubectl('get', 'pods', '-n', opNs, '-l', 'authprobe.io/probe=mine', '-o', 'name');
    expect(pods.trim()).toBe('');
  }, 60_000);

  it('the metric series of a deleted AuthProbe are removed', async () => {
    const series = async () =>
      (await operator.get('/metrics')).body
        .split('\n')
        .filter((l) => l.includes(`authprobe="own-image"`) && l.includes(`namespace="${ns}"`));
    await waitFor('own-image to have metric series', 30_000, async () =>
      (await series()).length ? true : undefined,
    );
    await kubectl('delete', 'authprobe', 'own-image', '-n', ns);
    await waitFor('its series to be gone from /metrics', 30_000, async () =>
      (await series()).length === 0 ? true : undefined,
    );
  }, 60_000);
});

describe('a tenant with edit in its namespace', () => {
  it('still creates AuthProbes (the admission policy allows it) and gets healing', async () => {
    // The chart's admission policy (bound to this namespace only) and its aggregated roles, which give
    // the built-in edit role its AuthProbe rights.
    chartObjects = await renderTenancyObjects('ap-edit', opNs, ns);
    await runCommand('kubectl', ['apply', '-f', '-'], { input: chartObjects });
    const alice = `ap-edit-alice-${ns}`;
    await kubectl('create', 'rolebinding', 'alice-edit', '--clusterrole=edit', `--user=${alice}`, '-n', ns);
    const { uid } = await createLegacyTokenSecret(ns, 'p', 'alice-token');
    const manifest = JSON.stringify(
      probe('alice', {
        serviceAccountName: 'p',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'alice-token' },
      }),
    );
    // kube-controller-manager aggregates the new roles into edit a moment later.
    await waitFor('alice to be allowed to create the AuthProbe', 60_000, async () => {
      const r = await runCommand(
        'kubectl',
        ['--as', alice, '--as-group', 'system:authenticated', 'apply', '-f', '-'],
        {
          input: manifest,
          allowFail: true,
        },
      );
      return r.code === 0 ? true : undefined;
    });
    await waitForReason(ns, 'alice', 'Authenticated', 30_000);
    // A real 401: the legacy cleaner's label makes the apiserver reject the token.
    await kubectl(
      'label',
      'secret',
      'alice-token',
      '-n',
      ns,
      'kubernetes.io/legacy-token-invalid-since=2026-11-01',
    );
    await waitFor('the secret to be replaced and filled', 90_000, async () => {
      const now = await secret('alice-token').catch(() => undefined);
      return now && now.metadata.uid !== uid && now.data?.['token'] ? true : undefined;
    });
    const healed = await waitFor('alice to be healed and Ready=True', 60_000, async () => {
      const p = await kubectlJson<{
        status?: { heals?: { count?: number }; conditions?: Array<{ type: string; status: string }> };
      }>('get', 'authprobe', 'alice', '-n', ns);
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      return ready && (p.status?.heals?.count ?? 0) >= 1 ? p.status?.heals?.count : undefined;
    });
    expect(healed).toBe(1);
  }, 240_000);
});

describe('nothing is deleted that cannot be replaced', () => {
  it('with the tokens controller stopped a proven-invalid token is not deleted (HealBlocked); the heal happens once it is back', async () => {
    const { uid } = await createLegacyTokenSecret(ns, 'p', 'blocked-token');
    await apply(
      probe('blocked', {
        serviceAccountName: 'p',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'blocked-token' },
      }),
    );
    await waitForReason(ns, 'blocked', 'Authenticated', 30_000);
    await clusterScript('tokens-controller', 'stop');
    // An earlier heal may have proven the tokens controller alive a moment ago; such a proof holds
    // for CANARY_FRESH_FOR_MS (10 s), so the token is broken only after it has run out.
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    try {
      // The legacy cleaner's label makes the apiserver reject the token (401): a real proven-invalid token.
      await kubectl(
        'label',
        'secret',
        'blocked-token',
        '-n',
        ns,
        'kubernetes.io/legacy-token-invalid-since=2026-11-01',
      );
      const blocked = await waitForReason(ns, 'blocked', 'HealBlocked', 90_000);
      expect(blocked.message).toContain('tokens controller did not fill a test token secret');
      expect((await secret('blocked-token')).metadata.uid).toBe(uid);
    } finally {
      await clusterScript('tokens-controller', 'start');
    }
    // The back-off after a blocked heal is the interval; ask for a check now.
    await checkAgain('blocked', 90_000);
    await waitFor('the secret to be replaced and filled', 90_000, async () => {
      const now = await secret('blocked-token').catch(() => undefined);
      return now && now.metadata.uid !== uid && now.data?.['token'] ? true : undefined;
    });
  }, 300_000);

  it('an AuthProbe deleted in the middle of a heal leaves a filled token secret behind', async () => {
    const { uid } = await createLegacyTokenSecret(ns, 'p', 'midheal-token');
    await apply(
      probe('midheal', {
        serviceAccountName: 'p',
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'midheal-token' },
      }),
    );
    await waitForReason(ns, 'midheal', 'Authenticated', 30_000);
    // The regular operator stops; one that dies right after deleting a secret takes over.
    await operator.stop();
    const crashing = startTenancyOperator('tenancy-crash', { AUTHPROBE_FAILPOINTS: 'after-secret-delete' });
    await kubectl(
      'label',
      'secret',
      'midheal-token',
      '-n',
      ns,
      'kubernetes.io/legacy-token-invalid-since=2026-11-01',
    );
    await waitFor('the operator to die right after the delete', 120_000, async () =>
      crashing.child.signalCode === 'SIGKILL' ? true : undefined,
    );
    await expect(secret('midheal-token')).rejects.toThrow(/NotFound|not found/);
    const held = await kubectlJson<{
      metadata: { finalizers?: string[] };
      status?: { healIntent?: unknown };
    }>('get', 'authprobe', 'midheal', '-n', ns);
    expect(held.metadata.finalizers).toContain('authprobe.io/heal-in-flight');
    expect(held.status?.healIntent).toBeDefined();
    await kubectl('delete', 'authprobe', 'midheal', '-n', ns, '--wait=false');
    operator = startTenancyOperator('tenancy-2');
    await waitFor('the AuthProbe to be gone', 90_000, async () =>
      (await kubectl('get', 'authprobe', '-n', ns, '--ignore-not-found', '-o', 'name')).includes('midheal')
        ? undefined
        : true,
    );
    const left = await secret('midheal-token');
    expect(left.metadata.uid).not.toBe(uid);
    expect(left.type).toBe('kubernetes.io/service-account-token');
    expect(left.metadata.annotations?.['kubernetes.io/service-account.name']).toBe('p');
    expect(left.data?.['token']).toBeTruthy();
  }, 300_000);
});
