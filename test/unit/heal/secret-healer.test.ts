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
import { ANNOTATION_HEALED_BY, intentFor, type HealIntent } from '../../../src/heal/intent.js';
import { SecretHealer } from '../../../src/heal/secret-healer.js';
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
  return op.healer.afterVerdict({ probe, spec: resolved(probe), verdict, target: targetOf(probe) });
}

/** The AuthProbe as the object of Events. */
const targetOf = (probe: AuthProbe) => ({
  apiVersion: AUTHPROBE_API_VERSION,
  kind: AUTHPROBE_KIND,
  name: probe.metadata.name,
  namespace: probe.metadata.namespace,
  uid: probe.metadata.uid,
});

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

/**
 * Each guard between a rejection and a delete, edge by edge: what the evidence gathered at heal time
 * says (not the check's), where the procedure stops, and what is counted. Written for the mutants that
 * survived the suites above (test/MUTATION.md).
 */
describe('SecretHealer: the guards before a delete, one by one', () => {
  const heals = async (op: FakeOperator) =>
    (await op.metrics.heals.get()).values.map((v) => `${v.labels.action}/${v.labels.result}=${v.value}`);
  const setIntent = (op: FakeOperator, intent: HealIntent) =>
    op.kube.update(paths.probe, (p) => {
      p.metadata.finalizers = ['authprobe.io/heal-in-flight'];
      p['status'] = { ...(p['status'] as object), healIntent: intent };
    });

  it("a secret that became another account's since the check is never reviewed or touched", async () => {
    const op = world();
    op.kube.update(paths.secret, (s) => {
      s.metadata.annotations = { ...s.metadata.annotations, 'kubernetes.io/service-account.name': 'other' };
    });
    const outcome = await afterVerdict(op);
    expect(outcome.verdict.reason).toBe(ProbeReason.SecretForOtherServiceAccount);
    expect(outcome.verdict.message).toMatch(
      /is the token secret of ServiceAccount other, .* Nothing was changed\.$/,
    );
    expect(op.kube.writes()).toEqual([]); // not even a TokenReview: its token is never sent
  });

  it('an account deleted since the check: nothing is reviewed or touched', async () => {
    const op = world();
    op.kube.remove(paths.serviceAccount);
    const outcome = await afterVerdict(op);
    expect(outcome.verdict.reason).toBe(ProbeReason.ServiceAccountNotFound);
    expect(outcome.verdict.message).toBe(
      `ServiceAccount ${NS}/${SA} does not exist, so no token would be issued for a replacement of secret ${SECRET}. Nothing was changed.`,
    );
    expect(op.kube.writes()).toEqual([]);
  });

  it('a secret deleted since the check: the verdict stands, nothing is done', async () => {
    const op = world();
    op.kube.remove(paths.secret);
    expect(await afterVerdict(op)).toEqual({ verdict: rejected(), probeAgainNow: false });
    expect(op.kube.writes()).toEqual([]);
  });

  it('a secret emptied since the check: reported as not filled, nothing reviewed or touched', async () => {
    const op = world();
    op.kube.update(paths.secret, (s) => {
      s['data'] = {};
    });
    const outcome = await afterVerdict(op);
    expect(outcome.verdict).toMatchObject({ reason: ProbeReason.TokenNotMounted, tokenProvenInvalid: true });
    expect(op.kube.writes()).toEqual([]);
  });

  it('a rejection is reviewed a second time before it counts, unless a retired key explains it', async () => {
    const op = world();
    const healer = new SecretHealer({
      client: op.kube,
      recorder: op.events,
      metrics: op.metrics,
      logger: op.log.logger,
      config: { healBudgetPerHour: 10 },
      now: op.clock.now,
      reconfirmAfterMs: 1,
      canary: { check: async () => ({ ok: true }) },
    });
    const probe = storedProbe(op.kube);
    const input = (verdict: Verdict) => ({ probe, spec: resolved(probe), verdict, target: targetOf(probe) });
    // The apiserver's secret cache catches up between the two reviews: the second accepts the token.
    let reviews = 0;
    op.kube.beforeEvery('POST', paths.tokenReviews, () => {
      if (++reviews === 2) op.kube.acceptToken(STALE, USERNAME);
    });
    const lagging = await healer.afterVerdict(input(rejected()));
    expect(reviews).toBe(2);
    expect(lagging.verdict.reason).toBe(HealReason.StaleMountedToken);
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);

    op.kube.rejectToken(STALE);
    reviews = 0;
    const retired = { ...rejected(), reason: ProbeReason.SigningKeyRetired };
    const healed = await healer.afterVerdict(input(retired));
    expect(reviews).toBe(1 + 1); // the one confirming review, and the review of the new token
    expect(healed.verdict.reason).toBe(HealReason.Healed);
  });

  it('a secret with finalizers is not deleted (HealBlocked), and the attempt gives its place in the budget back', async () => {
    const op = world({ healBudgetPerHour: 1 });
    op.kube.update(paths.secret, (s) => {
      s.metadata.finalizers = ['example.com/keep', 'example.com/audit'];
    });
    const held = await afterVerdict(op);
    expect(held.verdict).toMatchObject({ reason: HealReason.HealBlocked, readyStatus: 'False' });
    expect(held.verdict.message).toBe(
      `Secret ${SECRET} carries finalizers (example.com/keep, example.com/audit): a delete would leave it terminating ` +
        `until they are removed, and no replacement could be created meanwhile. Nothing was deleted; remove the ` +
        `finalizers or replace the secret by hand.`,
    );
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
    expect(intentOn(storedProbe(op.kube))).toBeUndefined();
    expect(await heals(op)).toEqual(['SecretRecreated/blocked=1']);

    op.kube.update(paths.secret, (s) => {
      s.metadata.finalizers = [];
    });
    const healed = await afterVerdict(op); // the cluster budget of 1 is still there
    expect(healed.verdict.reason).toBe(HealReason.Healed);
    expect(await heals(op)).toEqual(['SecretRecreated/blocked=1', 'SecretRecreated/succeeded=1']);
  });

  it('the tokens controller found broken right before the delete: blocked between the intent and the delete', async () => {
    let checks = 0;
    const op = world({
      canary: {
        check: async () =>
          ++checks === 1 ? { ok: true } : { ok: false, message: 'The tokens controller stopped.' },
      },
    });
    const outcome = await afterVerdict(op);
    expect(checks).toBe(2);
    expect(outcome.verdict).toMatchObject({
      reason: HealReason.HealBlocked,
      message: 'The tokens controller stopped.',
    });
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
    expect(intentOn(storedProbe(op.kube))).toBeUndefined();
  });

  it('resuming an intent whose secret someone else already replaced: nothing is deleted, theirs is adopted', async () => {
    const op = world();
    setIntent(op, intentFor(op.stale, SA, new Date(T0)));
    op.kube.remove(paths.secret);
    const theirs = addTokenSecret(op.kube, 'their-token');
    op.kube.acceptToken('their-token', USERNAME);
    op.kube.clearCalls();
    const outcome = await afterVerdict(op, {
      ...provenInvalid(ProbeReason.ProbePending, 'in flight'),
      tokenProvenInvalid: false,
    });
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(0);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(theirs.metadata.uid);
    expect(outcome.verdict.reason).toBe(HealReason.Healed);
    expect(op.events.reasons()).toEqual([EventReason.HealResumed, EventReason.TokenIssued]);
  });

  it('a conflict on the delete aborts; any other error of the delete is not swallowed', async () => {
    const op = world();
    op.kube.failNext('DELETE', paths.secret, new KubeApiError(500, 'InternalError', 'etcd down'));
    await expect(afterVerdict(op)).rejects.toThrow('etcd down');
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(0);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(op.stale.metadata.uid);
  });

  it('a create that fails other than AlreadyExists is not swallowed', async () => {
    const op = world();
    op.kube.failNext('POST', paths.secrets, new KubeApiError(403, 'Forbidden', 'secrets is forbidden'));
    await expect(afterVerdict(op)).rejects.toThrow('secrets is forbidden');
  });

  it('a replacement whose new token cannot be reviewed fails the heal with the reason', async () => {
    const op = world();
    let reviews = 0;
    op.kube.beforeEvery('POST', paths.tokenReviews, () => {
      if (++reviews === 2) throw new KubeApiError(503, 'ServiceUnavailable', 'etcdserver: leader changed');
    });
    const outcome = await afterVerdict(op);
    expect(outcome.verdict).toMatchObject({
      reason: HealReason.HealFailed,
      message: `The new token in secret ${SECRET} could not be checked with a TokenReview: etcdserver: leader changed`,
    });
    expect(await heals(op)).toEqual(['SecretRecreated/failed=1']);
  });

  it('what a heal tells, word for word', async () => {
    const op = world();
    await afterVerdict(op);
    expect(op.events.events.slice(2).map((e) => e.message)).toEqual([
      `Deleted stale token secret ${SECRET} (uid ${op.stale.metadata.uid}).`,
      `Created secret ${SECRET} for ServiceAccount ${SA}; waiting for kube-controller-manager to issue its token.`,
      `Secret ${SECRET} holds a new token that authenticates as ${USERNAME} (TokenReview).`,
    ]);
    expect(op.log.text()).toContain('token secret replaced');
    expect(op.log.text()).toContain(`"authprobe":"${NS}/app-probe"`);
  });

  it('a dry run and a rate limit are counted and told', async () => {
    const op = world({}, { check: 'TokenReview', heal: { policy: 'DryRun' } });
    const dry = await afterVerdict(op);
    expect(dry.verdict.message).toMatch(
      /^The apiserver rejected .* TokenReview confirmed the rejection\. DryRun: would replace/,
    );
    expect(await heals(op)).toEqual(['SecretRecreated/dry-run=1']);
    const limited = world({}, { check: 'TokenReview', heal: { maxPerHour: 0 } });
    await afterVerdict(limited);
    expect(await heals(limited)).toEqual(['SecretRecreated/rate-limited=1']);
  });

  it('a confirmed heal does not ask for another check', async () => {
    const op = world();
    op.kube.update(paths.probe, (p) => {
      p['status'] = {
        heals: { count: 1, lastTime: '2026-03-01T11:00:00Z', lastResult: HealProgress.AwaitingProbe },
      };
    });
    const outcome = await afterVerdict(op, {
      ...provenInvalid(ProbeReason.Authenticated, 'ok'),
      readyStatus: 'True',
      tokenProvenInvalid: false,
    });
    expect(outcome).toMatchObject({ verdict: { reason: HealReason.Healed }, probeAgainNow: false });
  });

  it('an AuthProbe deleted mid-heal keeps its finalizer while the heal fails', async () => {
    const op = world({ tokensController: false, fillTimeoutMs: 50 });
    op.kube.beforeEvery('GET', paths.secret, () => op.clock.advance(100));
    setIntent(op, intentFor(op.stale, SA, new Date(T0)));
    const probe = storedProbe(op.kube);
    expect(await op.healer.finishBeforeDeletion(probe, resolved(probe), targetOf(probe))).toBe(false);
    expect(op.events.reasons()).toEqual([
      EventReason.HealResumed,
      EventReason.SecretDeleted,
      EventReason.SecretRecreated,
      HealReason.HealFailed,
    ]);
    expect(op.events.find(EventReason.HealResumed)?.message).toBe(
      `The AuthProbe is being deleted during the replacement of secret ${SECRET}: finishing it first so the secret is not left deleted.`,
    );
  });
});

