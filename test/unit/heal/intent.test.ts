import { describe, expect, it } from '@jest/globals';
import { resolveSpec, type ResolvedSpec } from '../../../src/api/defaults.js';
import type { AuthProbe, AuthProbeSpec, HealIntent } from '../../../src/api/types.js';
import { IntentStore, intentFor, intentMismatch, replacementSecret } from '../../../src/heal/intent.js';
import { KubeApiError } from '../../../src/kube/errors.js';
import { apiPaths } from '../../../src/kube/resources.js';
import { FakeKube } from '../support/fake-kube.js';

function spec(s: AuthProbeSpec): ResolvedSpec {
  const resolved = resolveSpec(s);
  if (!resolved.ok) throw new Error(resolved.message);
  return resolved.spec;
}
const secretSpec = spec({ serviceAccountName: 'p', token: { source: 'Secret', secretName: 'p-token' } });
const intent: HealIntent = {
  secretName: 'p-token',
  staleUid: 'u1',
  staleResourceVersion: '7',
  serviceAccountName: 'p',
  startedAt: '2026-11-29T08:00:00Z',
};

describe('intentMismatch: an intent is acted on only when the spec backs it', () => {
  it.each<[string, HealIntent, ResolvedSpec, string | undefined]>([
    ['the spec’s secret and account', intent, secretSpec, undefined],
    ['another secret', { ...intent, secretName: 'gh' }, secretSpec, 'it names secret gh'],
    [
      'another account',
      { ...intent, serviceAccountName: 'other' },
      secretSpec,
      'it names ServiceAccount other',
    ],
    ['no stale uid', { ...intent, staleUid: '' }, secretSpec, 'malformed'],
    ['a projected spec', intent, spec({ serviceAccountName: 'p' }), 'not Secret'],
  ])('%s', (_name, candidate, s, mention) => {
    const found = intentMismatch(candidate, s);
    if (mention === undefined) expect(found).toBeUndefined();
    else expect(found).toContain(mention);
  });
});

describe('intentFor and replacementSecret keep what the replacement needs', () => {
  it('carries owner references, and empty preconditions for a secret read without them', () => {
    const owners = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: 'o1' }];
    const found = intentFor(
      { metadata: { name: 'tok', namespace: 'ns', ownerReferences: owners } },
      'sa',
      new Date('2026-11-28T12:00:00Z'),
    );
    expect(found).toMatchObject({ staleUid: '', staleResourceVersion: '', ownerReferences: owners });
    expect(replacementSecret(found, 'ns', new Date(0)).metadata.ownerReferences).toEqual(owners);
    expect(intentFor({ metadata: { name: 'tok', namespace: 'ns' } }, 'sa', new Date(0))).not.toHaveProperty(
      'ownerReferences',
    );
  });

  it('an intent whose names are not strings is malformed', () => {
    expect(intentMismatch({ ...intent, secretName: 7 as unknown as string }, secretSpec)).toBe(
      'it is malformed',
    );
    expect(intentMismatch({ ...intent, staleUid: 7 as unknown as string }, secretSpec)).toBe(
      'it is malformed',
    );
  });
});

describe('IntentStore: the finalizer and status.healIntent', () => {
  const NS = 'team';
  const probePath = apiPaths.authProbe(NS, 'p');
  function stored(finalizers?: string[]) {
    const kube = new FakeKube(() => 0);
    kube.add(apiPaths.authProbes(NS), {
      apiVersion: 'authprobe.io/v1alpha1',
      kind: 'AuthProbe',
      metadata: { name: 'p', ...(finalizers ? { finalizers } : {}) },
      spec: { serviceAccountName: 'p' },
    });
    const probe = kube.peek<AuthProbe>(probePath) as AuthProbe;
    return { kube, probe, store: new IntentStore(kube) };
  }
  const finalizers = (kube: FakeKube) => kube.peek<AuthProbe>(probePath)?.metadata.finalizers;

  it('adds and removes its own finalizer, keeping the others, and writes only when needed', async () => {
    const { kube, probe, store } = stored(['example.com/keep']);
    await store.setFinalizer(probe, true);
    expect(finalizers(kube)).toEqual(['example.com/keep', 'authprobe.io/heal-in-flight']);
    await store.setFinalizer(probe, true);
    expect(kube.callsTo('PATCH')).toHaveLength(1);
    await store.setFinalizer(probe, false);
    expect(finalizers(kube)).toEqual(['example.com/keep']);
    await store.setFinalizer(probe, false);
    expect(kube.callsTo('PATCH')).toHaveLength(2);
  });

  it('a conflict is retried with a fresh read, twice; the third conflict is the caller’s', async () => {
    const { kube, probe, store } = stored();
    const conflict = () => new KubeApiError(409, 'Conflict', 'the object has been modified');
    kube.failNext('PATCH', probePath, conflict());
    await store.setFinalizer(probe, true);
    expect(finalizers(kube)).toEqual(['authprobe.io/heal-in-flight']);
    for (let i = 0; i < 3; i++) kube.failNext('PATCH', probePath, conflict());
    await expect(store.setFinalizer(probe, false)).rejects.toThrow('the object has been modified');
    expect(kube.callsTo('PATCH')).toHaveLength(1 + 1 + 3);
    kube.failNext('PATCH', probePath, new KubeApiError(422, 'Invalid', 'finalizers invalid'));
    await expect(store.setFinalizer(probe, false)).rejects.toThrow('finalizers invalid');
  });

  it('an AuthProbe already gone needs no finalizer change and no intent cleared', async () => {
    const { kube, probe, store } = stored();
    kube.failNext('PATCH', probePath, new KubeApiError(404, 'NotFound', 'gone'));
    await store.setFinalizer(probe, true);
    kube.remove(probePath);
    await store.setFinalizer(probe, true);
    await store.clear(probe);
    await expect(store.save(probe, intent)).rejects.toThrow(KubeApiError);
  });

  it('a read that fails otherwise, or an intent that cannot be written, is the caller’s', async () => {
    const { kube, probe, store } = stored();
    kube.failNext('GET', probePath, new KubeApiError(500, 'InternalError', 'etcd'));
    await expect(store.setFinalizer(probe, true)).rejects.toThrow('etcd');
    kube.failNext('PATCH', `${probePath}/status`, new Error('socket hang up'));
    await expect(store.save(probe, intent)).rejects.toThrow(
      'could not record the heal intent: socket hang up',
    );
  });
});
