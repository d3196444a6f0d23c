/**
 * The reconciler with both checks and the SecretHealer, wired as src/operator/run.ts wires them, against
 * a fake apiserver (test/unit/support/fake-kube.ts). Each test asserts what a user would see: Events in
 * order, the Ready condition, status.heals, the secret (and its uid), and the calls the operator made.
 */
import { describe, expect, it } from '@jest/globals';
import { ANNOTATION_PROBE_NOW } from '../../../src/api/labels.js';
import { EventReason, HealAction, HealProgress, HealReason, ProbeReason } from '../../../src/api/reasons.js';
import type { AuthProbe, AuthProbeSpec, AuthProbeStatus } from '../../../src/api/types.js';
import { FINALIZER_HEAL_IN_FLIGHT, intentFor } from '../../../src/heal/intent.js';
import { KubeApiError, KubeTransportError } from '../../../src/kube/errors.js';
import { apiPaths, secretToken, type SecretJson } from '../../../src/kube/resources.js';
import type { StoredObject } from '../support/fake-kube.js';
import {
  addAuthProbe,
  addServiceAccount,
  addTokenSecret,
  b64,
  fakeOperator,
  finishPod,
  KEY,
  latestProbePod,
  NS,
  paths,
  podGeneration,
  PROBE,
  probePods,
  probeResult,
  ready,
  SA,
  SECRET,
  storedProbe,
  storedSecret,
  T0,
  USERNAME,
  type FakeOperator,
  type OperatorOptions,
} from '../support/operator-fixture.js';

const STALE = 'stale-token';
const TOKEN_REVIEW: Partial<AuthProbeSpec> = { check: 'TokenReview' };
const POD: Partial<AuthProbeSpec> = {};

/** A service account, its stale token secret (the apiserver rejects its token) and an AuthProbe of it. */
function world(spec: Partial<AuthProbeSpec>, options: OperatorOptions = {}) {
  const op = fakeOperator(options);
  addServiceAccount(op.kube);
  const stale = addTokenSecret(op.kube, STALE, { labels: { 'app.kubernetes.io/name': 'payments' } });
  addAuthProbe(op.kube, spec);
  op.kube.clearCalls();
  return { ...op, stale };
}

const status = (op: FakeOperator): AuthProbeStatus => storedProbe(op.kube).status ?? {};
const setProbe = (op: FakeOperator, change: (probe: AuthProbe) => void) =>
  op.kube.update(paths.probe, (p) => change(p as unknown as AuthProbe));

/** Check Pod: the reconciler starts a probe pod, which then reports `httpStatus`; the next visit reads it. */
async function podReports(op: FakeOperator, httpStatus: number): Promise<string> {
  await op.reconcile();
  const pod = latestProbePod(op.kube).metadata.name;
  op.clock.advance(5_000);
  finishPod(op.kube, pod, probeResult(httpStatus));
  return pod;
}

/** Every update of the AuthProbe (its own status writes too) wakes the reconciler: such a visit must change nothing. */
async function expectSettled(op: FakeOperator): Promise<void> {
  op.kube.clearCalls();
  const before = op.events.events.length;
  await op.reconcile();
  expect(op.kube.writes()).toEqual([]);
  expect(op.events.reasons().slice(before)).toEqual([]);
}

const HEAL_STEPS = [
  ProbeReason.TokenRejected,
  EventReason.TokenRejectionConfirmed,
  EventReason.SecretDeleted,
  EventReason.SecretRecreated,
  EventReason.TokenIssued,
];

