/**
 * The SecretHealer against a fake apiserver (test/unit/support/fake-kube.ts): what it deletes, creates
 * and patches, in which order, with which preconditions, and what it tells (Events, the verdict,
 * status.heals). The reconciler around it is covered in test/unit/controller/authprobe-reconciler.test.ts.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  LABEL_LEGACY_TOKEN_INVALID_SINCE,
  LABEL_LEGACY_TOKEN_LAST_USED,
  SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
} from '../../../src/api/labels.js';
import { EventReason, HealAction, HealProgress, HealReason, ProbeReason } from '../../../src/api/reasons.js';
import {
  AUTHPROBE_API_VERSION,
  AUTHPROBE_KIND,
  type AuthProbe,
  type AuthProbeSpec,
} from '../../../src/api/types.js';
import { provenInvalid, type Verdict } from '../../../src/api/verdict.js';
import { ANNOTATION_HEALED_BY, type HealIntent } from '../../../src/heal/intent.js';
import type { HealOutcome } from '../../../src/heal/healer.js';
import { KubeApiError, KubeTransportError } from '../../../src/kube/errors.js';
import { apiPaths, secretToken, type SecretJson } from '../../../src/kube/resources.js';
import {
  addAuthProbe,
  addServiceAccount,
  addTokenSecret,
  b64,
  fakeOperator,
  NS,
  paths,
  resolved,
  SA,
  SECRET,
  storedProbe,
  storedSecret,
  T0,
  USERNAME,
  type FakeOperator,
  type OperatorOptions,
} from '../support/operator-fixture.js';
import { tokensController } from '../support/fake-kube.js';

const STALE = 'stale-token';
const USER_LABELS = { 'app.kubernetes.io/name': 'payments', [LABEL_LEGACY_TOKEN_LAST_USED]: '2025-11-02' };
const USER_ANNOTATIONS = { 'example.com/owner': 'team-payments' };

/** What a probe pod (or the TokenReview check) reports for a token the apiserver rejects. */
const rejected = (pod?: string): Verdict => ({
  ...provenInvalid(
    ProbeReason.TokenRejected,
    `The apiserver rejected the token in secret ${SECRET} (401 Unauthorized).`,
    { httpStatus: 401 },
  ),
  ...(pod ? { pod } : {}),
});

/** A service account, its stale token secret, and an AuthProbe of it (check TokenReview unless told). */
function world(options: OperatorOptions = {}, spec: Partial<AuthProbeSpec> = { check: 'TokenReview' }) {
  const op = fakeOperator(options);
  addServiceAccount(op.kube);
  const stale = addTokenSecret(op.kube, STALE, { labels: USER_LABELS, annotations: USER_ANNOTATIONS });
  addAuthProbe(op.kube, spec);
  op.kube.clearCalls();
  return { ...op, stale };
}

/** The healer's turn after a check's verdict, on the AuthProbe as stored now. */
function afterVerdict(op: FakeOperator, verdict: Verdict = rejected()): Promise<HealOutcome> {
  const probe = storedProbe(op.kube);
  return op.healer.afterVerdict({
    probe,
    spec: resolved(probe),
    verdict,
    target: {
      apiVersion: AUTHPROBE_API_VERSION,
      kind: AUTHPROBE_KIND,
      name: probe.metadata.name,
      namespace: probe.metadata.namespace,
      uid: probe.metadata.uid,
    },
  });
}

const intentOn = (probe: AuthProbe): HealIntent | undefined => probe.status?.healIntent;

