import { describe, expect, it } from '@jest/globals';
import { HealLedger, appendHistory, healsInLastHour } from '../../../src/heal/budget.js';
import { consumesSecret } from '../../../src/heal/workloads.js';
import { LedgerStore } from '../../../src/heal/ledger-store.js';
import { KubeApiError } from '../../../src/kube/errors.js';
import { FakeKube } from '../support/fake-kube.js';
import { intentFor, replacementSecret } from '../../../src/heal/intent.js';

const HOUR = 3_600_000;

describe('heal bounds', () => {
  it('the cluster budget refills as attempts age out of the hour', async () => {
    const ledger = new HealLedger(2);
    await ledger.recordAttempt(0, 'a/s');
    await ledger.recordAttempt(10, 'b/s');
    expect(ledger.clusterRemaining(20)).toBe(0);
    expect(ledger.clusterRemaining(HOUR + 1)).toBe(1);
    expect(ledger.clusterRemaining(HOUR + 11)).toBe(2);
  });

  it("counts a secret's heals whichever AuthProbe asked, and a blocked attempt gives its place back", async () => {
    const ledger = new HealLedger(5);
    await ledger.recordAttempt(0, 'team/token');
    await ledger.recordAttempt(5, 'team/token');
    await ledger.recordAttempt(7, 'other/token');
    expect(ledger.secretHealsLastHour('team/token', 10)).toBe(2);
    await ledger.cancelAttempt(5, 'team/token');
    expect(ledger.secretHealsLastHour('team/token', 10)).toBe(1);
    expect(ledger.clusterRemaining(10)).toBe(3);
  });

  it('failed heals back off exponentially and success clears it', () => {
    const ledger = new HealLedger(10, undefined, 60_000, 600_000);
    ledger.recordFailure('uid', 0);
    expect(ledger.backoffUntil('uid')).toBe(60_000);
    ledger.recordFailure('uid', 0);
    ledger.recordFailure('uid', 0);
    expect(ledger.backoffUntil('uid')).toBe(240_000);
    for (let i = 0; i < 10; i++) ledger.recordFailure('uid', 0);
    expect(ledger.backoffUntil('uid')).toBe(600_000);
    ledger.recordSuccess('uid');
    expect(ledger.backoffUntil('uid')).toBeUndefined();
  });

  it('persisted history counts only the last hour', () => {
    const now = Date.parse('2026-11-28T12:00:00Z');
    const history = appendHistory(
      ['2026-11-28T10:00:00Z', '2026-11-28T11:30:00Z'],
      '2026-11-28T12:00:00Z',
      now,
    );
    expect(history).toEqual(['2026-11-28T11:30:00Z', '2026-11-28T12:00:00Z']);
    expect(healsInLastHour(history, now)).toBe(2);
    expect(healsInLastHour(history, now + HOUR - 1)).toBe(1);
  });
});

describe('consumesSecret', () => {
  const workload = (podSpec: object) => ({
    metadata: { name: 'w', namespace: 'ns' },
    spec: { template: { spec: podSpec } },
  });
  it.each([
    ['volume', { volumes: [{ secret: { secretName: 'tok' } }] }, true],
    ['projected volume', { volumes: [{ projected: { sources: [{ secret: { name: 'tok' } }] } }] }, true],
    [
      'env',
      { containers: [{ env: [{ valueFrom: { secretKeyRef: { name: 'tok', key: 'token' } } }] }] },
      true,
    ],
    ['envFrom', { containers: [{ envFrom: [{ secretRef: { name: 'tok' } }] }] }, true],
    [
      'init container env',
      { initContainers: [{ env: [{ valueFrom: { secretKeyRef: { name: 'tok' } } }] }] },
      true,
    ],
    ['another secret', { volumes: [{ secret: { secretName: 'other' } }] }, false],
    ['no references', { containers: [{ name: 'c' }] }, false],
  ])('%s', (_name, podSpec, expected) => {
    expect(consumesSecret(workload(podSpec), 'tok')).toBe(expected);
  });
});

describe('replacement secret', () => {
  it("keeps the user's labels and annotations, drops the stale token's markers, carries no data", () => {
    const intent = intentFor(
      {
        metadata: {
          name: 'tok',
          namespace: 'ns',
          uid: 'u1',
          resourceVersion: '7',
          labels: {
            team: 'a',
            'kubernetes.io/legacy-token-invalid-since': '2026-01-01',
            'kubernetes.io/legacy-token-last-used': '2025-12-01',
          },
          annotations: {
            owner: 'me',
            'kubernetes.io/service-account.name': 'sa',
            'kubernetes.io/service-account.uid': 'old',
          },
        },
        type: 'kubernetes.io/service-account-token',
        data: { token: 'c2VjcmV0' },
      },
      'sa',
      new Date('2026-11-28T12:00:00Z'),
    );
    expect(JSON.stringify(intent)).not.toContain('c2VjcmV0');
    expect(intent).toMatchObject({ secretName: 'tok', staleUid: 'u1', staleResourceVersion: '7' });
    const secret = replacementSecret(intent, 'ns', new Date('2026-11-28T12:00:01Z'));
    expect(secret.type).toBe('kubernetes.io/service-account-token');
    expect(secret.data).toBeUndefined();
    expect(secret.metadata.labels).toEqual({ team: 'a' });
    expect(secret.metadata.annotations).toEqual({
      owner: 'me',
      'kubernetes.io/service-account.name': 'sa',
      'authprobe.io/replaced-at': '2026-11-28T12:00:01.000Z',
    });
  });
});

