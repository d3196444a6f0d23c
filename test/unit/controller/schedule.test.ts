import { describe, expect, it } from '@jest/globals';
import { decideSchedule, jitterMs, settleRecheckMs } from '../../../src/controller/schedule.js';
import { settle } from '../../../src/controller/settle.js';
import type { Verdict } from '../../../src/api/verdict.js';
import { markFromStatus } from '../../../src/checks/check.js';
import { ANNOTATION_CHECK_GENERATION, ANNOTATION_CHECK_PROBE_NOW } from '../../../src/api/labels.js';
import { statusAfterVerdict, statusWhileProbing } from '../../../src/controller/status.js';
import type { AuthProbe } from '../../../src/api/types.js';

const T0 = Date.parse('2026-11-28T12:00:00Z');
const MIN = 60_000;

function probe(extra: Partial<AuthProbe['metadata']> = {}, status?: AuthProbe['status']): AuthProbe {
  return {
    apiVersion: 'authprobe.io/v1alpha1',
    kind: 'AuthProbe',
    metadata: { name: 'p', namespace: 'ns', uid: 'uid-1', generation: 2, ...extra },
    spec: { serviceAccountName: 'sa' },
    ...(status ? { status } : {}),
  };
}
const pod = (createdAt: number, annotations: Record<string, string>) => ({
  name: 'p-probe-x',
  createdAt,
  annotations,
});

describe('decideSchedule', () => {
  it('probes at once on first sight', () => {
    expect(decideSchedule(probe(), undefined, 5 * MIN, T0)).toEqual({ probeNow: true, trigger: 'First' });
  });

  it('probes at once when the spec changed since the last probe pod', () => {
    const latest = pod(T0 - MIN, { [ANNOTATION_CHECK_GENERATION]: '1' });
    expect(
      decideSchedule(
        probe({}, { observedGeneration: 1, lastProbe: { time: '2026-11-28T11:59:00Z' } }),
        latest,
        5 * MIN,
        T0,
      ),
    ).toEqual({ probeNow: true, trigger: 'SpecChanged' });
  });

  it('probes at once when the probe-now annotation takes a new value, and only once per value', () => {
    const status = { observedGeneration: 2, lastProbe: { time: '2026-11-28T11:59:00Z' } };
    const asked = probe({ annotations: { 'authprobe.io/probe-now': 'a' } }, status);
    expect(decideSchedule(asked, pod(T0 - MIN, { [ANNOTATION_CHECK_GENERATION]: '2' }), 5 * MIN, T0)).toEqual(
      {
        probeNow: true,
        trigger: 'Requested',
      },
    );
    const handled = pod(T0 - MIN, { [ANNOTATION_CHECK_GENERATION]: '2', [ANNOTATION_CHECK_PROBE_NOW]: 'a' });
    expect(decideSchedule(asked, handled, 5 * MIN, T0).probeNow).toBe(false);
  });

  it('waits the interval plus a stable jitter of at most 10% after the last probe', () => {
    const status = { observedGeneration: 2, lastProbe: { time: new Date(T0).toISOString() } };
    const latest = pod(T0 - 5_000, { [ANNOTATION_CHECK_GENERATION]: '2' });
    const jitter = jitterMs('uid-1', 5 * MIN);
    expect(jitter).toBeGreaterThanOrEqual(0);
    expect(jitter).toBeLessThan(30_000);
    expect(decideSchedule(probe({}, status), latest, 5 * MIN, T0 + MIN)).toEqual({
      probeNow: false,
      inMs: 4 * MIN + jitter,
    });
    expect(decideSchedule(probe({}, status), latest, 5 * MIN, T0 + 5 * MIN + jitter)).toEqual({
      probeNow: true,
      trigger: 'Interval',
    });
    expect(jitterMs('uid-2', 5 * MIN)).not.toBe(jitter);
  });
});

