import { describe, expect, it } from '@jest/globals';
import { memoryLogger } from '../support/logger.js';
import { scrub } from '../../../src/log/logger.js';

// Built at run time so no token-shaped literal sits in the repository.
const segment = (seed: string): string => Buffer.from(seed.repeat(6)).toString('base64url');
const FAKE_TOKEN = `eyJhbGciOiJSUzI1NiJ9.${segment('payload-')}.${segment('signature')}`;

describe('log redaction', () => {
  it('a token handed to the logger in any position never reaches the output', () => {
    const { logger, text } = memoryLogger();
    logger.info({ token: FAKE_TOKEN }, 'token field');
    logger.info({ headers: { Authorization: `Bearer ${FAKE_TOKEN}` } }, 'header');
    logger.info(
      { secret: { metadata: { name: 's' }, data: { token: Buffer.from(FAKE_TOKEN).toString('base64') } } },
      'secret',
    );
    logger.info({ nested: [{ detail: `the token was ${FAKE_TOKEN} here` }] }, 'nested string');
    logger.warn(`message with ${FAKE_TOKEN} inside`);
    logger.error({ err: new Error(`failed with Bearer ${FAKE_TOKEN}`) }, 'error object');
    logger.info({ why: 'Bearer abcdefghijklmnop' }, 'opaque bearer');
    const output = text();
    expect(output.split('\n')).toHaveLength(7);
    expect(output).not.toContain(FAKE_TOKEN);
    expect(output).not.toContain(FAKE_TOKEN.split('.')[1]);
    expect(output).not.toContain(Buffer.from(FAKE_TOKEN).toString('base64').slice(0, 40));
    expect(output).not.toContain('abcdefghijklmnop');
    expect(output).toContain('[REDACTED]');
    // What is not secret survives, so the log is still useful.
    expect(output).toContain('"name":"s"');
    expect(output).toContain('nested string');
  });

  it('scrub leaves ordinary values alone', () => {
    expect(scrub({ namespace: 'default', count: 3, ok: true, list: ['a'] })).toEqual({
      namespace: 'default',
      count: 3,
      ok: true,
      list: ['a'],
    });
  });
});