describe('SecretHealer: converging on the intent, edge by edge', () => {
  it('a secret deleted by someone else between the read and the delete: the replacement is created all the same', async () => {
    const op = world();
    op.kube.before('DELETE', paths.secret, () => op.kube.remove(paths.secret));
    const outcome = await afterVerdict(op);
    expect(outcome.verdict.reason).toBe(HealReason.Healed);
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(1);
  });

  it('a replacement that someone else created and then deleted again: the heal fails, saying so', async () => {
    const op = world();
    let adopting = false;
    op.kube.before('POST', paths.secrets, () => {
      op.kube.add(paths.secrets, { metadata: { name: SECRET } });
      adopting = true;
    });
    op.kube.beforeEvery('GET', paths.secret, () => {
      if (adopting) op.kube.remove(paths.secret);
    });
    const outcome = await afterVerdict(op);
    expect(outcome.verdict).toMatchObject({
      reason: HealReason.HealFailed,
      message: `Secret ${SECRET} disappeared while it was being replaced.`,
    });
    expect(op.events.find(EventReason.SecretAdopted)?.message).toBe(
      `Secret ${SECRET} was recreated by someone else; using it.`,
    );
  });

  it('a token filled a moment after the create is waited for', async () => {
    const op = world({ tokensController: false });
    let reads = 0;
    op.kube.beforeEvery('GET', paths.secret, () => {
      if (op.kube.callsTo('POST', paths.secrets).length === 1 && ++reads === 2) {
        op.kube.update(paths.secret, (s) => {
          s['data'] = { token: b64('late-token') };
        });
        op.kube.acceptToken('late-token', USERNAME);
      }
    });
    expect((await afterVerdict(op)).verdict.reason).toBe(HealReason.Healed);
  });

  it('the wait for a token is as long as fillTimeoutMs, and said in seconds', async () => {
    const op = world({ tokensController: false, fillTimeoutMs: 3_000 });
    op.kube.beforeEvery('GET', paths.secret, () => op.clock.advance(1_000));
    const outcome = await afterVerdict(op);
    expect(outcome.verdict.message).toBe(
      `Secret ${SECRET} was recreated but kube-controller-manager did not issue a token within 3s. Check that its ` +
        `tokens controller runs (--service-account-private-key-file) and that ServiceAccount ${SA} exists.`,
    );
    // Reads at +1 s, +2 s, +3 s after the create; the third is at the deadline.
    expect(op.kube.callsTo('GET', paths.secret)).toHaveLength(2 + 3);
  });

  it('a new token the apiserver rejects is reviewed again for half of fillTimeoutMs', async () => {
    const op = world({ tokensController: false, fillTimeoutMs: 2_000 });
    op.kube.onCreate(paths.secrets, (path) =>
      op.kube.update(path, (s) => {
        s['data'] = { token: b64('new-token') };
      }),
    );
    op.kube.beforeEvery('POST', paths.tokenReviews, () => op.clock.advance(400));
    const outcome = await afterVerdict(op);
    expect(outcome.verdict.reason).toBe(HealReason.HealFailed);
    // The confirming review, then reviews ending at +400, +800 and +1200 ms: past the 1 s deadline.
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(1 + 3);
  });

  it('a new token accepted a moment after the create heals, and the verdict says so', async () => {
    const op = world();
    let reviews = 0;
    op.kube.beforeEvery('POST', paths.tokenReviews, () => {
      if (++reviews === 2) op.kube.rejectToken('issued-token-1');
      if (reviews === 3) op.kube.acceptToken('issued-token-1', USERNAME);
    });
    const outcome = await afterVerdict(op);
    expect(outcome.verdict.message).toBe(
      `Secret ${SECRET} was replaced after the apiserver rejected its token; the new token authenticates as ${USERNAME}. Another check confirms it now.`,
    );
  });

  it('restartWorkloads with no consumer records the replacement alone', async () => {
    const op = world({}, { check: 'TokenReview', heal: { restartWorkloads: true } });
    const outcome = await afterVerdict(op);
    expect(outcome.heals?.lastAction).toBe(HealAction.SecretRecreated);
  });
});
