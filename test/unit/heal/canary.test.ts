import { describe, expect, it } from '@jest/globals';
import { TokensControllerCanary } from '../../../src/heal/canary.js';
import { apiPaths } from '../../../src/kube/resources.js';
import { FakeKube, tokensController } from '../support/fake-kube.js';
import { jwt, ManualClock } from '../support/operator-fixture.js';
import { memoryLogger } from '../support/logger.js';

const NS = 'authprobe-system';

/** kube-controller-manager's tokens controller signing with `signer`, and an apiserver trusting `trusted`. */
function canaryWith(signer: string, trusted: string[]) {
  const clock = new ManualClock();
  const kube = new FakeKube(clock.now);
  kube.onCreate(
    apiPaths.secrets(NS),
    tokensController(kube, (n) => jwt(signer, 'canary', n)),
  );
  let current = new Set(trusted);
  const told: Array<[string, boolean]> = [];
  const canary = new TokensControllerCanary({
    client: kube,
    logger: memoryLogger('debug').logger,
    namespace: NS,
    serviceAccountName: 'authprobe-canary',
    now: clock.now,
    fillTimeoutMs: 1_000,
    keys: { refresh: async () => {}, current: () => current },
    onSigner: (keyID, ok) => {
      told.push([keyID, ok]);
    },
  });
  return { canary, kube, clock, told, trust: (...kids: string[]) => (current = new Set(kids)) };
}

describe('TokensControllerCanary and the signing key', () => {
  it('a filled canary signed with a trusted key proves the heal may go ahead', async () => {
    const { canary, told } = canaryWith('key-b', ['key-a', 'key-b']);
    expect(await canary.check()).toEqual({ ok: true });
    expect(told).toEqual([['key-b', true]]);
  });

  it('a canary signed with a key the apiserver does not trust pauses heals, naming the key', async () => {
    const { canary, kube, clock, told, trust } = canaryWith('key-b', ['key-a']);
    const result = await canary.check();
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toMatch(
      /signs new tokens with key key-b, which the apiserver does not trust/,
    );
    expect(!result.ok && result.message).toMatch(/nothing was deleted/);
    expect(told).toEqual([['key-b', false]]);
    // The canary itself is cleaned up.
    expect(kube.all('secrets').filter((s) => s.metadata.namespace === NS)).toEqual([]);
    // The answer holds for a few seconds (no canary per heal), then the keys are looked at again.
    trust('key-a', 'key-b');
    expect((await canary.check()).ok).toBe(false);
    clock.advance(11_000);
    expect(await canary.check()).toEqual({ ok: true });
    expect(told).toEqual([
      ['key-b', false],
      ['key-b', true],
    ]);
  });

  it('a heal that began confirming after the last proof gets a new canary: a key switched since is noticed', async () => {
    const { canary, clock, told, trust } = canaryWith('key-b', ['key-b']);
    expect(await canary.check(clock.now())).toEqual({ ok: true });
    // kube-controller-manager moves to a key the apiserver does not trust, seconds later.
    clock.advance(3_000);
    trust('key-a');
    // A heal that started before that proof may share it...
    expect(await canary.check(clock.now() - 5_000)).toEqual({ ok: true });
    // ...one that started after it may not.
    expect((await canary.check(clock.now())).ok).toBe(false);
    expect(told).toEqual([
      ['key-b', true],
      ['key-b', false],
    ]);
  });
});
