import { describe, expect, it } from '@jest/globals';
import { HealLedger, appendHistory, healsInLastHour } from '../../../src/heal/budget.js';
import { consumesSecret } from '../../../src/heal/workloads.js';
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