describe('SecretHealer: replacing a rejected token secret', () => {
  let op: ReturnType<typeof world>;
  beforeEach(() => {
    op = world();
  });

  it('replaces it in order: confirm, intent, delete, create, fill, confirm the new token, clear the intent', async () => {
    const outcome = await afterVerdict(op);

    expect(op.kube.calls.map((c) => `${c.verb} ${c.path}`)).toEqual([
      `GET ${paths.secret}`, // the evidence: a fresh read of the secret...
      `GET ${paths.serviceAccount}`, // ...of its account (is it the account's token secret?)...
      `POST ${paths.tokenReviews}`, // ...and a TokenReview of its current token
      `GET ${paths.probe}`,
      `PATCH ${paths.probe}`, // the heal-in-flight finalizer, then...
      `PATCH ${paths.probe}/status`, // ...the intent, before anything changes
      `GET ${paths.secret}`,
      `DELETE ${paths.secret}`,
      `POST ${paths.secrets}`,
      `GET ${paths.secret}`, // filled by the tokens controller
      `POST ${paths.tokenReviews}`, // the new token authenticates
      `PATCH ${paths.probe}/status`, // the intent is cleared...
      `GET ${paths.probe}`,
      `PATCH ${paths.probe}`, // ...and the finalizer released
    ]);
    expect(op.events.reasons()).toEqual([
      ProbeReason.TokenRejected,
      EventReason.TokenRejectionConfirmed,
      EventReason.SecretDeleted,
      EventReason.SecretRecreated,
      EventReason.TokenIssued,
    ]);
    expect(outcome.verdict).toMatchObject({
      reason: HealReason.Healed,
      readyStatus: 'True',
      identity: USERNAME,
    });
    expect(outcome.probeAgainNow).toBe(true);
    expect(outcome.heals).toMatchObject({
      count: 1,
      lastAction: HealAction.SecretRecreated,
      lastResult: HealProgress.AwaitingProbe,
      lastTime: '2026-03-01T12:00:00Z',
    });
    const replaced = storedSecret(op.kube);
    expect(replaced?.metadata.uid).not.toBe(op.stale.metadata.uid);
    expect(replaced && secretToken(replaced)).toBe('issued-token-1');
  });

  it("the delete carries the stale secret's uid and resourceVersion as preconditions", async () => {
    await afterVerdict(op);
    const deletes = op.kube.callsTo('DELETE');
    expect(deletes).toHaveLength(1);
    expect(deletes[0]?.body).toEqual({
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      preconditions: { uid: op.stale.metadata.uid, resourceVersion: op.stale.metadata.resourceVersion },
    });
  });

  it('reads the secret it acts on fresh from the apiserver, not from the watch cache', async () => {
    await afterVerdict(op);
    const reads = op.kube.callsTo('GET', paths.secret);
    expect(reads.length).toBeGreaterThan(0);
    for (const read of reads) expect(read.query?.['resourceVersion']).toBeUndefined();
  });

  it('the intent is on the AuthProbe when the secret is deleted, and gone once the heal ends', async () => {
    let atDelete: HealIntent | undefined;
    op.kube.before('DELETE', paths.secret, () => {
      atDelete = intentOn(storedProbe(op.kube));
    });
    await afterVerdict(op);
    expect(atDelete).toEqual({
      secretName: SECRET,
      staleUid: op.stale.metadata.uid,
      staleResourceVersion: op.stale.metadata.resourceVersion,
      serviceAccountName: SA,
      labels: { 'app.kubernetes.io/name': 'payments' },
      annotations: { ...USER_ANNOTATIONS, 'kubernetes.io/service-account.name': SA },
      startedAt: new Date(T0).toISOString(),
    });
    expect(storedProbe(op.kube).status?.healIntent).toBeUndefined();
  });

  it("creates the replacement with the same name, labels and annotations, minus the cleaner's label and the uid annotation", async () => {
    const op = world({}, { check: 'TokenReview', heal: { invalidatedLegacyToken: 'Recreate' } });
    op.kube.update(paths.secret, (s) => {
      s.metadata.labels = { ...s.metadata.labels, [LABEL_LEGACY_TOKEN_INVALID_SINCE]: '2026-02-01' };
      s.metadata.annotations = {
        ...s.metadata.annotations,
        'kubectl.kubernetes.io/last-applied-configuration': '{"kind":"Secret"}',
      };
    });
    await afterVerdict(op);
    const created = op.kube.callsTo('POST', paths.secrets);
    expect(created).toHaveLength(1);
    expect(created[0]?.body).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: SECRET,
        namespace: NS,
        labels: { 'app.kubernetes.io/name': 'payments' },
        annotations: {
          ...USER_ANNOTATIONS,
          'kubernetes.io/service-account.name': SA,
          [ANNOTATION_HEALED_BY]: new Date(T0).toISOString(),
        },
      },
      type: SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
    });
    // The label made the verdict name its cause; the heal still replaced the secret (Recreate).
    expect(op.events.reasons().slice(0, 2)).toEqual([
      ProbeReason.TokenInvalidated,
      EventReason.TokenRejectionConfirmed,
    ]);
  });

  it('a secret that changed between the confirming TokenReview and the delete is not deleted (HealAborted)', async () => {
    op.kube.before('DELETE', paths.secret, () =>
      op.kube.update(paths.secret, (s) => {
        s.metadata.labels = { ...s.metadata.labels, 'rotated-by': 'someone-else' };
      }),
    );
    const outcome = await afterVerdict(op);

    expect(op.kube.callsTo('DELETE')).toHaveLength(1); // attempted, refused by the apiserver
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(0);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(op.stale.metadata.uid);
    expect(op.events.reasons()).toEqual([
      ProbeReason.TokenRejected,
      EventReason.TokenRejectionConfirmed,
      EventReason.HealAborted,
    ]);
    expect(outcome).toMatchObject({
      verdict: { reason: ProbeReason.ProbePending, readyStatus: 'Unknown' },
      probeAgainNow: true,
    });
    expect(outcome.heals).toBeUndefined();
    expect(intentOn(storedProbe(op.kube))).toBeUndefined();

    // An abort is not a failure: the next confirmed rejection heals at once, with the new preconditions.
    const changed = storedSecret(op.kube) as SecretJson;
    const next = await afterVerdict(op);
    expect(next.verdict.reason).toBe(HealReason.Healed);
    expect(op.kube.callsTo('DELETE')[1]?.body).toMatchObject({
      preconditions: { uid: changed.metadata.uid, resourceVersion: changed.metadata.resourceVersion },
    });
  });

  it('a secret someone else recreated between the delete and the create is adopted (SecretAdopted)', async () => {
    let theirs: SecretJson | undefined;
    op.kube.before('POST', paths.secrets, () => {
      theirs = op.kube.add(paths.secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: SECRET, annotations: { 'kubernetes.io/service-account.name': SA } },
        type: SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
      }) as SecretJson;
    });
    const outcome = await afterVerdict(op);

    expect(op.kube.callsTo('DELETE')).toHaveLength(1);
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(1); // answered AlreadyExists
    expect(storedSecret(op.kube)?.metadata.uid).toBe(theirs?.metadata.uid);
    expect(op.events.reasons()).toEqual([
      ProbeReason.TokenRejected,
      EventReason.TokenRejectionConfirmed,
      EventReason.SecretDeleted,
      EventReason.SecretAdopted,
      EventReason.TokenIssued,
    ]);
    expect(outcome.verdict.reason).toBe(HealReason.Healed);
    expect(intentOn(storedProbe(op.kube))).toBeUndefined();
  });

  it('Revalidate removes the legacy cleaner label with a resourceVersion precondition and deletes nothing', async () => {
    const op = world({}, { check: 'TokenReview', heal: { invalidatedLegacyToken: 'Revalidate' } });
    const labelled = op.kube.update(paths.secret, (s) => {
      s.metadata.labels = { ...s.metadata.labels, [LABEL_LEGACY_TOKEN_INVALID_SINCE]: '2026-02-01' };
    });
    const outcome = await afterVerdict(op);
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
    expect(op.kube.callsTo('PATCH', paths.secret)[0]?.body).toEqual({
      metadata: {
        resourceVersion: labelled.metadata.resourceVersion,
        labels: { [LABEL_LEGACY_TOKEN_INVALID_SINCE]: null },
      },
    });
    expect(storedSecret(op.kube)?.metadata.uid).toBe(op.stale.metadata.uid);
    expect(storedSecret(op.kube)?.metadata.labels).not.toHaveProperty(LABEL_LEGACY_TOKEN_INVALID_SINCE);
    expect(op.events.reasons()).toEqual([
      ProbeReason.TokenInvalidated,
      EventReason.TokenRejectionConfirmed,
      EventReason.TokenRevalidated,
    ]);
    expect(outcome.heals).toMatchObject({
      lastAction: HealAction.LabelRemoved,
      lastResult: HealProgress.AwaitingProbe,
    });
  });

  it('restartWorkloads rolls the Deployments that mount the secret, and only those', async () => {
    const op = world({}, { check: 'TokenReview', heal: { restartWorkloads: true } });
    const deployment = (name: string, secretName: string) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: { template: { spec: { volumes: [{ name: 'token', secret: { secretName } }] } } },
    });
    op.kube.add(apiPaths.workloads(NS, 'deployments'), deployment('consumer', SECRET));
    op.kube.add(apiPaths.workloads(NS, 'deployments'), deployment('bystander', 'other-secret'));
    const outcome = await afterVerdict(op);
    expect(op.kube.writes().filter((w) => w.includes('/deployments/'))).toEqual([
      `PATCH ${apiPaths.workload(NS, 'deployments', 'consumer')}`,
    ]);
    expect(op.events.reasons().slice(-2)).toEqual([EventReason.TokenIssued, EventReason.WorkloadsRestarted]);
    expect(outcome.heals?.lastAction).toBe(`${HealAction.SecretRecreated}+${HealAction.WorkloadsRestarted}`);
  });

  it('no token value reaches the recorded calls, the Events, the intent or the log', async () => {
    await afterVerdict(op);
    const told = [
      JSON.stringify(op.kube.calls),
      JSON.stringify(op.events.events),
      JSON.stringify(storedProbe(op.kube)),
      op.log.text(),
    ].join('\n');
    for (const token of [STALE, 'issued-token-1']) {
      expect(told).not.toContain(token);
      expect(told).not.toContain(b64(token));
    }
    // ...while the fake did see them: the check above would pass vacuously otherwise.
    expect(secretToken(storedSecret(op.kube) as SecretJson)).toBe('issued-token-1');
  });
});

