import { describe, expect, it } from '@jest/globals';
import { resolveSpec } from '../../../src/api/defaults.js';
import { formatDuration, parseDuration } from '../../../src/api/duration.js';
import type { AuthProbeSpec } from '../../../src/api/types.js';

describe('parseDuration (the one duration grammar)', () => {
  it.each([
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['250ms', 250],
    ['2m0s', 120_000],
  ])('%s → %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '5', 'm', '5 m', '-5m', '5d', '1h-2m'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it.each([
    [30_000, '30s'],
    [300_000, '5m'],
    [5_400_000, '1h30m'],
    [750, '750ms'],
    [0, '0ms'],
  ])('formats %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
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

  it.each([
    ['10s', 5_000],
    ['30s', 15_000],
    ['1m', 30_000],
    ['1h', 30_000],
  ])('interval %s alone is valid: the default timeout follows it (%i ms)', (interval, timeoutMs) => {
    expect(resolveSpec({ serviceAccountName: 'sa', interval })).toMatchObject({
      ok: true,
      spec: { timeoutMs },
    });
  });

  it('a timeout the user set is kept', () => {
    expect(resolveSpec({ serviceAccountName: 'sa', interval: '10s', timeout: '9s' })).toMatchObject({
      ok: true,
      spec: { timeoutMs: 9_000, timeout: '9s' },
    });
  });

  it('a Secret source resolves to a token that has its secretName', () => {
    const resolved = resolveSpec({ serviceAccountName: 'sa', token: { source: 'Secret', secretName: 's' } });
    expect(resolved).toMatchObject({ ok: true, spec: { token: { source: 'Secret', secretName: 's' } } });
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
