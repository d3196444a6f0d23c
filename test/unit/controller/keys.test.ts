/**
 * Key-aware detection and the status heartbeat at the controller layer (reconciler + checks + healer
 * over the fake apiserver): a rejected token's signing key names the cause, a key leaving the trusted
 * set fans out to the AuthProbes whose tokens it signed, and an unchanged healthy verdict is not written
 * on every check.
 */
import { describe, expect, it } from '@jest/globals';
import { EventReason, HealReason, ProbeReason } from '../../../src/api/reasons.js';
import { KubeApiError } from '../../../src/kube/errors.js';
import type { AuthProbeSpec } from '../../../src/api/types.js';
import {
  addAuthProbe,
  addServiceAccount,
  addTokenSecret,
  fakeOperator,
  fixedKeys,
  jwt,
  KEY,
  paths,
  ready,
  storedProbe,
  storedSecret,
  USERNAME,
  type OperatorOptions,
} from '../support/operator-fixture.js';

const REVIEW: Partial<AuthProbeSpec> = { check: 'TokenReview', interval: '10s' };

/** An account, its token secret holding a token signed with `kid`, and an AuthProbe of it. */
function world(kid: string, accepted: boolean, options: OperatorOptions, spec = REVIEW) {
  const op = fakeOperator({ issue: (n) => jwt('new-key', 'app-token', n), ...options });
  addServiceAccount(op.kube);
  const token = jwt(kid);
  if (accepted) op.kube.acceptToken(token, USERNAME);
  const secret = addTokenSecret(op.kube, token);
  addAuthProbe(op.kube, spec);
  op.kube.clearCalls();
  return { ...op, secret };
}

describe('the signing key of a rejected token', () => {
  it('a key the apiserver no longer trusts: SigningKeyRetired with the key id, the Event stays TokenRejected, and the secret is replaced', async () => {
    const op = world('old-key', false, { keys: fixedKeys('new-key') });
    await op.reconcile();
    const rejected = op.events.events[0];
    expect(rejected?.reason).toBe(ProbeReason.TokenRejected);
    expect(rejected?.message).toMatch(
      /^SigningKeyRetired: .*signed by key old-key, which the apiserver no longer trusts/,
    );
    expect(op.events.reasons()).toContain(EventReason.SecretDeleted);
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: HealReason.Healed });
    // status.lastProbe names the key of the token it checked: now the replacement's.
    expect(storedProbe(op.kube).status?.lastProbe?.tokenKeyID).toBe('new-key');
    expect(storedSecret(op.kube)?.metadata.uid).not.toBe(op.secret.metadata.uid);
  });

  it('a key the apiserver still trusts: TokenRejected, saying the key is not the cause', async () => {
    const op = world('new-key', false, { keys: fixedKeys('new-key') });
    await op.reconcile();
    const rejected = op.events.events[0];
    expect(rejected?.reason).toBe(ProbeReason.TokenRejected);
    expect(rejected?.message).toMatch(/signed by key new-key, which the apiserver still trusts/);
    expect(rejected?.message).not.toMatch(/SigningKeyRetired/);
  });

  it('with the trusted keys unknown the verdict is the plain TokenRejected', async () => {
    const op = world('old-key', false, {});
    await op.reconcile();
    expect(op.events.events[0]?.message).not.toMatch(/SigningKeyRetired|still trusts/);
  });
});

describe('a key leaving the trusted set', () => {
  it('checks at once, whatever the interval, the AuthProbes whose token it signed, and only those', async () => {
    const keys = fixedKeys('key-a');
    const op = world('key-a', true, { keys }, { check: 'TokenReview', interval: '1h' });
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: ProbeReason.Authenticated });
    expect(storedProbe(op.kube).status?.lastProbe?.tokenKeyID).toBe('key-a');

    // Nothing is due for an hour; a key set that still holds key-a changes nothing.
    expect(op.reconciler.keysChanged(new Set(['key-a', 'key-b']))).toEqual([]);
    op.kube.clearCalls();
    await op.reconcile();
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(0);

    // key-a leaves: the AuthProbe is named, and its next visit checks (and heals) at once.
    keys.set('key-b');
    expect(op.reconciler.keysChanged(new Set(['key-b']))).toEqual([KEY]);
    await op.reconcile();
    expect(op.kube.callsTo('POST', paths.tokenReviews).length).toBeGreaterThanOrEqual(1);
  });
});

describe('a fan-out mark', () => {
  it('survives a reconcile that fails: the retry still checks at once, whatever the interval', async () => {
    const keys = fixedKeys('key-a');
    const op = world('key-a', true, { keys }, { check: 'TokenReview', interval: '1h' });
    await op.reconcile();
    keys.set('key-b');
    expect(op.reconciler.keysChanged(new Set(['key-b']))).toEqual([KEY]);
    // The first attempt fails on a conflict (say, another writer of the heal ledger).
    op.kube.failNext(
      'PATCH',
      `${paths.probe}/status`,
      new KubeApiError(409, 'Conflict', 'the object has been modified'),
    );
    await expect(op.reconcile()).rejects.toThrow(/modified/);
    op.kube.clearCalls();
    await op.reconcile();
    expect(op.kube.callsTo('POST', paths.tokenReviews).length).toBeGreaterThanOrEqual(1);
  });
});

describe('a deleted ServiceAccount', () => {
  it('makes its healthy AuthProbes check at once, whatever the interval', async () => {
    const op = world('key-a', true, {}, { check: 'TokenReview', interval: '1h' });
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'True' });
    op.kube.remove(paths.serviceAccount);
    // Past the grace a new AuthProbe gets for objects applied with it.
    op.clock.advance(31_000);
    // Not due for an hour: a plain visit leaves it alone...
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'True' });
    // ...the account's deletion does not.
    op.reconciler.accountDeleted([KEY]);
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: ProbeReason.ServiceAccountNotFound });
  });
});

