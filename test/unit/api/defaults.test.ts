import { describe, expect, it } from '@jest/globals';
import { parseDuration, resolveSpec } from '../../../src/api/defaults.js';
import type { AuthProbeSpec } from '../../../src/api/types.js';

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['250ms', 250],
    ['2m0s', 120_000],
  ])('%s → %i ms', (text, ms) => {
    expect(parseDuration(text, 'spec.interval')).toEqual({ ok: true, ms });
  });

  it.each(['', '5', 'm', '5 m', '-5m', '5d', '1h-2m', ' 5m'])('rejects %j naming the field', (text) => {
    const parsed = parseDuration(text, 'spec.timeout');
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.message).toMatch(/^spec\.timeout: ".*" is not a duration/);
  });
});

describe('resolveSpec', () => {
  it('defaults and converts durations', () => {
    const resolved = resolveSpec({ serviceAccountName: 'sa' });
    expect(resolved).toMatchObject({
      ok: true,
      spec: { intervalMs: 300_000, timeoutMs: 30_000, path: '/api', check: 'Pod' },
    });
  });

  it.each<[string, AuthProbeSpec, string]>([
    ['bad interval', { serviceAccountName: 'sa', interval: 'often' }, 'spec.interval: "often"'],
    ['interval too short', { serviceAccountName: 'sa', interval: '5s', timeout: '1s' }, 'spec.interval: 5s'],
    ['timeout too long', { serviceAccountName: 'sa', interval: '1h', timeout: '11m' }, 'spec.timeout: 11m'],
    [
      'timeout not below interval',
      { serviceAccountName: 'sa', interval: '30s', timeout: '30s' },
      'shorter than spec.interval',
    ],
    [
      'Secret without secretName',
      { serviceAccountName: 'sa', token: { source: 'Secret' } },
      'secretName is required',
    ],
    ['secretName with Projected', { serviceAccountName: 'sa', token: { secretName: 'x' } }, 'only allowed'],
    [
      'TokenReview of a projected token',
      { serviceAccountName: 'sa', check: 'TokenReview' },
      'spec.check: TokenReview needs spec.token.source Secret',
    ],
  ])('%s → InvalidSpec', (_name, spec, message) => {
    const resolved = resolveSpec(spec);
    expect(resolved.ok).toBe(false);
    expect(!resolved.ok && resolved.reason).toBe('InvalidSpec');
    expect(!resolved.ok && resolved.message).toContain(message);
  });
});
