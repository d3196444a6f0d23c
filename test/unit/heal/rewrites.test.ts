import { describe, expect, it } from '@jest/globals';
import { HealAction, HealProgress, HealReason, ProbeReason } from '../../../src/api/reasons.js';
import type { HealStatus } from '../../../src/api/types.js';
import { verdict, provenInvalid, type Verdict } from '../../../src/api/verdict.js';
import {
  confirmHeal,
  healFailedVerdict,
  healStatusAfter,
  withInvalidatedCause,
} from '../../../src/heal/rewrites.js';

const T0 = Date.parse('2026-11-29T08:00:00Z');
const rejected = provenInvalid(ProbeReason.TokenRejected, 'The apiserver rejected the token (401).');
const authenticated: Verdict = { ...verdict(ProbeReason.Authenticated, 'True', 'ok'), pod: 'p-probe-1' };

describe('withInvalidatedCause: TokenRejected → TokenInvalidated', () => {
  it.each<[string, Verdict, string | undefined, string]>([
    ['rejected, secret labelled', rejected, '2026-11-01', ProbeReason.TokenInvalidated],
    ['rejected, no label', rejected, undefined, ProbeReason.TokenRejected],
    ['authenticated, labelled', authenticated, '2026-11-01', ProbeReason.Authenticated],
    [
      'already invalidated',
      provenInvalid(ProbeReason.TokenInvalidated, 'x'),
      '2026-11-01',
      ProbeReason.TokenInvalidated,
    ],
  ])('%s', (_name, input, invalidSince, reason) => {
    const out = withInvalidatedCause(input, invalidSince);
    expect(out.reason).toBe(reason);
    expect(out.tokenProvenInvalid).toBe(input.tokenProvenInvalid);
    if (reason !== input.reason) expect(out.message).toContain(`legacy-token-invalid-since=${invalidSince}`);
    else expect(out).toBe(input);
  });
});

describe('confirmHeal: AwaitingProbe → Healed', () => {
  const awaiting: HealStatus = {
    count: 1,
    lastTime: '2026-11-29T07:59:00Z',
    lastResult: HealProgress.AwaitingProbe,
  };
  it.each<[string, Verdict, HealStatus | undefined, boolean]>([
    ['authenticated after a replacement', authenticated, awaiting, true],
    [
      'authenticated, nothing awaited',
      authenticated,
      { count: 1, lastResult: HealProgress.Confirmed },
      false,
    ],
    ['authenticated, never healed', authenticated, undefined, false],
    ['still rejected after a replacement', rejected, awaiting, false],
    ['undecided after a replacement', verdict(ProbeReason.ProbeTimedOut, 'Unknown', 'slow'), awaiting, false],
  ])('%s', (_name, input, heals, confirms) => {
    const out = confirmHeal(input, heals);
    if (!confirms) {
      expect(out).toBeUndefined();
      return;
    }
    expect(out?.verdict.reason).toBe(HealReason.Healed);
    expect(out?.verdict.readyStatus).toBe('True');
    expect(out?.verdict.message).toContain('a probe pod confirmed it');
    expect(out?.heals).toEqual({ ...heals, lastResult: HealProgress.Confirmed });
  });
});

describe('healStatusAfter', () => {
  it('counts a heal, keeps the last hour of history and says where it stands', () => {
    const previous: HealStatus = { count: 2, history: ['2026-11-29T06:00:00Z', '2026-11-29T07:30:00Z'] };
    expect(healStatusAfter(previous, HealAction.SecretRecreated, HealProgress.AwaitingProbe, T0)).toEqual({
      count: 3,
      lastTime: '2026-11-29T08:00:00Z',
      lastAction: 'SecretRecreated',
      lastResult: 'AwaitingProbe',
      history: ['2026-11-29T07:30:00Z', '2026-11-29T08:00:00Z'],
    });
  });

  it('records a failed heal without counting it', () => {
    const out = healStatusAfter({ count: 1 }, HealAction.SecretRecreated, HealProgress.Failed, T0);
    expect(out).toMatchObject({ count: 1, lastResult: 'Failed', history: ['2026-11-29T08:00:00Z'] });
  });
});

describe('healFailedVerdict', () => {
  it('is False, HealFailed, and proves nothing about the token', () => {
    expect(healFailedVerdict('no token within 30s')).toEqual({
      reason: HealReason.HealFailed,
      readyStatus: 'False',
      message: 'no token within 30s',
      tokenProvenInvalid: false,
    });
  });
});

describe('confirmHeal: what the confirmation says', () => {
  it('names a TokenReview when no probe pod confirmed it, and a heal time it does not know as empty', () => {
    const reviewed = verdict(ProbeReason.Authenticated, 'True', 'ok');
    const out = confirmHeal(reviewed, { count: 1, lastResult: HealProgress.AwaitingProbe });
    expect(out?.verdict.message).toBe(`ok The token was replaced at  and a TokenReview confirmed it.`);
  });
});
