/**
 * Tenancy and settling at the controller layer, against the fake apiserver: what is never read, sent or
 * changed, and when a state that is still settling is checked again. The real-cluster side is in
 * test/e2e/tenancy.e2e.test.ts and test/e2e/settling.e2e.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { EventReason, HealReason, ProbeReason } from '../../../src/api/reasons.js';
import type { AuthProbe, AuthProbeSpec } from '../../../src/api/types.js';
import { FINALIZER_HEAL_IN_FLIGHT, intentFor } from '../../../src/heal/intent.js';
import type { SecretJson } from '../../../src/kube/resources.js';
import {
  addAuthProbe,
  addServiceAccount,
  addTokenSecret,
  fakeOperator,
  paths,
  ready,
  SA,
  SECRET,
  storedProbe,
  storedSecret,
  T0,
  USERNAME,
  type OperatorOptions,
} from '../support/operator-fixture.js';

const TOKEN_REVIEW: Partial<AuthProbeSpec> = { check: 'TokenReview' };

function world(spec: Partial<AuthProbeSpec> = TOKEN_REVIEW, options: OperatorOptions = {}) {
  const op = fakeOperator(options);
  addServiceAccount(op.kube);
  const stale = addTokenSecret(op.kube, 'stale-token');
  addAuthProbe(op.kube, spec);
  op.kube.clearCalls();
  return { ...op, stale };
}
const setProbe = (op: ReturnType<typeof world>, change: (probe: AuthProbe) => void) =>
  op.kube.update(paths.probe, (p) => change(p as unknown as AuthProbe));
const tokenReviews = (op: ReturnType<typeof world>) => op.kube.callsTo('POST', paths.tokenReviews).length;

describe('only the token secret of the account the AuthProbe names is ever used', () => {
  it.each<[string, (s: SecretJson) => void, string]>([
    ['an Opaque secret', (s) => void (s.type = 'Opaque'), ProbeReason.SecretNotServiceAccountToken],
    [
      "another account's token secret",
      (s) =>
        void (s.metadata.annotations = {
          ...s.metadata.annotations,
          'kubernetes.io/service-account.name': 'other',
        }),
      ProbeReason.SecretForOtherServiceAccount,
    ],
    [
      'a token secret of an earlier account of that name',
      (s) =>
        void (s.metadata.annotations = {
          ...s.metadata.annotations,
          'kubernetes.io/service-account.uid': 'gone',
        }),
      ProbeReason.SecretForRecreatedServiceAccount,
    ],
  ])('%s: its token is not sent to TokenReview and nothing is deleted', async (_name, change, reason) => {
    const op = world();
    op.kube.update(paths.secret, (s) => change(s as unknown as SecretJson));
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'Unknown', reason }); // a new AuthProbe: settling
    expect(tokenReviews(op)).toBe(0);
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
    expect(storedSecret(op.kube)?.metadata.uid).toBe(op.stale.metadata.uid);
  });

  it('check Pod: no probe pod mounts a secret that is not the account’s token secret', async () => {
    const op = world({});
    op.kube.update(paths.secret, (s) => void ((s as unknown as SecretJson).type = 'Opaque'));
    await op.reconcile();
    expect(ready(op.kube)?.reason).toBe(ProbeReason.SecretNotServiceAccountToken);
    expect(op.kube.callsTo('POST', paths.pods)).toHaveLength(0);
  });
});

describe('heal state only the operator writes', () => {
  it('a heal-intent annotation is ignored and reported; nothing is created for the account it names', async () => {
    const op = world();
    op.kube.acceptToken('stale-token', USERNAME); // the token is fine: only the forged intent could act
    const forged = intentFor(
      { ...op.stale, metadata: { ...op.stale.metadata, name: 'stolen' } },
      'other',
      new Date(T0),
    );
    setProbe(op, (p) => {
      p.metadata.annotations = { 'authprobe.io/heal-intent': JSON.stringify(forged) };
    });
    await op.reconcile();
    expect(op.events.reasons()).toContain(EventReason.HealIntentIgnored);
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(0);
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
  });

  it('a status intent the spec does not back is ignored, reported and cleared', async () => {
    const op = world();
    op.kube.acceptToken('stale-token', USERNAME); // the token is fine: only the intent could act
    setProbe(op, (p) => {
      p.metadata.finalizers = [FINALIZER_HEAL_IN_FLIGHT];
      p.status = { healIntent: { ...intentFor(op.stale, 'other', new Date(T0)), secretName: 'other-token' } };
    });
    await op.reconcile();
    expect(op.events.find(EventReason.HealIntentIgnored)?.message).toContain('it names secret other-token');
    expect(op.kube.callsTo('POST', paths.secrets)).toHaveLength(0);
    expect(storedProbe(op.kube).status?.healIntent).toBeUndefined();
    expect(storedProbe(op.kube).metadata.finalizers ?? []).not.toContain(FINALIZER_HEAL_IN_FLIGHT);
  });

  it('an AuthProbe deleted mid-heal: the replacement is created and filled, then the finalizer goes', async () => {
    const op = world();
    setProbe(op, (p) => {
      p.metadata.finalizers = [FINALIZER_HEAL_IN_FLIGHT];
      p.metadata.deletionTimestamp = '2026-03-01T12:00:00Z';
      p.status = { healIntent: intentFor(op.stale, SA, new Date(T0)) };
    });
    op.kube.remove(paths.secret); // the previous leader died right after the delete
    const result = await op.reconcile();
    expect(result).toEqual({});
    expect(op.events.reasons()).toEqual([
      EventReason.HealResumed,
      EventReason.SecretRecreated,
      EventReason.TokenIssued,
    ]);
    expect(storedSecret(op.kube)?.data?.['token']).toBeDefined();
    expect(storedProbe(op.kube).metadata.finalizers ?? []).not.toContain(FINALIZER_HEAL_IN_FLIGHT);
  });
});

describe('nothing is deleted that cannot be replaced', () => {
  it('the tokens controller is not proven to work: HealBlocked, nothing deleted, no intent written', async () => {
    const op = world(TOKEN_REVIEW, {
      canary: {
        check: async () => ({ ok: false, message: 'the tokens controller did not fill a test token secret' }),
      },
    });
    op.kube.update(
      paths.secret,
      (s) =>
        void ((s as unknown as SecretJson).metadata.labels = {
          'kubernetes.io/legacy-token-invalid-since': '2026-01-01',
        }),
    );
    setProbe(op, (p) => void (p.metadata.creationTimestamp = '2026-03-01T11:00:00Z'));
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: HealReason.HealBlocked });
    expect(ready(op.kube)?.message).toContain('did not fill a test token secret');
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
    expect(
      op.kube
        .callsTo('PATCH', `${paths.probe}/status`)
        .some((c) => JSON.stringify(c.body).includes('healIntent')),
    ).toBe(false);
  });

  it('a secret with finalizers is not deleted (HealBlocked names them)', async () => {
    const op = world();
    op.kube.update(paths.secret, (s) => {
      s.metadata.finalizers = ['example.com/keep'];
      s.metadata.labels = { 'kubernetes.io/legacy-token-invalid-since': '2026-01-01' };
    });
    setProbe(op, (p) => void (p.metadata.creationTimestamp = '2026-03-01T11:00:00Z'));
    await op.reconcile();
    expect(ready(op.kube)?.message).toContain('carries finalizers (example.com/keep)');
    expect(op.kube.callsTo('DELETE')).toHaveLength(0);
  });
});

describe('scope', () => {
  it('an AuthProbe in kube-system is reported, not run', async () => {
    const op = fakeOperator();
    op.kube.add('/api/v1/namespaces/kube-system/serviceaccounts', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: SA },
    });
    op.kube.add('/apis/authprobe.io/v1alpha1/namespaces/kube-system/authprobes', {
      apiVersion: 'authprobe.io/v1alpha1',
      kind: 'AuthProbe',
      metadata: { name: 'dns' },
      spec: { serviceAccountName: SA, token: { source: 'Secret', secretName: SECRET }, check: 'TokenReview' },
    });
    await op.reconciler.reconcile('kube-system/dns');
    const probe = op.kube.peek<AuthProbe>(
      '/apis/authprobe.io/v1alpha1/namespaces/kube-system/authprobes/dns',
    );
    expect(probe?.status?.conditions?.[0]).toMatchObject({
      status: 'False',
      reason: ProbeReason.NamespaceExcluded,
    });
    expect(op.kube.callsTo('POST', paths.tokenReviews)).toHaveLength(0);
  });
});

describe('settling verdicts', () => {
  it('an account created after its AuthProbe: re-checked at once when the account appears', async () => {
    const op = fakeOperator();
    addAuthProbe(op.kube, TOKEN_REVIEW);
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'Unknown', reason: ProbeReason.ServiceAccountNotFound });
    expect(ready(op.kube)?.message).toContain('Checking again in 2s');
    expect(op.events.reasons()).toEqual([]); // nothing reported as broken that was only not ready yet
    addServiceAccount(op.kube);
    addTokenSecret(op.kube, 'good-token');
    op.kube.acceptToken('good-token', `system:serviceaccount:team:${SA}`);
    op.reconciler.dependenciesChanged(op.reconciler.dependents('team', SA));
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: ProbeReason.Authenticated });
  });
});