describe('markFromStatus (checks without pods)', () => {
  const checked = (extra: Partial<AuthProbe['metadata']>, probeNow?: string) =>
    probe(extra, {
      observedGeneration: 2,
      lastProbe: { time: '2026-11-28T12:00:00Z', ...(probeNow !== undefined ? { probeNow } : {}) },
    });
  const decide = (p: AuthProbe, now: number) => decideSchedule(p, markFromStatus(p), 5 * MIN, now);

  it('checks at once on first sight, then waits the interval plus jitter', () => {
    expect(decide(probe(), T0)).toEqual({ probeNow: true, trigger: 'First' });
    const p = checked({});
    expect(decide(p, T0 + MIN)).toEqual({ probeNow: false, inMs: 4 * MIN + jitterMs('uid-1', 5 * MIN) });
    expect(decide(p, T0 + 5 * MIN + jitterMs('uid-1', 5 * MIN))).toEqual({
      probeNow: true,
      trigger: 'Interval',
    });
  });

  it('checks at once after a spec change', () => {
    expect(decide(checked({ generation: 3 }), T0 + MIN)).toEqual({ probeNow: true, trigger: 'SpecChanged' });
  });

  it('answers a new probe-now value once', () => {
    const annotations = { 'authprobe.io/probe-now': 'a' };
    expect(decide(checked({ annotations }), T0 + MIN)).toEqual({ probeNow: true, trigger: 'Requested' });
    expect(decide(checked({ annotations }, 'a'), T0 + MIN)).toMatchObject({ probeNow: false });
  });
});

describe('status', () => {
  it('sets Unknown on first sight only', () => {
    const first = statusWhileProbing(probe(), 'started', new Date(T0));
    expect(first?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'Unknown', reason: 'Probing' });
    expect(statusWhileProbing(probe({}, first), 'again', new Date(T0))).toBeUndefined();
  });

  it('records a verdict with observedGeneration, counts failures, keeps transition time while status holds', () => {
    const failed = statusAfterVerdict(
      probe(),
      {
        reason: 'TokenRejected',
        readyStatus: 'False',
        message: 'm',
        tokenProvenInvalid: true,
        httpStatus: 401,
        pod: 'x',
      },
      new Date(T0),
    );
    expect(failed).toMatchObject({
      observedGeneration: 2,
      consecutiveFailures: 1,
      lastProbe: { outcome: 'TokenRejected', httpStatus: 401, pod: 'x' },
    });
    expect(failed.lastSuccessTime).toBeUndefined();
    const again = statusAfterVerdict(
      probe({}, failed),
      { reason: 'TokenRejected', readyStatus: 'False', message: 'm', tokenProvenInvalid: true },
      new Date(T0 + MIN),
    );
    expect(again.consecutiveFailures).toBe(2);
    expect(again.conditions?.[0]?.lastTransitionTime).toBe('2026-11-28T12:00:00Z');
    const ok = statusAfterVerdict(
      probe({}, again),
      { reason: 'Authenticated', readyStatus: 'True', message: 'ok', tokenProvenInvalid: false },
      new Date(T0 + 2 * MIN),
    );
    expect(ok).toMatchObject({ consecutiveFailures: 0, lastSuccessTime: '2026-11-28T12:02:00Z' });
    expect(ok.conditions?.[0]).toMatchObject({ status: 'True', lastTransitionTime: '2026-11-28T12:02:00Z' });
  });
});

