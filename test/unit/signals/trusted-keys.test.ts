import { describe, expect, it } from '@jest/globals';
import { KubeTransportError } from '../../../src/kube/errors.js';
import { JWKS_PATH, keyIdsOf, TrustedKeys, type KeySetChange } from '../../../src/signals/trusted-keys.js';
import { memoryLogger } from '../support/logger.js';

/** An apiserver that publishes whatever key set the test sets (or fails). */
function apiserver() {
  let answer: unknown = { keys: [{ kid: 'a', kty: 'RSA' }] };
  const reads: string[] = [];
  const client = {
    get: async (path: string) => {
      reads.push(path);
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return { client, reads, publish: (value: unknown) => (answer = value) };
}

function keysOver(api: ReturnType<typeof apiserver>, clock = { t: 1_000 }) {
  const changes: KeySetChange[] = [];
  const keys = new TrustedKeys({
    client: api.client as never,
    logger: memoryLogger('debug').logger,
    now: () => clock.t,
    onChange: (change) => {
      changes.push(change);
    },
  });
  return { keys, changes, clock };
}

describe('TrustedKeys', () => {
  it('reads the key ids of the published set; the first read is the baseline', async () => {
    const api = apiserver();
    const { keys, changes } = keysOver(api);
    expect(keys.current()).toBeUndefined();
    await keys.refresh();
    expect(api.reads).toEqual([JWKS_PATH]);
    expect([...(keys.current() ?? [])]).toEqual(['a']);
    expect(changes).toMatchObject([{ first: true, added: ['a'], removed: [] }]);
  });

  it('tells which key left and when, and which came', async () => {
    const api = apiserver();
    const { keys, changes, clock } = keysOver(api);
    await keys.refresh();
    api.publish({ keys: [{ kid: 'a' }, { kid: 'b' }] });
    clock.t = 2_000;
    await keys.refresh();
    api.publish({ keys: [{ kid: 'b' }] });
    clock.t = 3_000;
    await keys.refresh();
    expect(changes.slice(1)).toMatchObject([
      { first: false, added: ['b'], removed: [], at: 2_000 },
      { first: false, added: [], removed: ['a'], at: 3_000 },
    ]);
    expect(keys.retiredAt('a')).toBe(3_000);
    expect(keys.retiredAt('b')).toBeUndefined();
    // An unchanged set is no change.
    await keys.refresh();
    expect(changes).toHaveLength(3);
  });

  it('a failed or empty read keeps the last known set (an apiserver restart is not a key change)', async () => {
    const api = apiserver();
    const { keys, changes } = keysOver(api);
    await keys.refresh();
    api.publish(new KubeTransportError('ECONNREFUSED', 'connect ECONNREFUSED'));
    await keys.refresh();
    api.publish({ keys: [] });
    await keys.refresh();
    api.publish('<html>not a key set</html>');
    await keys.refresh();
    expect([...(keys.current() ?? [])]).toEqual(['a']);
    expect(changes).toHaveLength(1);
  });

  it('keeps only key ids, and only sane ones', () => {
    expect([
      ...(keyIdsOf({
        keys: [{ kid: 'x', n: 'modulus' }, { kid: '' }, { kid: 7 }, null, { kid: 'k'.repeat(300) }],
      }) ?? []),
    ]).toEqual(['x']);
    expect(keyIdsOf({})).toBeUndefined();
    expect(keyIdsOf(null)).toBeUndefined();
  });
});
