/**
 * An AuthProbe that is deleted leaves nothing behind in the operator: its per-AuthProbe metric series
 * and its Event series go, and the reconcile tells the controller the key is gone (its scheduled visit, up to an interval away, is
 * dropped: the soak creates and deletes thousands of AuthProbes).
 */
import { describe, expect, it } from '@jest/globals';
import { KubeApiError } from '../../../src/kube/errors.js';
import { apiPaths } from '../../../src/kube/resources.js';
import {
  addAuthProbe,
  addServiceAccount,
  addTokenSecret,
  fakeOperator,
  paths,
  USERNAME,
} from '../support/operator-fixture.js';

/** An AuthProbe (check TokenReview, interval 1h) on a token the apiserver accepts. */
function authenticatedProbe() {
  const op = fakeOperator();
  addServiceAccount(op.kube);
  addTokenSecret(op.kube, 'good-token');
  op.kube.acceptToken('good-token', USERNAME);
  addAuthProbe(op.kube, { check: 'TokenReview', interval: '1h' });
  return op;
}

describe('a deleted AuthProbe', () => {
  it('is forgotten: the reconcile says gone, its metric series are removed, its Events forgotten', async () => {
    const op = authenticatedProbe();
    const first = await op.reconcile();
    expect(first.gone).toBeUndefined();
    expect(op.events.reasons()).toEqual(['Authenticated']);
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

  it('deleted while it is checked: its status write finds nothing, and that is not a failure', async () => {
    const op = authenticatedProbe();
    const probe = op.kube.peek<{ metadata: { namespace: string; name: string } }>(paths.probe);
    const status = apiPaths.authProbeStatus(probe?.metadata.namespace ?? '', probe?.metadata.name ?? '');
    // the informer's cache still has it; the apiserver no longer does
    op.kube.failNext('PATCH', status, new KubeApiError(404, 'NotFound', 'authprobes.authprobe.io not found'));
    expect(await op.reconcile()).toEqual({ gone: true });
    expect(op.kube.callsTo('PATCH', status)).toHaveLength(1);
    const series = (await op.metrics.registry.metrics()).split('\n').filter((l) => l.includes('authprobe="'));
    expect(series).toEqual([]);
  });
});