describe('HealLedger: the edges of the hour, the back-off and the shared store', () => {
  const OPS = 'authprobe-system';
  const stored = (kube: FakeKube) =>
    JSON.parse(
      kube.peek<{ data: { heals: string } }>(`/api/v1/namespaces/${OPS}/configmaps/authprobe-heal-ledger`)
        ?.data.heals ?? '[]',
    );

  it('an attempt an hour old no longer counts, one a millisecond younger does', async () => {
    const ledger = new HealLedger(2);
    await ledger.recordAttempt(0, 'a/s');
    expect(ledger.clusterRemaining(HOUR - 1)).toBe(1);
    expect(ledger.clusterRemaining(HOUR)).toBe(2);
    expect(healsInLastHour(['2026-11-28T11:00:00Z'], Date.parse('2026-11-28T12:00:00Z'))).toBe(0);
    expect(healsInLastHour(['2026-11-28T11:00:00Z'], Date.parse('2026-11-28T12:00:00Z') - 1)).toBe(1);
    expect(appendHistory(['2026-11-28T11:00:00Z'], 'now', Date.parse('2026-11-28T12:00:00Z'))).toEqual([
      'now',
    ]);
  });

  it('the persisted history keeps the newest 60', () => {
    const times = Array.from({ length: 60 }, (_, i) => `2026-11-28T11:30:${String(i).padStart(2, '0')}Z`);
    const history = appendHistory(times, 'newest', Date.parse('2026-11-28T12:00:00Z'));
    expect(history).toHaveLength(60);
    expect(history[0]).toBe(times[1]);
    expect(history.at(-1)).toBe('newest');
  });

  it('cancelling gives back exactly the one attempt named, and nothing for one never made', async () => {
    const ledger = new HealLedger(10);
    await ledger.recordAttempt(5, 'a/s');
    await ledger.recordAttempt(5, 'b/s');
    await ledger.recordAttempt(6, 'a/s');
    await ledger.cancelAttempt(7, 'a/s');
    expect(ledger.clusterRemaining(10)).toBe(7);
    await ledger.cancelAttempt(5, 'a/s');
    expect(ledger.secretHealsLastHour('a/s', 10)).toBe(1);
    expect(ledger.secretHealsLastHour('b/s', 10)).toBe(1);
    await ledger.cancelAttempt(5, 'b/s');
    expect(ledger.secretHealsLastHour('b/s', 10)).toBe(0);
    expect(ledger.secretHealsLastHour('a/s', 10)).toBe(1);
  });

  it('a back-off is forgotten once it is older than the longest back-off, not before', () => {
    const ledger = new HealLedger(10, undefined, 60_000, 600_000);
    ledger.recordFailure('a', 1_000);
    ledger.recordFailure('b', 601_000);
    expect(ledger.backoffUntil('a')).toBe(61_000);
    ledger.recordFailure('b', 601_001);
    expect(ledger.backoffUntil('a')).toBeUndefined();
    expect(ledger.backoffUntil('b')).toBe(601_001 + 120_000);
  });

  it('replicas share attempts through the store: each sees the other, none counted twice', async () => {
    const kube = new FakeKube(() => 0);
    const first = new HealLedger(10, new LedgerStore(kube, OPS));
    const second = new HealLedger(10, new LedgerStore(kube, OPS));
    await first.ready(0);
    await first.recordAttempt(20, 'a/s');
    await second.ready(30);
    expect(second.secretHealsLastHour('a/s', 30)).toBe(1);
    await second.recordAttempt(10, 'b/s');
    expect(second.clusterRemaining(30)).toBe(8);
    expect(stored(kube)).toEqual([
      { at: 10, secret: 'b/s' },
      { at: 20, secret: 'a/s' },
    ]);
    await second.cancelAttempt(10, 'b/s');
    expect(stored(kube)).toEqual([{ at: 20, secret: 'a/s' }]);
    expect(second.clusterRemaining(30)).toBe(9);
  });

  it('a store that could not be read is read again next time', async () => {
    const kube = new FakeKube(() => 0);
    const path = `/api/v1/namespaces/${OPS}/configmaps/authprobe-heal-ledger`;
    kube.add(`/api/v1/namespaces/${OPS}/configmaps`, {
      metadata: { name: 'authprobe-heal-ledger' },
      data: { heals: JSON.stringify([{ at: 1, secret: 'a/s' }]) },
    });
    const ledger = new HealLedger(10, new LedgerStore(kube, OPS));
    kube.failNext('GET', path, new KubeApiError(503, 'ServiceUnavailable', 'down'));
    await expect(ledger.ready(2)).rejects.toThrow('down');
    await ledger.ready(2);
    await ledger.ready(2);
    expect(kube.callsTo('GET', path)).toHaveLength(2);
    expect(ledger.secretHealsLastHour('a/s', 2)).toBe(1);
  });
});
