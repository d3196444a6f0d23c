import { describe, expect, it } from '@jest/globals';
import { judgeTokenSecret, type SecretFacts } from '../../../src/checks/provenance.js';

const secret = (type: string | undefined, annotations: Record<string, string> = {}): SecretFacts => ({
  metadata: { name: 'gh', namespace: 'team', annotations },
  ...(type !== undefined ? { type } : {}),
});
const TOKEN = 'kubernetes.io/service-account-token';
const NAME = 'kubernetes.io/service-account.name';
const UID = 'kubernetes.io/service-account.uid';

describe('judgeTokenSecret: only the account’s own token secret is ever used', () => {
  it.each<[string, SecretFacts, string | undefined, string | undefined]>([
    ['the account’s filled token secret', secret(TOKEN, { [NAME]: 'p', [UID]: 'u1' }), 'u1', undefined],
    ['not filled yet (no uid annotation)', secret(TOKEN, { [NAME]: 'p' }), 'u1', undefined],
    ['the account was not read', secret(TOKEN, { [NAME]: 'p', [UID]: 'u1' }), undefined, undefined],
    [
      'an Opaque secret holding a CI token',
      secret('Opaque', { [NAME]: 'p' }),
      'u1',
      'SecretNotServiceAccountToken',
    ],
    ['a secret without a type', secret(undefined), 'u1', 'SecretNotServiceAccountToken'],
    [
      'another account’s token secret',
      secret(TOKEN, { [NAME]: 'other', [UID]: 'u9' }),
      'u1',
      'SecretForOtherServiceAccount',
    ],
    ['a token secret without the account annotation', secret(TOKEN), 'u1', 'SecretForOtherServiceAccount'],
    [
      'issued for a deleted and recreated account',
      secret(TOKEN, { [NAME]: 'p', [UID]: 'u0' }),
      'u1',
      'SecretForRecreatedServiceAccount',
    ],
  ])('%s', (_name, facts, accountUid, reason) => {
    const found = judgeTokenSecret(facts, 'p', accountUid);
    expect(found?.reason).toBe(reason);
    if (found) {
      expect(found.readyStatus).toBe('False');
      expect(found.tokenProvenInvalid).toBe(false);
      expect(found.message).toContain('team/gh');
    }
  });
});

describe('judgeTokenSecret: what each refusal says, word for word', () => {
  it.each<[string, SecretFacts, string | undefined]>([
    ['an Opaque secret', secret('Opaque', { [NAME]: 'p' }), 'u1'],
    ['a secret without a type', secret(undefined), 'u1'],
    ['another account’s token secret', secret(TOKEN, { [NAME]: 'other' }), 'u1'],
    ['a token secret without the account annotation', secret(TOKEN), 'u1'],
    ['issued for a recreated account', secret(TOKEN, { [NAME]: 'p', [UID]: 'u0' }), 'u1'],
  ])('%s', (_name, facts, accountUid) => {
    expect(judgeTokenSecret(facts, 'p', accountUid)).toMatchSnapshot();
  });
});