describe('SecretHealer: never heals without proof', () => {
  it('a rejection the confirming TokenReview does not confirm deletes nothing (StaleMountedToken)', async () => {
    const op = world({}, {});
    op.kube.acceptToken(STALE, USERNAME); // the secret's current token is fine: the pod's copy was old
    const outcome = await afterVerdict(op, rejected('app-probe-probe-abc'));
    expect(outcome.verdict.reason).toBe(HealReason.StaleMountedToken);
    expect(outcome.verdict.message).toContain(`authenticates as ${USERNAME}`);
    expect(op.kube.writes()).toEqual([`POST ${paths.tokenReviews}`]);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(op.stale.metadata.uid);
    expect(op.events.reasons()).toEqual([]);
  });

  it.each([
    ['answers 503', new KubeApiError(503, 'ServiceUnavailable', 'etcdserver: leader changed')],
    [
      'times out',
      new KubeTransportError('ETIMEDOUT', 'POST /apis/authentication.k8s.io/v1/tokenreviews timed out'),
    ],
  ])('a confirming TokenReview that %s deletes nothing', async (_name, error) => {
    const op = world({}, {});
    op.kube.failNext('POST', paths.tokenReviews, error);
    const outcome = await afterVerdict(op, rejected('app-probe-probe-abc'));
    expect(outcome.verdict.reason).toBe(ProbeReason.TokenRejected);
    expect(outcome.verdict.message).toContain('could not be confirmed with a TokenReview');
    expect(outcome.probeAgainNow).toBe(false);
    expect(op.kube.writes()).toEqual([`POST ${paths.tokenReviews}`]);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(op.stale.metadata.uid);
  });

  it('a verdict that does not prove the token invalid is not even looked into', async () => {
    const op = world();
    const forbidden: Verdict = {
      reason: ProbeReason.AuthenticatedForbidden,
      readyStatus: 'True',
      message: 'forbidden',
      tokenProvenInvalid: false,
      httpStatus: 403,
    };
    const outcome = await afterVerdict(op, forbidden);
    expect(outcome).toEqual({ verdict: forbidden, probeAgainNow: false });
    expect(op.kube.calls).toEqual([]);
  });
});