describe('AuthProbeReconciler: healing a rejected token secret', () => {
  it('check TokenReview: the secret is replaced in order, then the check right after confirms the heal', async () => {
    const op = world(TOKEN_REVIEW);
    const result = await op.reconcile();

    expect(op.kube.writes()).toEqual([
      `POST ${paths.tokenReviews}`, // the check: rejected
      `POST ${paths.tokenReviews}`, // the healer's confirmation of the secret's current token
      `PATCH ${paths.probe}`, // the heal-in-flight finalizer
      `PATCH ${paths.probe}/status`, // the intent
      `DELETE ${paths.secret}`,
      `POST ${paths.secrets}`,
      `POST ${paths.tokenReviews}`, // the new token authenticates
      `PATCH ${paths.probe}/status`, // the intent is cleared
      `PATCH ${paths.probe}`, // the finalizer released
      `PATCH ${paths.probe}/status`, // Healed, AwaitingProbe
      `POST ${paths.tokenReviews}`, // the check again, at once
      `PATCH ${paths.probe}/status`, // Confirmed
    ]);
    expect(op.events.reasons()).toEqual([...HEAL_STEPS, HealReason.Healed, EventReason.HealConfirmed]);
    expect(op.events.find(EventReason.HealConfirmed)?.message).toMatch(/^A TokenReview check authenticated/);

    // The first status write after the intent's own writes: the verdict.
    const healed = op.kube
      .callsTo('PATCH', `${paths.probe}/status`)
      .find((c) => (c.body as { status?: { conditions?: unknown } }).status?.conditions !== undefined);
    expect(healed?.body).toMatchObject({
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: HealReason.Healed }],
        heals: { count: 1, lastAction: HealAction.SecretRecreated, lastResult: HealProgress.AwaitingProbe },
      },
    });
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: HealReason.Healed });
    expect(status(op).heals).toMatchObject({ count: 1, lastResult: HealProgress.Confirmed });
    expect(status(op).lastProbe).toMatchObject({ outcome: HealReason.Healed, identity: USERNAME });
    expect(storedProbe(op.kube).status?.healIntent).toBeUndefined();

    const secret = storedSecret(op.kube) as SecretJson;
    expect(secret.metadata.uid).not.toBe(op.stale.metadata.uid);
    expect(secret.metadata.labels).toEqual({ 'app.kubernetes.io/name': 'payments' });
    expect(secretToken(secret)).toBe('issued-token-1');
    // The scheduled check reads the watch cache; the one right after the heal reads fresh.
    expect(op.kube.callsTo('GET', paths.secret).map((c) => c.query?.['resourceVersion'])[0]).toBe('0');
    expect(op.kube.callsTo('GET', paths.secret).at(-1)?.query).toBeUndefined();
    expect(result.requeueAfterMs).toBeGreaterThanOrEqual(5 * 60_000);
    await expectSettled(op);
  });

  it('check Pod: a 401 heals the secret and starts a new probe pod at once, whose success confirms the heal', async () => {
    const op = world(POD);
    const first = await podReports(op, 401);
    op.kube.clearCalls();
    await op.reconcile();

    expect(op.kube.writes()).toEqual([
      `POST ${paths.tokenReviews}`, // the healer's confirmation
      `PATCH ${paths.probe}`,
      `PATCH ${paths.probe}/status`,
      `DELETE ${paths.secret}`,
      `POST ${paths.secrets}`,
      `POST ${paths.tokenReviews}`,
      `PATCH ${paths.probe}/status`,
      `PATCH ${paths.probe}`,
      `PATCH ${paths.probe}/status`,
      `POST ${paths.pods}`, // a new probe pod, at once
    ]);
    expect(op.events.reasons()).toEqual([...HEAL_STEPS, HealReason.Healed]);
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: HealReason.Healed });
    expect(status(op).heals).toMatchObject({ count: 1, lastResult: HealProgress.AwaitingProbe });
    expect(status(op).lastProbe?.pod).toBe(first);
    const second = latestProbePod(op.kube);
    expect(second.metadata.name).not.toBe(first);
    expect(probePods(op.kube)).toHaveLength(2);
    await expectSettled(op); // the new pod is running: nothing to do until it reports

    op.clock.advance(5_000);
    finishPod(op.kube, second.metadata.name, probeResult(200));
    await op.reconcile();
    expect(op.events.reasons().slice(HEAL_STEPS.length + 1)).toEqual([EventReason.HealConfirmed]);
    expect(op.events.find(EventReason.HealConfirmed)?.message).toBe(
      `Probe pod ${second.metadata.name} authenticated with the replaced token: the heal is confirmed.`,
    );
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: HealReason.Healed });
    expect(status(op).heals).toMatchObject({ count: 1, lastResult: HealProgress.Confirmed });
    expect(status(op).lastProbe?.pod).toBe(second.metadata.name);
    expect(op.kube.callsTo('DELETE', paths.secret)).toHaveLength(0);
    await expectSettled(op);
  });

  it('a secret that changed before the delete is not deleted; the check runs again at once (HealAborted)', async () => {
    const op = world(TOKEN_REVIEW);
    // Right before the delete, an admin puts a working token into the secret.
    op.kube.before('DELETE', paths.secret, () => {
      op.kube.update(paths.secret, (s) => {
        s['data'] = { token: b64('fixed-by-admin') };
      });
      op.kube.acceptToken('fixed-by-admin', USERNAME);
    });
    await op.reconcile();

    expect(op.kube.callsTo('DELETE')).toHaveLength(1); // refused: 409 Conflict
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(0);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(op.stale.metadata.uid);
    expect(op.events.reasons()).toEqual([
      ProbeReason.TokenRejected,
      EventReason.TokenRejectionConfirmed,
      EventReason.HealAborted,
      ProbeReason.ProbePending,
      ProbeReason.Authenticated, // the check, run again at once
    ]);
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(3);
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: ProbeReason.Authenticated });
    expect(status(op).heals).toBeUndefined();
    expect(storedProbe(op.kube).status?.healIntent).toBeUndefined();
    await expectSettled(op);
  });

  it('a secret someone else recreated between the delete and the create is adopted (SecretAdopted)', async () => {
    const op = world(TOKEN_REVIEW);
    let theirs: StoredObject | undefined;
    op.kube.before('POST', paths.secrets, () => {
      theirs = op.kube.add(paths.secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: SECRET, annotations: { 'kubernetes.io/service-account.name': SA } },
        type: 'kubernetes.io/service-account-token',
      });
    });
    await op.reconcile();
    expect(op.kube.callsTo('DELETE')).toHaveLength(1);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(theirs?.metadata.uid);
    expect(op.events.reasons()).toEqual([
      ProbeReason.TokenRejected,
      EventReason.TokenRejectionConfirmed,
      EventReason.SecretDeleted,
      EventReason.SecretAdopted,
      EventReason.TokenIssued,
      HealReason.Healed,
      EventReason.HealConfirmed,
    ]);
    expect(status(op).heals).toMatchObject({ count: 1, lastResult: HealProgress.Confirmed });
  });

  describe('resuming a heal the operator did not finish (HealResumed)', () => {
    /** The intent a previous leader wrote before it died. */
    function interrupted(op: ReturnType<typeof world>): void {
      const intent = intentFor(op.stale, SA, new Date(T0 - 60_000));
      setProbe(op, (p) => {
        p.metadata.finalizers = [FINALIZER_HEAL_IN_FLIGHT];
        p.status = { ...p.status, healIntent: intent };
      });
      op.kube.clearCalls();
    }

    it('the stale secret is already deleted: the replacement is created, nothing is deleted', async () => {
      const op = world(TOKEN_REVIEW);
      interrupted(op);
      op.kube.remove(paths.secret);
      await op.reconcile();

      expect(op.kube.callsTo('DELETE')).toHaveLength(0);
      expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(1);
      expect(op.events.reasons()).toEqual([
        EventReason.HealResumed,
        EventReason.SecretRecreated,
        EventReason.TokenIssued,
        HealReason.Healed,
        EventReason.HealConfirmed,
      ]);
      expect(op.events.find(EventReason.HealResumed)?.message).toContain('2026-03-01T11:59:00.000Z');
      expect(ready(op.kube)).toMatchObject({ status: 'True', reason: HealReason.Healed });
      expect(status(op).heals).toMatchObject({ count: 1, lastResult: HealProgress.Confirmed });
      expect(storedProbe(op.kube).status?.healIntent).toBeUndefined();
      expect(secretToken(storedSecret(op.kube) as SecretJson)).toBe('issued-token-1');
      await expectSettled(op);
    });

    it("the stale secret still exists: it is deleted with the intent's preconditions", async () => {
      const op = world(TOKEN_REVIEW);
      interrupted(op);
      await op.reconcile();

      expect(op.kube.callsTo('DELETE')).toHaveLength(1);
      expect(op.kube.callsTo('DELETE')[0]?.body).toMatchObject({
        preconditions: { uid: op.stale.metadata.uid, resourceVersion: op.stale.metadata.resourceVersion },
      });
      expect(op.events.reasons()).toEqual([
        EventReason.HealResumed,
        EventReason.SecretDeleted,
        EventReason.SecretRecreated,
        EventReason.TokenIssued,
        HealReason.Healed,
        EventReason.HealConfirmed,
      ]);
      expect(storedSecret(op.kube)?.metadata.uid).not.toBe(op.stale.metadata.uid);
      await expectSettled(op);
    });

    it("the stale secret changed since the intent was written: the intent's preconditions refuse the delete, a fresh confirmation decides", async () => {
      const op = world(TOKEN_REVIEW);
      interrupted(op);
      const edited = op.kube.update(paths.secret, (s) => {
        s.metadata.labels = { ...s.metadata.labels, 'edited-by': 'admin' };
      });
      await op.reconcile();

      expect(op.kube.callsTo('DELETE').map((c) => c.body)).toEqual([
        expect.objectContaining({
          preconditions: { uid: op.stale.metadata.uid, resourceVersion: op.stale.metadata.resourceVersion },
        }), // the intent's: refused
        expect.objectContaining({
          preconditions: { uid: edited.metadata.uid, resourceVersion: edited.metadata.resourceVersion },
        }), // after the check ran again and a TokenReview confirmed the edited secret's token is rejected
      ]);
      expect(op.events.reasons()).toEqual([
        EventReason.HealResumed,
        EventReason.HealAborted,
        ProbeReason.ProbePending,
        ...HEAL_STEPS,
        HealReason.Healed,
      ]);
      expect(status(op).heals).toMatchObject({ count: 1, lastResult: HealProgress.AwaitingProbe });
      expect(storedProbe(op.kube).status?.healIntent).toBeUndefined();
    });
  });

  it('a replacement that is never filled fails the heal; the next attempt is held back (HealRateLimited)', async () => {
    const op = world(TOKEN_REVIEW, { tokensController: false, fillTimeoutMs: 50 });
    // Each look at the secret takes 100 ms, so the first look that finds no token is past the deadline.
    op.kube.beforeEvery('GET', paths.secret, () => op.clock.advance(100));
    await op.reconcile();

    expect(op.events.reasons()).toEqual([
      ...HEAL_STEPS.slice(0, 4),
      HealReason.HealFailed, // the step...
      HealReason.HealFailed, // ...and the verdict (EventRecorder folds the two into one Event, count 2)
    ]);
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: HealReason.HealFailed });
    expect(ready(op.kube)?.message).toContain('kube-controller-manager did not issue a token');
    expect(status(op).heals).toMatchObject({ count: 0, lastResult: HealProgress.Failed });
    expect(storedProbe(op.kube).status?.healIntent).toBeUndefined();
    await expectSettled(op);

    // The secret later gets a token the apiserver rejects as well; someone asks for a probe now.
    op.kube.update(paths.secret, (s) => {
      s['data'] = { token: b64('late-token') };
    });
    setProbe(op, (p) => {
      p.metadata.annotations = { [ANNOTATION_PROBE_NOW]: '1' };
    });
    op.clock.advance(10_000);
    op.events.clear();
    op.kube.clearCalls();
    await op.reconcile();
    expect(op.events.reasons()).toEqual([HealReason.HealRateLimited]);
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: HealReason.HealRateLimited });
    expect(ready(op.kube)?.message).toMatch(/waits \d+s \(back-off\)/);
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
    await expectSettled(op);
  });
});

