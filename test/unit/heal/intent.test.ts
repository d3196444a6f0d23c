import { describe, expect, it } from '@jest/globals';
import { resolveSpec, type ResolvedSpec } from '../../../src/api/defaults.js';
import type { AuthProbeSpec, HealIntent } from '../../../src/api/types.js';
import { intentMismatch } from '../../../src/heal/intent.js';

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