describe('SecretHealer: a heal that does not end with a working token', () => {
  it('a replacement the tokens controller never fills fails the heal; the back-off holds the next attempt', async () => {
    const op = world({ tokensController: false, fillTimeoutMs: 50 });
    // Each look at the secret takes 100 ms, so the first look that finds no token is past the deadline.
    op.kube.beforeEvery('GET', paths.secret, () => op.clock.advance(100));
    const failed = await afterVerdict(op);

    expect(failed.verdict).toMatchObject({ reason: HealReason.HealFailed, readyStatus: 'False' });
    expect(failed.verdict.message).toContain('kube-controller-manager did not issue a token');
    expect(failed.heals).toMatchObject({ count: 0, lastResult: HealProgress.Failed });
    expect(failed.probeAgainNow).toBe(false);
    expect(op.events.reasons()).toEqual([
      ProbeReason.TokenRejected,
      EventReason.TokenRejectionConfirmed,
      EventReason.SecretDeleted,
      EventReason.SecretRecreated,
      HealReason.HealFailed,
    ]);
    expect(intentOn(storedProbe(op.kube))).toBeUndefined();

    // Later the secret gets a token the apiserver rejects too: the next attempt waits for the back-off.
    op.kube.update(paths.secret, (s) => {
      s['data'] = { token: b64('late-token') };
    });
    op.kube.clearCalls();
    op.clock.advance(10_000);
    const held = await afterVerdict(op);
    expect(held.verdict.reason).toBe(HealReason.HealRateLimited);
    expect(held.verdict.message).toMatch(/waits \d+s \(back-off\)/);
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);

    // Once the back-off has passed, the heal goes ahead.
    op.kube.onCreate(paths.secrets, tokensController(op.kube));
    op.clock.advance(60_000);
    const healed = await afterVerdict(op);
    expect(healed.verdict.reason).toBe(HealReason.Healed);
    expect(op.kube.callsTo('DELETE')).toHaveLength(1);
  });

  it.each([
    [
      "another account's token",
      (op: FakeOperator) => op.kube.acceptToken('new-token', `system:serviceaccount:${NS}:other`),
      /does not authenticate as .*TokenReview: system:serviceaccount:team:other/,
    ],
    [
      'a token the apiserver keeps rejecting',
      // The apiserver does not trust the key the tokens controller signs with; each review takes 2 s,
      // so the retries for a just-created secret run out without a real wait.
      (op: FakeOperator) => op.kube.beforeEvery('POST', paths.tokenReviews, () => op.clock.advance(2_000)),
      /does not authenticate as .*TokenReview: rejected/,
    ],
  ])('a replacement holding %s fails the heal (HealFailed)', async (_name, arrange, message) => {
    const op = world({ tokensController: false, fillTimeoutMs: 2_000 });
    op.kube.onCreate(paths.secrets, (path) =>
      op.kube.update(path, (s) => {
        s['data'] = { token: b64('new-token') };
      }),
    );
    arrange(op);
    const outcome = await afterVerdict(op);
    expect(outcome.verdict.reason).toBe(HealReason.HealFailed);
    expect(outcome.verdict.message).toMatch(message);
    expect(outcome.heals?.lastResult).toBe(HealProgress.Failed);
    expect(op.events.reasons().slice(-2)).toEqual([EventReason.SecretRecreated, HealReason.HealFailed]);
    expect(intentOn(storedProbe(op.kube))).toBeUndefined();
  });
});

/** A bug found while writing this suite; the test failed before its fix. */
describe('SecretHealer: a bug this suite found, fixed', () => {
  it('Revalidate on a secret that changed meanwhile aborts like a delete does (HealAborted)', async () => {
    const op = world({}, { check: 'TokenReview', heal: { invalidatedLegacyToken: 'Revalidate' } });
    op.kube.update(paths.secret, (s) => {
      s.metadata.labels = { [LABEL_LEGACY_TOKEN_INVALID_SINCE]: '2026-02-01' };
    });
    op.kube.before('PATCH', paths.secret, () =>
      op.kube.update(paths.secret, (s) => {
        s.metadata.labels = { ...s.metadata.labels, 'edited-by': 'admin' };
      }),
    );
    // Before the fix the 409 Conflict escaped afterVerdict: no Event said why, status was not written.
    const outcome = await afterVerdict(op);
    expect(op.events.reasons()).toContain(EventReason.HealAborted);
    expect(outcome).toMatchObject({ verdict: { reason: ProbeReason.ProbePending }, probeAgainNow: true });
  });
});