describe('AuthProbeReconciler: never heals without proof', () => {
  interface Case {
    spec: Partial<AuthProbeSpec>;
    /** Before the check. */
    arrange?: (op: FakeOperator) => void;
    /** Check Pod: what the probe pod reports (otherwise the TokenReview check runs). */
    podReports?: number;
    reason: string;
    readyStatus: 'True' | 'False' | 'Unknown';
    events: string[];
  }
  const cases: Array<[string, Case]> = [
    [
      'a probe pod that got 403 (the token authenticates)',
      {
        spec: POD,
        podReports: 403,
        reason: ProbeReason.AuthenticatedForbidden,
        readyStatus: 'True',
        events: [ProbeReason.AuthenticatedForbidden],
      },
    ],
    [
      'a probe pod that got 503',
      {
        spec: POD,
        podReports: 503,
        reason: ProbeReason.APIServerError,
        readyStatus: 'Unknown',
        events: [ProbeReason.APIServerError],
      },
    ],
    [
      'a TokenReview check the apiserver answers with 500',
      {
        spec: TOKEN_REVIEW,
        arrange: (op) =>
          op.kube.failNext(
            'POST',
            paths.tokenReviews,
            new KubeApiError(500, 'InternalError', 'etcdserver: request timed out'),
          ),
        reason: ProbeReason.APIServerError,
        readyStatus: 'Unknown',
        events: [ProbeReason.APIServerError],
      },
    ],
    [
      'a TokenReview check that times out',
      {
        spec: TOKEN_REVIEW,
        arrange: (op) =>
          op.kube.failNext(
            'POST',
            paths.tokenReviews,
            new KubeTransportError('ETIMEDOUT', 'POST /apis/authentication.k8s.io/v1/tokenreviews timed out'),
          ),
        reason: ProbeReason.APIServerUnreachable,
        readyStatus: 'Unknown',
        events: [ProbeReason.APIServerUnreachable],
      },
    ],
    [
      "a probe pod's 401 that the TokenReview of the secret's current token does not confirm",
      {
        spec: POD,
        arrange: (op) => op.kube.acceptToken(STALE, USERNAME),
        podReports: 401,
        reason: HealReason.StaleMountedToken,
        // Settling (the mount or the apiserver's cache catches up in seconds): for a new AuthProbe,
        // Unknown and no Warning; checked again in 2 s.
        readyStatus: 'Unknown',
        events: [],
      },
    ],
    [
      'heal.policy DryRun',
      {
        spec: { ...TOKEN_REVIEW, heal: { policy: 'DryRun' } },
        reason: ProbeReason.TokenRejected,
        readyStatus: 'False',
        events: [EventReason.HealDryRun, ProbeReason.TokenRejected],
      },
    ],
    [
      'heal.maxPerHour used up (status.heals.history)',
      {
        spec: { ...TOKEN_REVIEW, heal: { maxPerHour: 2 } },
        arrange: (op) =>
          setProbe(op, (p) => {
            p.status = {
              heals: {
                count: 2,
                lastResult: HealProgress.Confirmed,
                history: ['2026-03-01T11:20:00Z', '2026-03-01T11:40:00Z'],
              },
            };
          }),
        reason: HealReason.HealRateLimited,
        readyStatus: 'False',
        events: [HealReason.HealRateLimited],
      },
    ],
    [
      'heal.policy Disabled',
      {
        spec: { ...TOKEN_REVIEW, heal: { policy: 'Disabled' } },
        reason: ProbeReason.TokenRejected,
        readyStatus: 'False',
        events: [ProbeReason.TokenRejected],
      },
    ],
    [
      'a projected token that got 401',
      {
        spec: { token: { source: 'Projected' } },
        podReports: 401,
        reason: HealReason.ProjectedTokenRejected,
        readyStatus: 'False',
        events: [HealReason.ProjectedTokenRejected],
      },
    ],
  ];

  it.each(cases)('%s: nothing is deleted or created', async (_name, c) => {
    const op = world(c.spec);
    c.arrange?.(op);
    if (c.podReports !== undefined) await podReports(op, c.podReports);
    op.kube.clearCalls();
    await op.reconcile();

    expect(op.kube.callsTo('DELETE', paths.secret)).toHaveLength(0);
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(0);
    expect(op.kube.callsTo('PATCH', paths.secret)).toHaveLength(0);
    expect(op.kube.writes()).not.toContain(`PATCH ${paths.probe}`); // no heal intent
    expect(storedSecret(op.kube)?.metadata.uid).toBe(op.stale.metadata.uid);
    expect(ready(op.kube)).toMatchObject({ status: c.readyStatus, reason: c.reason });
    expect(op.events.reasons()).toEqual(c.events);
    expect(status(op).heals?.lastResult).not.toBe(HealProgress.AwaitingProbe);
  });

  it('DryRun says what it would do, Disabled how to do it by hand', async () => {
    const dry = world({ ...TOKEN_REVIEW, heal: { policy: 'DryRun' } });
    await dry.reconcile();
    expect(dry.events.find(EventReason.HealDryRun)?.message).toMatch(
      /^TokenReview confirmed the rejection. DryRun: would replace secret app-token/,
    );
    const disabled = world({ ...TOKEN_REVIEW, heal: { policy: 'Disabled' } });
    await disabled.reconcile();
    expect(ready(disabled.kube)?.message).toContain(
      'spec.heal.policy is Disabled; to heal by hand, replace secret app-token',
    );
  });
});

