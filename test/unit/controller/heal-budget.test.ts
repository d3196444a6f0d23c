/**
 * The operator's cluster-wide heal budget (--heal-budget-per-hour), at the controller layer: once it is
 * used up, a proven-invalid token is reported (HealRateLimited) and nothing is deleted or created, whatever
 * the AuthProbe's own maxPerHour allows; an hour later the heal goes ahead.
 */
import { describe, expect, it } from '@jest/globals';
import { EventReason, HealReason } from '../../../src/api/reasons.js';
import { secretToken, type SecretJson } from '../../../src/kube/resources.js';
import {
  addAuthProbe,
  addServiceAccount,
  addTokenSecret,
  fakeOperator,
  paths,
  ready,
  storedSecret,
} from '../support/operator-fixture.js';

describe('the cluster-wide heal budget', () => {
  it('used up: a rejected token is reported and nothing is deleted; an hour later it is healed', async () => {
    const op = fakeOperator({ healBudgetPerHour: 1 });
    addServiceAccount(op.kube);
    addTokenSecret(op.kube, 'stale-token'); // not in the fake apiserver's table: rejected
    addAuthProbe(op.kube, { check: 'TokenReview', interval: '1m', heal: { maxPerHour: 5 } });
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: HealReason.Healed });
    const first = storedSecret(op.kube) as SecretJson;
    expect(secretToken(first)).toBe('issued-token-1');

    // The new token stops working too (another rotation): the budget of one heal an hour is spent.
    op.kube.rejectToken('issued-token-1');
    op.kube.clearCalls();
    op.clock.advance(2 * 60_000);
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: HealReason.HealRateLimited });
    expect(ready(op.kube)?.message).toContain('cluster-wide heal budget for this hour is used up');
    expect(op.kube.callsTo('DELETE', paths.secret)).toEqual([]);
    expect(op.kube.callsTo('POST', paths.secrets)).toEqual([]);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(first.metadata.uid);
    expect(op.events.reasons()).toContain(HealReason.HealRateLimited);
    // Only the first heal deleted a secret.
    expect(op.events.reasons().filter((r) => r === EventReason.SecretDeleted)).toHaveLength(1);

    // An hour after the first heal the budget has room again.
    op.clock.advance(60 * 60_000);
    await op.reconcile();
    expect(op.kube.callsTo('DELETE', paths.secret)).toHaveLength(1);
    expect(secretToken(storedSecret(op.kube) as SecretJson)).toBe('issued-token-2');
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: HealReason.Healed });
  });
});
