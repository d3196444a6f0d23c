import { describe, expect, it } from '@jest/globals';
import { TokensControllerCanary } from '../../../src/heal/canary.js';
import { KubeApiError } from '../../../src/kube/errors.js';
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

describe('TokensControllerCanary: what it creates, when it answers no, when it asks again', () => {
  const secretsPath = apiPaths.secrets(NS);
  function bare(options: { fill?: boolean; account?: boolean; keys?: string[] } = {}) {
    const clock = new ManualClock();
    const kube = new FakeKube(clock.now);
    const log = memoryLogger('debug');
    if (options.fill ?? true)
      kube.onCreate(
        secretsPath,
        tokensController(kube, (n) => jwt('key-a', 'c', n)),
      );
    if (options.account ?? true) {
      kube.add(`/api/v1/namespaces/${NS}/serviceaccounts`, { metadata: { name: 'authprobe-canary' } });
    }
    const keys = options.keys;
    const canary = new TokensControllerCanary({
      client: kube,
      logger: log.logger,
      namespace: NS,
      serviceAccountName: 'authprobe-canary',
      now: clock.now,
      fillTimeoutMs: 1_000,
      ...(keys ? { keys: { refresh: async () => {}, current: () => new Set(keys) } } : {}),
    });
    return { canary, kube, clock, log };
  }

  it('creates a labelled token secret of a permission-less account it creates, and deletes it again', async () => {
    const { canary, kube } = bare({ account: false });
    expect(await canary.check()).toEqual({ ok: true });
    expect(kube.callsTo('POST').map((c) => c.body)).toEqual([
      {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: {
          name: 'authprobe-canary',
          namespace: NS,
          labels: { 'app.kubernetes.io/managed-by': 'authprobe' },
        },
        automountServiceAccountToken: false,
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          generateName: 'authprobe-canary-',
          namespace: NS,
          labels: { 'app.kubernetes.io/managed-by': 'authprobe', 'authprobe.io/canary': 'true' },
          annotations: { 'kubernetes.io/service-account.name': 'authprobe-canary' },
        },
        type: 'kubernetes.io/service-account-token',
      },
    ]);
    expect(kube.callsTo('DELETE')).toHaveLength(1);
    expect(kube.list(secretsPath)).toEqual([]);
  });

  it('a tokens controller that never fills the canary: no, with what to check', async () => {
    const { canary, kube, clock } = bare({ fill: false });
    kube.onCreate(secretsPath, (path) => kube.beforeEvery('GET', path, () => clock.advance(600)));
    expect(await canary.check()).toEqual({
      ok: false,
      message:
        `kube-controller-manager's tokens controller did not fill a test token secret in namespace ${NS} within 1s, ` +
        `so a deleted token secret would not be replaced: nothing was deleted. Check that kube-controller-manager ` +
        `runs with --service-account-private-key-file and its tokens controller enabled; healing resumes once it ` +
        `fills secrets again.`,
    });
    expect(kube.list(secretsPath)).toEqual([]);
  });

  it('a canary deleted at once is tried again only when its account was just created', async () => {
    for (const account of [false, true]) {
      const { canary, kube } = bare({ fill: false, account });
      let created = 0;
      kube.onCreate(secretsPath, (path) => {
        // The tokens controller does not know a brand-new account yet: it deletes the canary as an orphan.
        if (++created === 1) kube.remove(path);
        else tokensController(kube)(path, kube.peek(path) as never);
      });
      const result = await canary.check();
      expect(result.ok).toBe(!account);
      expect(created).toBe(account ? 1 : 2);
    }
  });

  it('an apiserver that refuses the canary: no, and why', async () => {
    const { canary, kube } = bare();
    kube.failNext('POST', secretsPath, new KubeApiError(403, 'Forbidden', 'secrets is forbidden'));
    expect(await canary.check()).toEqual({
      ok: false,
      message: `The operator could not test kube-controller-manager's tokens controller in namespace ${NS} (secrets is forbidden), so nothing was deleted.`,
    });
  });

  it('names at most five trusted keys', async () => {
    const { canary } = bare({ keys: ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'] });
    const result = await canary.check();
    expect(!result.ok && result.message).toContain('(it publishes k1, k2, k3, k4, k5): a replaced secret');
  });

  it('an answer holds for less than 10 s and for heals that began before its canary', async () => {
    const { canary, kube, clock } = bare();
    const canaries = () => kube.callsTo('POST', secretsPath).length;
    await canary.check(clock.now());
    await canary.check(clock.now());
    expect(canaries()).toBe(1);
    clock.advance(9_999);
    await canary.check();
    expect(canaries()).toBe(1);
    clock.advance(1);
    await canary.check();
    expect(canaries()).toBe(2);
  });

  it('heals that ask together share one canary in flight, unless they began after it', async () => {
    const { canary, kube, clock } = bare();
    const canaries = () => kube.callsTo('POST', secretsPath).length;
    await Promise.all([canary.check(clock.now()), canary.check(clock.now())]);
    expect(canaries()).toBe(1);
    clock.advance(20_000);
    const first = canary.check(clock.now());
    clock.advance(1);
    await Promise.all([first, canary.check(clock.now())]);
    expect(canaries()).toBe(3);
  });

  it('a canary that cannot be deleted is logged, one already gone is not', async () => {
    const { canary, kube, log } = bare();
    kube.onCreate(secretsPath, (path) =>
      kube.failNext('DELETE', path, new KubeApiError(500, 'InternalError', 'etcd')),
    );
    await canary.check();
    expect(log.text()).toContain('could not delete the canary token secret');
    expect(log.text()).toMatch(/"secret":"authprobe-canary-\d+"/);
    const quiet = bare();
    quiet.kube.onCreate(secretsPath, (path) =>
      quiet.kube.failNext('DELETE', path, new KubeApiError(404, 'NotFound', 'gone')),
    );
    await quiet.canary.check();
    expect(quiet.log.text()).not.toContain('could not delete');
  });
});