describe('AuthProbeReconciler: which check is recorded, and when the next one starts', () => {
  it('a probe pod started for an older generation: its verdict is recorded, then a pod for the new generation starts at once', async () => {
    const op = world(POD);
    await op.reconcile();
    const old = latestProbePod(op.kube);
    expect(podGeneration(old)).toBe('1');
    setProbe(op, (p) => {
      p.spec = { ...p.spec, path: '/apis' };
    });
    expect(storedProbe(op.kube).metadata.generation).toBe(2);
    op.clock.advance(5_000);
    finishPod(op.kube, old.metadata.name, probeResult(200));

    const recorded = await op.reconcile();
    expect(status(op).lastProbe).toMatchObject({
      pod: old.metadata.name,
      outcome: ProbeReason.Authenticated,
    });
    expect(op.events.reasons()).toEqual([ProbeReason.Authenticated]);
    expect(recorded).toEqual({ requeueAfterMs: 0 }); // at once

    op.kube.clearCalls();
    await op.reconcile();
    expect(op.kube.writes()).toEqual([`POST ${paths.pods}`]);
    const current = latestProbePod(op.kube);
    expect(current.metadata.name).not.toBe(old.metadata.name);
    expect(podGeneration(current)).toBe('2');
    await expectSettled(op);
  });

  it('a verdict reached without a pod does not bring an older pod verdict back', async () => {
    const op = world(POD);
    const pod = await podReports(op, 200);
    await op.reconcile();
    expect(status(op).lastProbe).toMatchObject({ pod, outcome: ProbeReason.Authenticated });

    op.kube.remove(paths.serviceAccount);
    op.clock.advance(6 * 60_000); // past the interval (and its jitter)
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: ProbeReason.ServiceAccountNotFound });
    expect(status(op).lastProbe?.outcome).toBe(ProbeReason.ServiceAccountNotFound);

    op.events.clear();
    await expectSettled(op);
    op.clock.advance(30_000);
    await op.reconcile();
    expect(ready(op.kube)?.reason).toBe(ProbeReason.ServiceAccountNotFound);
    expect(op.events.reasons()).not.toContain(ProbeReason.Authenticated);
  });
});

