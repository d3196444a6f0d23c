export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export const median = (values: number[]): number => percentile(values, 50);

/** Median and 95th percentile, rounded to `digits`. */
export const p50p95 = (values: number[], digits = 1): { p50: number; p95: number } => ({
  p50: round(median(values), digits),
  p95: round(percentile(values, 95), digits),
});

/** Least, median, 95th percentile and greatest, rounded to `digits` (NaN, written as null, when empty). */
export const spread = (
  values: number[],
  digits = 1,
): { min: number; p50: number; p95: number; max: number } => ({
  min: round(values.length ? Math.min(...values) : NaN, digits),
  ...p50p95(values, digits),
  max: round(values.length ? Math.max(...values) : NaN, digits),
});

/** The least-squares slope of y over x (NaN with fewer than two points or one x). */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx ? points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx : NaN;
}
