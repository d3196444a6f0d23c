import { describe, expect, it } from '@jest/globals';
import {
  TERMINATION_MESSAGE_MAX_BYTES,
  parseProbeResult,
  redactSecrets,
  serializeProbeResult,
  type ProbeResult,
} from '../../../src/probe/result.js';

const sample: ProbeResult = {
  version: 1,
  apiserver: '10.96.0.1:443',
  path: '/api',
  files: { tokenFile: 'present', caFile: 'present', namespaceFile: 'present' },
  namespace: 'team',
  token: {
    kind: 'bound',
    issuer: 'https://kubernetes.default.svc',
    keyId: 'k1',
    expiresAt: '2025-01-01T01:00:00.000Z',
  },
  anonymous: {
    outcome: 'response',
    httpStatus: 403,
    latencyMs: 3,
    reason: 'Forbidden',
    message: 'forbidden',
  },
  authenticated: { outcome: 'response', httpStatus: 200, latencyMs: 5, pathsSample: ['v1'] },
  identity: {
    outcome: 'identity',
    username: 'system:serviceaccount:team:sa',
    groups: ['system:serviceaccounts'],
  },
  startedAt: '2025-01-01T00:00:00.000Z',
  finishedAt: '2025-01-01T00:00:00.010Z',
};

describe('serializeProbeResult / parseProbeResult', () => {
  it('round-trips', () => {
    expect(parseProbeResult(serializeProbeResult(sample))).toEqual({ ok: true, result: sample });
  });

  it.each<[string, ProbeResult['authenticated'], ProbeResult['identity']]>([
    [
      'a transport error',
      { outcome: 'error', error: { code: 'ECONNREFUSED', message: 'refused' }, latencyMs: 1 },
      { outcome: 'skipped', why: 'no answer' },
    ],
    [
      'a skipped step',
      { outcome: 'skipped', why: 'token file is missing' },
      { outcome: 'error', error: { code: 'X', message: 'y' } },
    ],
    [
      'a Status answer',
      { outcome: 'response', httpStatus: 401, latencyMs: 2, reason: 'Unauthorized' },
      { outcome: 'response', httpStatus: 401 },
    ],
  ])('round-trips %s', (_name, authenticated, identity) => {
    const value = { ...sample, authenticated, identity };
    expect(parseProbeResult(serializeProbeResult(value))).toEqual({ ok: true, result: value });
  });

  it('fits the 4096-byte termination message however long the messages are', () => {
    const long = 'x'.repeat(5000);
    const huge: ProbeResult = {
      ...sample,
      anonymous: { outcome: 'response', httpStatus: 403, latencyMs: 1, message: long },
      authenticated: { outcome: 'error', error: { code: 'E', message: long }, latencyMs: 1 },
      identity: { outcome: 'response', httpStatus: 500, message: long },
    };
    const text = serializeProbeResult(huge);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(TERMINATION_MESSAGE_MAX_BYTES);
    expect(parseProbeResult(text).ok).toBe(true);
  });

  it('redacts the token and anything shaped like a JWT', () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';
    const leaky: ProbeResult = {
      ...sample,
      authenticated: {
        outcome: 'error',
        error: { code: 'E', message: `bad ${token} and opaque-secret-123` },
        latencyMs: 1,
      },
    };
    const text = serializeProbeResult(leaky, ['opaque-secret-123']);
    expect(text).not.toContain(token);
    expect(text).not.toContain('opaque-secret-123');
    expect(redactSecrets(`a ${token} b`)).toBe('a [redacted] b');
  });

  it('does not carry unknown fields into the parsed value', () => {
    const text = JSON.stringify({ ...sample, token: { ...sample.token, raw: 'secret' }, extra: 1 });
    const parsed = parseProbeResult(text);
    expect(parsed.ok && JSON.stringify(parsed.result)).not.toContain('secret');
  });

  it.each([
    ['undefined', undefined, 'left no result'],
    ['empty', '', 'left no result'],
    ['not JSON', 'panic: something', 'not JSON'],
    ['a JSON array', '[]', 'result is not an object'],
    ['another version', JSON.stringify({ ...sample, version: 2 }), 'unsupported probe result version 2'],
    [
      'a bad file state',
      JSON.stringify({ ...sample, files: { ...sample.files, tokenFile: 'yes' } }),
      'files.tokenFile',
    ],
    [
      'a bad outcome',
      JSON.stringify({ ...sample, authenticated: { outcome: 'maybe' } }),
      'authenticated.outcome',
    ],
    [
      'a string status',
      JSON.stringify({ ...sample, authenticated: { ...sample.authenticated, httpStatus: '200' } }),
      'authenticated.httpStatus',
    ],
    ['no identity', JSON.stringify({ ...sample, identity: undefined }), 'identity is not an object'],
    // The pod's output is untrusted: only fields of the expected shape and length are taken.
    [
      'an identity that is not a service account',
      JSON.stringify({ ...sample, identity: { outcome: 'identity', username: 'system:admin' } }),
      'identity.username is not a service-account username',
    ],
    [
      'a status code out of range',
      JSON.stringify({ ...sample, authenticated: { ...sample.authenticated, httpStatus: 999 } }),
      'not an HTTP status code',
    ],
    [
      'an overlong message',
      JSON.stringify({ ...sample, anonymous: { ...sample.anonymous, message: 'x'.repeat(1025) } }),
      'anonymous.message is longer than 1024 characters',
    ],
    [
      'control characters',
      JSON.stringify({ ...sample, path: '/api\u001b[31m' }),
      'path holds control characters',
    ],
    [
      'too many groups',
      JSON.stringify({ ...sample, identity: { ...sample.identity, groups: Array(21).fill('g') } }),
      'identity.groups has more than 20 entries',
    ],
    ['more than the kubelet keeps', 'x'.repeat(TERMINATION_MESSAGE_MAX_BYTES + 1), 'longer than 4096 bytes'],
  ])('rejects %s', (_name, text, error) => {
    const parsed = parseProbeResult(text);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toContain(error);
  });
});
