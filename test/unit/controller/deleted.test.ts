/**
 * An AuthProbe that is deleted leaves nothing behind in the operator: its per-AuthProbe metric series
 * and its Event series go, and the reconcile tells the controller the key is gone (its scheduled visit, up to an interval away, is
 * dropped: the soak creates and deletes thousands of AuthProbes).
 */
import { describe, expect, it } from '@jest/globals';
import {
  addAuthProbe,
  addServiceAccount,
  addTokenSecret,
  fakeOperator,
  paths,
} from '../support/operator-fixture.js';

describe('a deleted AuthProbe', () => {
  it('is forgotten: the reconcile says gone, its metric series are removed, its Events forgotten', async () => {
    const op = fakeOperator();
    addServiceAccount(op.kube);
    addTokenSecret(op.kube, 'good-token');
    addAuthProbe(op.kube, { check: 'TokenReview', interval: '1h' });
    const first = await op.reconcile();
    expect(first.gone).toBeUndefined();
    expect(first.requeueAfterMs).toBeGreaterThan(0);
    const series = async () =>
      (await op.metrics.registry.metrics()).split('\n').filter((l) => l.includes('authprobe="')).length;
    expect(await series()).toBeGreaterThan(0);
    await op.kube.delete(paths.probe);
    expect(await op.reconcile()).toEqual({ gone: true });
    expect(await series()).toBe(0);
    const object = op.events.events[0]?.object;
    expect(object).toMatch(/^AuthProbe\//);
    expect(op.events.forgotten).toEqual([object]);
  });
});
