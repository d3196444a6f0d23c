import { describe, expect, it } from '@jest/globals';
import { RotationDetector } from '../../../src/signals/rotation.js';

describe('RotationDetector', () => {
  it('raises once when enough namespaces reject within the window, and clears on recovery', () => {
    const detector = new RotationDetector(3, 600_000);
    expect(detector.recordRejection('a', 'a/p', 0)).toBe(false);
    expect(detector.recordRejection('a', 'a/q', 1)).toBe(false);
    expect(detector.recordRejection('b', 'b/p', 2)).toBe(false);
    expect(detector.recordRejection('c', 'c/p', 3)).toBe(true);
    expect(detector.recordRejection('d', 'd/p', 4)).toBe(false);
    expect(detector.isSuspected).toBe(true);
    detector.recordRecovery('c', 'c/p', 5);
    expect(detector.recordRecovery('d', 'd/p', 6)).toBe(true);
    expect(detector.isSuspected).toBe(false);
  });

  it('rejections older than the window do not count', () => {
    const detector = new RotationDetector(2, 1000);
    detector.recordRejection('a', 'a/p', 0);
    expect(detector.recordRejection('b', 'b/p', 2000)).toBe(false);
  });
});