/** Bugs found while writing this suite; each test failed before its fix. */
describe('AuthProbeReconciler: bugs this suite found, fixed', () => {
  it('check Pod, a spec change to a ServiceAccount that does not exist yet is recorded once, not on every visit', async () => {
    const op = world(POD);
    await podReports(op, 200);
    await op.reconcile();
    setProbe(op, (p) => {
      p.spec = { ...p.spec, serviceAccountName: 'not-created-yet' };
    });
    await op.reconcile();
    expect(ready(op.kube)?.reason).toBe(ProbeReason.ServiceAccountNotFound);
    expect(status(op).consecutiveFailures).toBe(1);
    // Before the fix every visit ran the check again (SpecChanged: the schedule read only the latest
    // pod's generation) and wrote status with consecutiveFailures + 1, which woke the reconciler again.
    await expectSettled(op);
  });

  it('a verdict reached without a pod leaves no evidence of the previous pod in status.lastProbe', async () => {
    const op = world(POD);
    await podReports(op, 200);
    await op.reconcile();
    op.kube.remove(paths.serviceAccount);
    op.clock.advance(6 * 60_000);
    await op.reconcile();
    // The status write is a JSON merge patch: keys the new lastProbe lacks keep their old values.
    expect(status(op).lastProbe).toEqual({
      time: '2026-03-01T12:06:05Z',
      outcome: ProbeReason.ServiceAccountNotFound,
      message: expect.any(String),
    });
  });

  it("the Ready condition of a verdict from an older generation's pod does not claim the new generation", async () => {
    const op = world(POD);
    await op.reconcile();
    setProbe(op, (p) => {
      p.spec = { ...p.spec, path: '/apis' };
    });
    op.clock.advance(5_000);
    finishPod(op.kube, latestProbePod(op.kube).metadata.name, probeResult(200));
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ reason: ProbeReason.Authenticated, observedGeneration: 1 });
  });
});

