import type { Condition, ConditionStatus } from './types.js';

/**
 * metav1.Time as the apiserver writes it: RFC 3339 in UTC with second precision. Using the same form
 * keeps a status we write byte-identical to one we read back, so "did anything change?" is a string
 * comparison.
 */
export function toApiTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function getCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function conditionStatus(conditions: readonly Condition[] | undefined, type: string): ConditionStatus {
  return getCondition(conditions, type)?.status ?? 'Unknown';
}

/** What a caller decides; lastTransitionTime is setCondition's business. */
export type ConditionUpdate = Omit<Condition, 'lastTransitionTime'>;

/**
 * Returns a new list with `update` applied, with metav1 semantics (apimachinery's
 * meta.SetStatusCondition): lastTransitionTime moves to `now` only when the status changes (or the
 * condition is new); reason, message and observedGeneration always take the new values. Order is kept,
 * a new type is appended, the input is not modified.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: Date,
): Condition[] {
  const list = conditions ?? [];
  const existing = getCondition(list, update.type);
  const lastTransitionTime =
    existing && existing.status === update.status ? existing.lastTransitionTime : toApiTime(now);
  const next: Condition = { ...update, lastTransitionTime };
  if (!existing) return [...list, next];
  return list.map((c) => (c.type === update.type ? next : c));
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
