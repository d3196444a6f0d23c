import { describe, expect, it } from '@jest/globals';
import { decideHeal, type HealBudget, type SecretEvidence } from '../../../src/heal/policy.js';
import { resolveSpec, type ResolvedSpec } from '../../../src/api/defaults.js';
import type { AuthProbeSpec } from '../../../src/api/types.js';
import type { Verdict } from '../../../src/api/verdict.js';

function spec(overrides: Partial<AuthProbeSpec> = {}): ResolvedSpec {
  const resolved = resolveSpec({
    serviceAccountName: 'sa',
    token: { source: 'Secret', secretName: 's' },
    ...overrides,
  });
  if (!resolved.ok) throw new Error(resolved.message);
  return resolved.spec;
}

const rejected: Verdict = {
  reason: 'TokenRejected',
  readyStatus: 'False',
  message: 'rejected (401).',
  tokenProvenInvalid: true,
  httpStatus: 401,
};
const forbidden: Verdict = {
  reason: 'AuthenticatedForbidden',
  readyStatus: 'True',
  message: '403',
  tokenProvenInvalid: false,
  httpStatus: 403,
};
const unreachable: Verdict = {
  reason: 'APIServerUnreachable',
  readyStatus: 'Unknown',
  message: 'ECONNREFUSED',
  tokenProvenInvalid: false,
};
const timedOut: Verdict = {
  reason: 'ProbeTimedOut',
  readyStatus: 'Unknown',
  message: 'timeout',
  tokenProvenInvalid: false,
};
const confirmed: SecretEvidence = { exists: true, review: 'rejected' };
const budget: HealBudget = { now: 1_000_000, probeHealsLastHour: 0, clusterRemaining: 10 };

describe('decideHeal', () => {
  it.each([
    ['403 Forbidden never heals', spec(), forbidden, confirmed, budget, 'none'],
    ['an unreachable apiserver never heals', spec(), unreachable, confirmed, budget, 'none'],
    ['a timeout never heals', spec(), timedOut, confirmed, budget, 'none'],
    [
      'a projected token is reported with guidance, never healed',
      spec({ token: { source: 'Projected' } }),
      rejected,
      undefined,
      budget,
      'report:ProjectedTokenRejected',
    ],
    [
      'TokenReview says the current token is fine: stale mount, no delete',
      spec(),
      rejected,
      { exists: true, review: 'authenticated', reviewedAs: 'system:serviceaccount:ns:sa' },
      budget,
      'report:StaleMountedToken',
    ],
    [
      'TokenReview could not run: nothing is changed',
      spec(),
      rejected,
      { exists: true, review: 'review-failed', reviewError: '503' },
      budget,
      'report:TokenRejected',
    ],
    [
      'the secret vanished meanwhile: nothing to do',
      spec(),
      rejected,
      { exists: false, review: 'review-failed' },
      budget,
      'none',
    ],
    [
      'policy Disabled reports how to heal by hand',
      spec({ heal: { policy: 'Disabled' } }),
      rejected,
      confirmed,
      budget,
      'report:TokenRejected',
    ],
    [
      'policy DryRun says what it would do',
      spec({ heal: { policy: 'DryRun' } }),
      rejected,
      confirmed,
      budget,
      'dry-run:SecretRecreated',
    ],
    [
      'per-probe rate reached',
      spec({ heal: { maxPerHour: 2 } }),
      rejected,
      confirmed,
      { ...budget, probeHealsLastHour: 2 },
      'rate-limited:SecretRecreated',
    ],
    [
      'maxPerHour 0 never heals',
      spec({ heal: { maxPerHour: 0 } }),
      rejected,
      confirmed,
      budget,
      'rate-limited:SecretRecreated',
    ],
    [
      'cluster budget used up',
      spec(),
      rejected,
      confirmed,
      { ...budget, clusterRemaining: 0 },
      'rate-limited:SecretRecreated',
    ],
    [
      'back-off after a failed heal',
      spec(),
      rejected,
      confirmed,
      { ...budget, backoffUntil: budget.now + 5_000 },
      'rate-limited:SecretRecreated',
    ],
    [
      'confirmed 401, Auto, within budget: recreate',
      spec(),
      rejected,
      confirmed,
      budget,
      'heal:SecretRecreated',
    ],
    [
      'invalidated legacy token, Recreate',
      spec(),
      rejected,
      { ...confirmed, invalidSince: '2026-01-01' },
      budget,
      'heal:SecretRecreated',
    ],
    [
      'invalidated legacy token, Revalidate removes the label',
      spec({ heal: { invalidatedLegacyToken: 'Revalidate' } }),
      rejected,
      { ...confirmed, invalidSince: '2026-01-01' },
      budget,
      'heal:LabelRemoved',
    ],
    [
      'invalidated legacy token, Report',
      spec({ heal: { invalidatedLegacyToken: 'Report' } }),
      rejected,
      { ...confirmed, invalidSince: '2026-01-01' },
      budget,
      'report:TokenInvalidated',
    ],
  ] as const)('%s', (_name, s, verdict, evidence, b, expected) => {
    const decision = decideHeal(s, verdict, evidence, b);
    const summary =
      decision.kind === 'none'
        ? 'none'
        : decision.kind === 'report'
          ? `report:${decision.reason}`
          : `${decision.kind}:${decision.action}`;
    expect(summary).toBe(expected);
  });

  it('messages name the setting that held a heal back', () => {
    const decision = decideHeal(spec({ heal: { maxPerHour: 1 } }), rejected, confirmed, {
      ...budget,
      probeHealsLastHour: 1,
    });
    expect(decision.kind === 'rate-limited' && decision.message).toMatch(/spec\.heal\.maxPerHour=1/);
    const dry = decideHeal(spec({ heal: { policy: 'DryRun' } }), rejected, confirmed, budget);
    expect(dry.kind === 'dry-run' && dry.message).toMatch(/would replace secret s/);
  });
});