/** The reconciler's own rules, edge by edge (written for mutants that survived the suites above). */
describe('the reconciler, rule by rule', () => {
  const series = async (op: FakeOperator, metric: 'probes' | 'authenticated' | 'lastSuccess' | 'heals') =>
    (await op.metrics[metric].get()).values.map((v) => ({ labels: v.labels, value: v.value }));

  it('metrics after a check: the outcome counted, authenticated, the last success in seconds, the duration', async () => {
    const op = world(TOKEN_REVIEW);
    op.kube.acceptToken(STALE, USERNAME);
    op.kube.beforeEvery('POST', paths.tokenReviews, () => op.clock.advance(250));
    await op.reconcile();
    const who = { namespace: NS, authprobe: PROBE };
    expect(await series(op, 'probes')).toEqual([
      { labels: { ...who, reason: ProbeReason.Authenticated }, value: 1 },
    ]);
    expect(await series(op, 'authenticated')).toEqual([{ labels: who, value: 1 }]);
    expect(await series(op, 'lastSuccess')).toEqual([{ labels: who, value: T0 / 1000 }]); // second precision, as status says
    const duration = (await op.metrics.probeDuration.get()).values.find((v) =>
      v.metricName?.endsWith('_sum'),
    );
    expect(duration).toMatchObject({ labels: { source: 'Secret', check: 'TokenReview' }, value: 0.25 });
  });

  it('an AuthProbe gone from the cache is forgotten: its metrics and its marks', async () => {
    const op = world(TOKEN_REVIEW);
    op.kube.acceptToken(STALE, USERNAME);
    await op.reconcile();
    op.reconciler.accountDeleted([KEY]);
    op.kube.remove(paths.probe);
    expect(await op.reconcile()).toEqual({ gone: true });
    expect(await series(op, 'probes')).toEqual([]);
    expect(await series(op, 'authenticated')).toEqual([]);
    // Created again under the same name: no mark of the old one makes it check out of turn.
    addAuthProbe(op.kube, { ...TOKEN_REVIEW, interval: '1h' });
    await op.reconcile();
    op.kube.clearCalls();
    op.clock.advance(60_000);
    await op.reconcile();
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(0);
  });

  it('dependents are the AuthProbes of that namespace that name that account', () => {
    const op = world(TOKEN_REVIEW);
    op.kube.add(apiPaths.authProbes(NS), {
      apiVersion: 'authprobe.io/v1alpha1',
      kind: 'AuthProbe',
      metadata: { name: 'other-account' },
      spec: { serviceAccountName: 'other' },
    });
    op.kube.add(apiPaths.authProbes('elsewhere'), {
      apiVersion: 'authprobe.io/v1alpha1',
      kind: 'AuthProbe',
      metadata: { name: 'same-name-elsewhere' },
      spec: { serviceAccountName: SA },
    });
    expect(op.reconciler.dependents(NS, SA)).toEqual([KEY]);
    expect(op.reconciler.dependents('elsewhere', SA)).toEqual(['elsewhere/same-name-elsewhere']);
  });

  it('a token already known to carry a retired key is left to its schedule when the keys change', async () => {
    const op = world(TOKEN_REVIEW);
    setProbe(op, (p) => {
      p.status = {
        lastProbe: {
          time: '2026-03-01T12:00:00Z',
          outcome: ProbeReason.SigningKeyRetired,
          tokenKeyID: 'old',
        },
      };
    });
    expect(op.reconciler.keysChanged(new Set(['new']))).toEqual([]);
    setProbe(op, (p) => {
      p.status = {
        lastProbe: { time: '2026-03-01T12:00:00Z', outcome: ProbeReason.TokenRejected, tokenKeyID: 'old' },
      };
    });
    expect(op.reconciler.keysChanged(new Set(['new']))).toEqual([KEY]);
  });

  it('a retired key is checked with a TokenReview at once, whatever spec.check says, and confirmed after a heal', async () => {
    const op = world(POD);
    setProbe(op, (p) => {
      p.status = {
        observedGeneration: 1,
        lastProbe: {
          time: new Date(T0).toISOString(),
          outcome: ProbeReason.Authenticated,
          tokenKeyID: 'old',
        },
      };
    });
    op.kube.clearCalls();
    expect(op.reconciler.keysChanged(new Set(['new']))).toEqual([KEY]);
    // Checked again at once: the mark stays until a check that began after it is recorded.
    expect(await op.reconcile()).toEqual({ requeueAfterMs: 0 });
    expect(op.kube.callsTo('POST', paths.pods)).toHaveLength(0);
    // The review proves the token rejected, the secret is replaced, and the new token is checked again at once.
    expect(op.events.reasons()).toEqual([...HEAL_STEPS, HealReason.Healed, EventReason.HealConfirmed]);
  });

  it('a mark set again while its check runs is kept for another check', async () => {
    const op = world(TOKEN_REVIEW, {});
    op.kube.acceptToken(STALE, USERNAME);
    await op.reconcile();
    op.reconciler.accountDeleted([KEY]);
    op.kube.before('POST', paths.tokenReviews, () => op.reconciler.accountDeleted([KEY]));
    op.kube.clearCalls();
    await op.reconcile();
    await op.reconcile();
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(2);
    await op.reconcile();
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(2);
  });

  it('what a visit asks of the queue: the pod check again when its pod may be done', async () => {
    const op = world(POD);
    const started = await op.reconcile();
    expect(started.requeueAfterMs).toBeGreaterThan(0);
    const inFlight = await op.reconcile();
    expect(inFlight.requeueAfterMs).toBeGreaterThan(0);
    // Someone created a pod of the name the check was about to use: try again in a second.
    const again = world(POD);
    again.kube.onCreate(paths.pods, () => undefined);
    again.kube.before('POST', paths.pods, () => {
      throw new KubeApiError(409, 'AlreadyExists', 'pods "x" already exists');
    });
    expect(await again.reconcile()).toEqual({ requeueAfterMs: 1_000 });
  });

  it('an AuthProbe deleted while its heal cannot finish is looked at again in 30 s', async () => {
    const op = world(TOKEN_REVIEW, { tokensController: false, fillTimeoutMs: 50 });
    op.kube.beforeEvery('GET', paths.secret, () => op.clock.advance(100));
    setProbe(op, (p) => {
      p.metadata.finalizers = [FINALIZER_HEAL_IN_FLIGHT];
      p.metadata.deletionTimestamp = '2026-03-01T12:00:00Z';
      p.status = { healIntent: intentFor(op.stale, SA, new Date(T0)) };
    });
    expect(await op.reconcile()).toEqual({ requeueAfterMs: 30_000 });
  });

  it('a verdict whose reason changes but not its status is told as an Event; a repeated success is not', async () => {
    const op = world(POD);
    await podReports(op, 200);
    await op.reconcile();
    op.clock.advance(600_000);
    await podReports(op, 403);
    await op.reconcile();
    op.clock.advance(600_000);
    await podReports(op, 403);
    await op.reconcile();
    expect(op.events.reasons()).toEqual([ProbeReason.Authenticated, ProbeReason.AuthenticatedForbidden]);
    expect(op.events.events.map((e) => e.type)).toEqual(['Normal', 'Normal']);
  });

  it('the verdict the healer returns keeps the probe pod, the probe-now answer and the generation of the check', async () => {
    const op = world(POD);
    setProbe(op, (p) => {
      p.metadata.annotations = { [ANNOTATION_PROBE_NOW]: 'now-1' };
    });
    const pod = await podReports(op, 401);
    await op.reconcile();
    const last = status(op).lastProbe;
    expect(last).toMatchObject({ pod, probeNow: 'now-1' });
    expect(status(op).observedGeneration).toBe(1);
  });
});

