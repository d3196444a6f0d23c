import { describe, expect, it } from '@jest/globals';
import {
  conditionStatus,
  getCondition,
  removeCondition,
  setCondition,
  toApiTime,
  type ConditionUpdate,
} from '../../../src/api/conditions.js';
import type { Condition } from '../../../src/api/types.js';

const T0 = '2025-01-01T00:00:00Z';
const now = new Date('2025-01-01T00:05:00.123Z');
const ready = (status: Condition['status'], reason: string, at = T0): Condition => ({
  type: 'Ready',
  status,
  reason,
  message: `${reason} message`,
  observedGeneration: 1,
  lastTransitionTime: at,
});
const update = (status: Condition['status'], reason: string, observedGeneration = 2): ConditionUpdate => ({
  type: 'Ready',
  status,
  reason,
  message: `${reason} message`,
  observedGeneration,
});

describe('setCondition', () => {
  it.each<[string, Condition[] | undefined, ConditionUpdate, Condition[]]>([
    [
      'adds a new condition at now',
      undefined,
      update('Unknown', 'Probing'),
      [{ ...update('Unknown', 'Probing'), lastTransitionTime: '2025-01-01T00:05:00Z' }],
    ],
    [
      'keeps lastTransitionTime when only reason/message/generation change',
      [ready('True', 'Authenticated')],
      update('True', 'AuthenticatedForbidden'),
      [{ ...update('True', 'AuthenticatedForbidden'), lastTransitionTime: T0 }],
    ],
    [
      'moves lastTransitionTime when the status changes',
      [ready('True', 'Authenticated')],
      update('False', 'TokenRejected'),
      [{ ...update('False', 'TokenRejected'), lastTransitionTime: '2025-01-01T00:05:00Z' }],
    ],
    [
      'leaves other conditions and their order alone',
      [{ ...ready('True', 'X'), type: 'Other' }, ready('True', 'Authenticated')],
      update('True', 'Authenticated'),
      [
        { ...ready('True', 'X'), type: 'Other' },
        { ...update('True', 'Authenticated'), lastTransitionTime: T0 },
      ],
    ],
  ])('%s', (_name, before, next, after) => {
    const snapshot = structuredClone(before);
    expect(setCondition(before, next, now)).toEqual(after);
    expect(before).toEqual(snapshot);
  });
});

describe('reading conditions', () => {
  const list = [ready('False', 'TokenRejected')];
  it('getCondition and conditionStatus', () => {
    expect(getCondition(list, 'Ready')?.reason).toBe('TokenRejected');
    expect(getCondition(list, 'Nope')).toBeUndefined();
    expect(conditionStatus(list, 'Ready')).toBe('False');
    expect(conditionStatus(undefined, 'Ready')).toBe('Unknown');
    expect(removeCondition(list, 'Ready')).toEqual([]);
  });

  it('toApiTime writes second precision like the apiserver', () => {
    expect(toApiTime(now)).toBe('2025-01-01T00:05:00Z');
  });
});

describe('removeCondition', () => {
  it('removes only the named type', () => {
    const other = { ...ready('True', 'X'), type: 'Other' };
    expect(removeCondition([other, ready('True', 'Authenticated')], 'Ready')).toEqual([other]);
  });
});
