/**
 * The one duration grammar of the project: Go-style, units ms, s, m and h, parts may repeat and carry
 * a fraction ("30s", "1h30m", "1.5s", "500ms"). The CRD's pattern for interval and timeout, the
 * operator's settings and the CLI's flags all use it; callers word their own error, naming their field.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
/** Same as the CRD's `pattern` for durations. */
export const DURATION_PATTERN = /^(\d+(\.\d+)?(ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** Milliseconds, or undefined when `text` is not a duration of that grammar. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!DURATION_PATTERN.test(trimmed)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) ms += Number(amount) * (UNIT_MS[unit ?? ''] ?? NaN);
  return Math.round(ms);
}

/** A short human form of a duration in milliseconds: "30s", "5m", "1h30m", "750ms". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  let rest = Math.round(ms / 1_000);
  const h = Math.floor(rest / 3_600);
  rest -= h * 3_600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}