describe('how many AuthProbes a namespace may run', () => {
  it('the oldest run; one over the limit is reported and looked at again in five minutes', async () => {
    const op = world(TOKEN_REVIEW, { maxPerNamespace: 1 });
    op.kube.acceptToken(STALE, USERNAME);
    op.clock.advance(1_000);
    op.kube.add(apiPaths.authProbes(NS), {
      apiVersion: 'authprobe.io/v1alpha1',
      kind: 'AuthProbe',
      metadata: { name: 'zz-newer', creationTimestamp: '2026-03-01T12:00:01Z' },
      spec: { serviceAccountName: SA, check: 'TokenReview', token: { source: 'Secret', secretName: SECRET } },
    });
    op.kube.add(apiPaths.authProbes('elsewhere'), {
      apiVersion: 'authprobe.io/v1alpha1',
      kind: 'AuthProbe',
      metadata: { name: 'aa-older-elsewhere', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { serviceAccountName: SA },
    });
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: ProbeReason.Authenticated });
    expect(await op.reconciler.reconcile(`${NS}/zz-newer`)).toEqual({ requeueAfterMs: 300_000 });
  });

  it('an excluded namespace is reported once, not looked at again', async () => {
    const op = fakeOperator();
    op.kube.add(apiPaths.authProbes('kube-system'), {
      apiVersion: 'authprobe.io/v1alpha1',
      kind: 'AuthProbe',
      metadata: { name: 'p' },
      spec: { serviceAccountName: SA },
    });
    expect(await op.reconciler.reconcile('kube-system/p')).toEqual({});
  });
});
