/**
 * spec.keepPods: a Pod check keeps the newest `keepPods` finished probe pods for debugging and deletes
 * the older ones once a newer verdict is recorded (at least one is always kept). Against the fake
 * apiserver, with the reconciler and the PodCheck wired as in the operator.
 */
import { describe, expect, it } from '@jest/globals';
import {
  addAuthProbe,
  addServiceAccount,
  addTokenSecret,
  fakeOperator,
  finishPod,
  paths,
  probePods,
  probeResult,
  storedProbe,
} from '../support/operator-fixture.js';

async function cycles(keepPods: number, n: number) {
  const op = fakeOperator();
  addServiceAccount(op.kube);
  addTokenSecret(op.kube, 'good-token');
  addAuthProbe(op.kube, { keepPods, interval: '1m' });
  const created: string[] = [];
  for (let i = 0; i < n; i++) {
    // Visits until the schedule starts a new pod (the first visit, or the interval has passed).
    let pod: string | undefined;
    for (let visit = 0; visit < 10 && !pod; visit++) {
      await op.reconcile();
      const latest = probePods(op.kube).at(-1)?.metadata.name;
      if (latest && !created.includes(latest)) pod = latest;
      else op.clock.advance(10_000);
    }
    if (!pod) throw new Error(`no new probe pod in cycle ${i}`);
    created.push(pod);
    op.clock.advance(5_000);
    finishPod(op.kube, pod, probeResult(200));
    await op.reconcile(); // records its verdict, then prunes
    expect(storedProbe(op.kube).status?.lastProbe?.pod).toBe(pod);
    op.clock.advance(60_000);
  }
  return { op, created };
}

describe('keepPods', () => {
  it.each([
    [3, 5],
    [1, 4],
  ])(
    'keepPods %i: after %i checks only the newest pods are left, the older ones were deleted',
    async (keep, n) => {
      const { op, created } = await cycles(keep, n);
      expect(probePods(op.kube).map((p) => p.metadata.name)).toEqual(created.slice(-keep));
      const deleted = op.kube.callsTo('DELETE', `${paths.pods}/`).map((c) => c.path.split('/').pop());
      expect(deleted.sort()).toEqual(created.slice(0, n - keep).sort());
    },
  );

  it('keepPods 0 still keeps the pod of the last verdict (it is the evidence status points at)', async () => {
    const { op, created } = await cycles(0, 3);
    expect(probePods(op.kube).map((p) => p.metadata.name)).toEqual(created.slice(-1));
  });
});
