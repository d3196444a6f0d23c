import { describe, expect, it } from '@jest/globals';
import { parseQuantity } from '../../../src/api/quantity.js';

describe('parseQuantity', () => {
  it.each<[string | number, number]>([
    ['100m', 0.1],
    ['0.5', 0.5],
    [1, 1],
    ['2', 2],
    ['256Mi', 256 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1G', 1e9],
    ['128k', 128e3],
    ['1e3', 1000],
  ])('%s', (text, value) => {
    expect(parseQuantity(text)).toBeCloseTo(value, 9);
  });

  it.each(['', 'lots', '1Xi', '-1', '1 Gi', 'Mi'])('rejects %j', (text) => {
    expect(parseQuantity(text)).toBeUndefined();
  });
});