describe('the status heartbeat', () => {
  const HEARTBEAT = 300_000;

  it('an unchanged healthy verdict is checked every interval but written at most once a heartbeat', async () => {
    const op = world('key-a', true, { statusHeartbeatMs: HEARTBEAT });
    await op.reconcile();
    expect(op.kube.callsTo('PATCH', `${paths.probe}/status`)).toHaveLength(1);
    const firstTime = storedProbe(op.kube).status?.lastProbe?.time;

    // 11 s steps (the interval plus at most 10% jitter) for just under five minutes: each one checks the
    // token, none writes status.
    op.kube.clearCalls();
    let checks = 0;
    for (let t = 11_000; t < HEARTBEAT; t += 11_000) {
      op.clock.advance(11_000);
      await op.reconcile();
      checks += 1;
    }
    expect(checks).toBe(27);
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(checks);
    expect(op.kube.callsTo('PATCH', `${paths.probe}/status`)).toHaveLength(0);
    expect(storedProbe(op.kube).status?.lastProbe?.time).toBe(firstTime);
    // A visit between checks (an informer event) neither checks nor writes: the unwritten check counts.
    op.clock.advance(1_000);
    const between = await op.reconcile();
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(checks);
    expect(between.requeueAfterMs).toBeGreaterThan(0);

    // The heartbeat: the next check past five minutes is written.
    op.clock.advance(11_000);
    await op.reconcile();
    expect(op.kube.callsTo('PATCH', `${paths.probe}/status`)).toHaveLength(1);
    expect(storedProbe(op.kube).status?.lastProbe?.time).not.toBe(firstTime);
  });

  it('a changed verdict is written at once', async () => {
    const op = world('key-a', true, { statusHeartbeatMs: HEARTBEAT });
    await op.reconcile();
    op.kube.clearCalls();
    // The account is deleted: the next check's verdict differs and is written right away.
    op.kube.remove(paths.serviceAccount);
    op.clock.advance(11_000);
    await op.reconcile();
    expect(op.kube.callsTo('PATCH', `${paths.probe}/status`)).toHaveLength(1);
    expect(ready(op.kube)).toMatchObject({ reason: ProbeReason.ServiceAccountNotFound });
  });

  it('a probe-now request is answered in status at once', async () => {
    const op = world('key-a', true, { statusHeartbeatMs: HEARTBEAT });
    await op.reconcile();
    op.kube.clearCalls();
    op.clock.advance(2_000);
    op.kube.update(paths.probe, (p) => {
      p.metadata.annotations = { ...p.metadata.annotations, 'authprobe.io/probe-now': 'now-1' };
    });
    await op.reconcile();
    expect(op.kube.callsTo('PATCH', `${paths.probe}/status`)).toHaveLength(1);
    expect(storedProbe(op.kube).status?.lastProbe?.probeNow).toBe('now-1');
  });
});

describe('the status heartbeat, edge by edge', () => {
  const HEARTBEAT = 300_000;
  const statusWrites = (op: ReturnType<typeof world>) =>
    op.kube.callsTo('PATCH', `${paths.probe}/status`).length;

  it('a check exactly a heartbeat after the last write is written', async () => {
    const op = world('key-a', true, { statusHeartbeatMs: HEARTBEAT });
    await op.reconcile();
    op.kube.clearCalls();
    op.clock.advance(HEARTBEAT);
    await op.reconcile();
    expect(statusWrites(op)).toBe(1);
  });

  it('a token signed by another key, or a spec change, is written at once', async () => {
    const op = world('key-a', true, { statusHeartbeatMs: HEARTBEAT });
    await op.reconcile();
    op.kube.clearCalls();
    const rotated = jwt('key-b');
    op.kube.acceptToken(rotated, USERNAME);
    op.kube.update(paths.secret, (s) => {
      s['data'] = { token: Buffer.from(rotated).toString('base64') };
    });
    op.clock.advance(11_000);
    await op.reconcile();
    expect(statusWrites(op)).toBe(1);
    expect(storedProbe(op.kube).status?.lastProbe?.tokenKeyID).toBe('key-b');

    op.kube.update(paths.probe, (p) => {
      p['spec'] = { ...(p['spec'] as object), interval: '20s' };
    });
    op.clock.advance(1_000);
    await op.reconcile();
    expect(statusWrites(op)).toBe(2);
    expect(storedProbe(op.kube).status?.observedGeneration).toBe(2);
  });

  it('an unwritten check is dropped once anything else changes the AuthProbe', async () => {
    const op = world('key-a', true, { statusHeartbeatMs: HEARTBEAT });
    await op.reconcile();
    op.clock.advance(11_000);
    await op.reconcile(); // checked, not written
    op.kube.clearCalls();
    op.clock.advance(1_000);
    await op.reconcile(); // the unwritten check counts: nothing is due
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(0);
    // Someone labels the AuthProbe: status as stored is what counts again, and by it a check is due.
    op.kube.update(paths.probe, (p) => {
      p.metadata.labels = { team: 'payments' };
    });
    await op.reconcile();
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(1);
  });

  it('the unwritten check keeps its last success for the metrics', async () => {
    const op = world('key-a', true, { statusHeartbeatMs: HEARTBEAT });
    await op.reconcile();
    op.clock.advance(11_000);
    await op.reconcile();
    const values = (await op.metrics.lastSuccess.get()).values.map((v) => v.value);
    expect(values).toEqual([(Date.UTC(2026, 2, 1, 12, 0, 0) + 11_000) / 1000]);
  });
});