/** Every decision word for word (`jest -u` accepts a change of wording), and the edges of each rule. */
describe('decideHeal, word for word', () => {
  const labelled: SecretEvidence = { ...confirmed, invalidSince: '2026-01-01' };
  const retired: Verdict = { ...rejected, reason: 'SigningKeyRetired', message: 'signed by a retired key.' };
  const otherAccount: Verdict = {
    reason: 'SecretForOtherServiceAccount',
    readyStatus: 'False',
    message: 'Secret ns/s is the token secret of ServiceAccount other.',
    tokenProvenInvalid: false,
  };
  it.each<[string, ResolvedSpec, Verdict, SecretEvidence | undefined, HealBudget]>([
    ['projected', spec({ token: { source: 'Projected' } }), rejected, undefined, budget],
    ['no evidence', spec(), rejected, undefined, budget],
    [
      'not provable, with the reason',
      spec(),
      rejected,
      { exists: true, review: 'not-provable', notProvable: otherAccount },
      budget,
    ],
    ['not provable, no reason given', spec(), rejected, { exists: true, review: 'not-provable' }, budget],
    [
      'stale mount',
      spec(),
      rejected,
      { exists: true, review: 'authenticated', reviewedAs: 'system:serviceaccount:ns:sa' },
      budget,
    ],
    ['stale mount, no username', spec(), rejected, { exists: true, review: 'authenticated' }, budget],
    [
      'review failed',
      spec(),
      rejected,
      { exists: true, review: 'review-failed', reviewError: '503 etcd' },
      budget,
    ],
    ['review failed, no error', spec(), rejected, { exists: true, review: 'review-failed' }, budget],
    ['no token yet', spec(), rejected, { exists: true, review: 'no-token' }, budget],
    ['labelled, Report', spec({ heal: { invalidatedLegacyToken: 'Report' } }), rejected, labelled, budget],
    [
      'labelled, Revalidate',
      spec({ heal: { invalidatedLegacyToken: 'Revalidate' } }),
      rejected,
      labelled,
      budget,
    ],
    [
      'labelled, Revalidate, DryRun',
      spec({ heal: { invalidatedLegacyToken: 'Revalidate', policy: 'DryRun' } }),
      rejected,
      labelled,
      budget,
    ],
    [
      'labelled, Revalidate, Disabled',
      spec({ heal: { invalidatedLegacyToken: 'Revalidate', policy: 'Disabled' } }),
      rejected,
      labelled,
      budget,
    ],
    // A token signed by a key the apiserver no longer trusts is dead whatever the label says: replaced.
    [
      'labelled, retired key, Report',
      spec({ heal: { invalidatedLegacyToken: 'Report' } }),
      retired,
      labelled,
      budget,
    ],
    [
      'labelled, retired key, Revalidate',
      spec({ heal: { invalidatedLegacyToken: 'Revalidate' } }),
      retired,
      labelled,
      budget,
    ],
    [
      'unlabelled, Revalidate',
      spec({ heal: { invalidatedLegacyToken: 'Revalidate' } }),
      rejected,
      confirmed,
      budget,
    ],
    ['unlabelled, Report', spec({ heal: { invalidatedLegacyToken: 'Report' } }), rejected, confirmed, budget],
    ['Disabled', spec({ heal: { policy: 'Disabled' } }), rejected, confirmed, budget],
    ['DryRun', spec({ heal: { policy: 'DryRun' } }), rejected, confirmed, budget],
    ['back-off 1.5 s left', spec(), rejected, confirmed, { ...budget, backoffUntil: budget.now + 1_500 }],
    ['back-off ends now', spec(), rejected, confirmed, { ...budget, backoffUntil: budget.now }],
    ['back-off ended', spec(), rejected, confirmed, { ...budget, backoffUntil: budget.now - 1 }],
    [
      'one heal left for the probe',
      spec({ heal: { maxPerHour: 2 } }),
      rejected,
      confirmed,
      { ...budget, probeHealsLastHour: 1 },
    ],
    [
      'probe budget used up',
      spec({ heal: { maxPerHour: 2 } }),
      rejected,
      confirmed,
      { ...budget, probeHealsLastHour: 3 },
    ],
    ['one heal left in the cluster', spec(), rejected, confirmed, { ...budget, clusterRemaining: 1 }],
    ['cluster budget used up', spec(), rejected, confirmed, { ...budget, clusterRemaining: 0 }],
    ['heal', spec(), rejected, confirmed, budget],
  ])('%s', (_name, s, verdict, evidence, b) => {
    expect(decideHeal(s, verdict, evidence, b)).toMatchSnapshot();
  });
});