describe('settling verdicts are checked again within seconds, not after an interval', () => {
  const HOUR = 60 * MIN;
  const settling = (outcome: string, failures: number, secondsAgo: number) =>
    probe(
      {},
      {
        observedGeneration: 2,
        consecutiveFailures: failures,
        lastProbe: {
          time: new Date(T0 - secondsAgo * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          outcome,
        },
      },
    );
  const decide = (p: AuthProbe, changed = false) => decideSchedule(p, markFromStatus(p), HOUR, T0, changed);

  it.each([
    [1, 2_000],
    [2, 4_000],
    [3, 8_000],
    [4, 15_000],
    [20, 15_000],
    [21, 30_000],
    [25, 480_000],
    [40, HOUR],
  ])('after %i failures the re-check waits %i ms (never more than the interval)', (failures, ms) => {
    expect(settleRecheckMs(failures, HOUR)).toBe(ms);
  });

  it.each([
    [1, 2_000],
    [4, 16_000],
    [8, 256_000],
    [12, HOUR],
  ])(
    'a missing ServiceAccount is watched: after %i failures the re-check waits %i ms (doubling, no plateau)',
    (failures, ms) => {
      expect(settleRecheckMs(failures, HOUR, 'ServiceAccountNotFound')).toBe(ms);
    },
  );

  it('a heal held back (HealBlocked) is checked again in seconds', () => {
    expect(decide(settling('HealBlocked', 1, 3))).toEqual({ probeNow: true, trigger: 'Settling' });
  });

  it('a token rejected while the apiserver had not yet seen it filled (StaleMountedToken) is checked again in seconds', () => {
    expect(decide(settling('StaleMountedToken', 1, 3))).toEqual({ probeNow: true, trigger: 'Settling' });
  });

  it('a TokenNotIssued verdict 3 s old is checked again at once after one failure (2 s back-off)', () => {
    expect(decide(settling('TokenNotIssued', 1, 3))).toEqual({ probeNow: true, trigger: 'Settling' });
  });

  it('waits out the back-off, not the interval', () => {
    expect(decide(settling('SecretNotFound', 4, 5))).toEqual({ probeNow: false, inMs: 10_000 });
  });

  it('checks at once when the ServiceAccount changed', () => {
    expect(decide(settling('ServiceAccountNotFound', 30, 5), true)).toEqual({
      probeNow: true,
      trigger: 'DependencyChanged',
    });
  });

  it('a verdict that is not settling waits for the interval, whatever changed', () => {
    const done = settling('Authenticated', 0, 5);
    expect(decide(done, true)).toMatchObject({ probeNow: false });
    expect(decide(settling('TokenRejected', 1, 5))).toMatchObject({ probeNow: false });
  });
});

describe('settle: what the condition says while a state settles', () => {
  const verdict: Verdict = {
    reason: 'TokenNotIssued',
    readyStatus: 'False',
    message: 'Secret ns/s holds no token.',
    tokenProvenInvalid: false,
  };
  const created = (secondsAgo: number) =>
    probe({ creationTimestamp: new Date(T0 - secondsAgo * 1000).toISOString() }, { consecutiveFailures: 0 });

  it('is Ready=Unknown for a new AuthProbe, with no Warning, and says when it checks again', () => {
    const out = settle(created(3), verdict, 60 * MIN, T0);
    expect(out.inGrace).toBe(true);
    expect(out.verdict.readyStatus).toBe('Unknown');
    expect(out.verdict.message).toBe(
      'Secret ns/s holds no token. Checking again in 2s, or as soon as the ServiceAccount changes.',
    );
  });

  it('is Ready=False once the grace has passed', () => {
    const out = settle(created(45), verdict, 60 * MIN, T0);
    expect(out).toMatchObject({ inGrace: false, verdict: { readyStatus: 'False' } });
  });

  it('a held-back heal of a new AuthProbe is Ready=False at once (its token is proven broken), re-checked in seconds', () => {
    const blocked: Verdict = { ...verdict, reason: 'HealBlocked', tokenProvenInvalid: true };
    const out = settle(created(3), blocked, 60 * MIN, T0);
    expect(out).toMatchObject({ inGrace: false, verdict: { readyStatus: 'False' } });
    expect(out.verdict.message).toMatch(/Checking again in 2s/);
  });

  it('leaves other verdicts alone', () => {
    const rejected: Verdict = { ...verdict, reason: 'TokenRejected', tokenProvenInvalid: true };
    expect(settle(created(3), rejected, 60 * MIN, T0)).toEqual({ verdict: rejected, inGrace: false });
  });
});

describe('the edges of the schedule, settling and status rules', () => {
  const HOUR = 60 * MIN;
  const last = (outcome: string, failures: number, msAgo: number) =>
    probe(
      {},
      {
        observedGeneration: 2,
        consecutiveFailures: failures,
        lastProbe: { time: new Date(T0 - msAgo).toISOString().replace(/\.\d{3}Z$/, 'Z'), outcome },
      },
    );

  it('a probe with a recorded check but no pod mark is not "first sight"', () => {
    expect(decideSchedule(last('Authenticated', 0, MIN), undefined, HOUR, T0)).toMatchObject({
      probeNow: false,
    });
  });

  it('a status without observedGeneration is a spec change', () => {
    const p = probe({}, { lastProbe: { time: '2026-11-28T11:59:00Z', outcome: 'Authenticated' } });
    expect(decideSchedule(p, undefined, HOUR, T0)).toEqual({ probeNow: true, trigger: 'SpecChanged' });
  });

  it('a pod that answered probe-now, with the annotation since removed, is not a new request', () => {
    const mark = pod(T0 - MIN, { [ANNOTATION_CHECK_GENERATION]: '2', [ANNOTATION_CHECK_PROBE_NOW]: 'a' });
    expect(decideSchedule(probe(), mark, HOUR, T0)).toMatchObject({ probeNow: false });
  });

  it('a settling verdict waits its back-off when nothing is said about its dependencies', () => {
    expect(decideSchedule(last('SecretNotFound', 4, 5_000), undefined, HOUR, T0)).toEqual({
      probeNow: false,
      inMs: 10_000,
    });
  });

  it('a settling verdict is checked again the moment its back-off runs out', () => {
    expect(decideSchedule(last('TokenNotIssued', 1, 2_000), undefined, HOUR, T0)).toEqual({
      probeNow: true,
      trigger: 'Settling',
    });
  });

  it('settle counts this verdict as one more failure', () => {
    const p = probe({ creationTimestamp: new Date(T0 - HOUR).toISOString() }, { consecutiveFailures: 3 });
    const verdict: Verdict = {
      reason: 'SecretNotFound',
      readyStatus: 'False',
      message: 'No secret.',
      tokenProvenInvalid: false,
    };
    expect(settle(p, verdict, HOUR, T0).verdict.message).toBe(
      'No secret. Checking again in 15s, or as soon as the ServiceAccount changes.',
    );
    expect(settle(p, verdict, 15_000, T0).verdict.message).toBe(
      'No secret. Checking again at the next interval (15s), or as soon as the ServiceAccount changes.',
    );
  });

  it('settle leaves a settling reason that is Ready=True alone', () => {
    const verdict: Verdict = {
      reason: 'StaleMountedToken',
      readyStatus: 'True',
      message: 'ok',
      tokenProvenInvalid: false,
    };
    expect(settle(probe(), verdict, HOUR, T0)).toEqual({ verdict, inGrace: false });
  });

  it('the grace ends 30 s after creation, to the millisecond', () => {
    const verdict: Verdict = {
      reason: 'TokenNotIssued',
      readyStatus: 'False',
      message: 'm',
      tokenProvenInvalid: false,
    };
    const at = (ms: number) => probe({ creationTimestamp: new Date(T0 - ms).toISOString() });
    expect(settle(at(29_999), verdict, HOUR, T0).inGrace).toBe(true);
    expect(settle(at(30_000), verdict, HOUR, T0).inGrace).toBe(false);
  });

  it('statusWhileProbing writes Ready=Unknown when only other conditions exist, for the generation it sees', () => {
    const other = {
      type: 'Other',
      status: 'True' as const,
      reason: 'X',
      message: 'x',
      lastTransitionTime: 'y',
    };
    const out = statusWhileProbing(
      probe({ generation: 3 }, { conditions: [other] }),
      'started',
      new Date(T0),
    );
    expect(out?.conditions).toEqual([
      other,
      {
        type: 'Ready',
        status: 'Unknown',
        reason: 'Probing',
        message: 'started',
        observedGeneration: 3,
        lastTransitionTime: '2026-11-28T12:00:00Z',
      },
    ]);
  });
});
