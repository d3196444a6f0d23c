/**
 * Request counts keyed "VERB resource[/subresource]", the way the apiserver's apiserver_request_total
 * names requests: from the apiserver's /metrics, or from the counting proxy.
 */
import { round } from './stats.ts';

export type Counts = Map<string, number>;

/** A key parseRequestTotals uses for the apiserver's start time (never a request count). */
const START_KEY = '_start';

/** apiserver_request_total summed by "VERB resource[/subresource]" (resource requests only). */
export function parseRequestTotals(metricsText: string): Counts {
  const counts: Counts = new Map();
  for (const line of metricsText.split('\n')) {
    if (line.startsWith('process_start_time_seconds ')) counts.set(START_KEY, Number(line.split(' ').pop()));
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]),
    );
    if (!labels.resource) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? '/' + labels.subresource : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.split(' ').pop()));
  }
  return counts;
}

/** Whether the apiserver restarted (its counters reset) between two parseRequestTotals. */
export const restarted = (after: Counts, before: Counts): boolean =>
  after.get(START_KEY) !== before.get(START_KEY);

export function delta(after: Counts, before: Counts): Counts {
  const out: Counts = new Map();
  for (const [key, value] of after) {
    if (key === START_KEY) continue;
    const d = value - (before.get(key) ?? 0);
    if (d !== 0) out.set(key, d);
  }
  return out;
}

const WRITE_VERBS = new Set([
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'DELETECOLLECTION',
  'CREATE',
  'UPDATE',
  'APPLY',
]);
export const verbOf = (key: string): string => key.split(' ')[0] as string;
/** Review "creates" (TokenReview, SelfSubjectReview, SubjectAccessReview) store nothing: not writes. */
export const isStoredWrite = (key: string): boolean => WRITE_VERBS.has(verbOf(key)) && !/reviews\b/.test(key);

/** The sum of the counts whose key passes `f`. */
export const sumWhere = (counts: Counts, f: (key: string) => boolean): number =>
  [...counts].filter(([k]) => f(k)).reduce((s, [, v]) => s + v, 0);

/** The counts as a JSON object sorted by key, each divided by `divisor` (3 decimals). */
export const countsObject = (counts: Counts, divisor = 1): Record<string, number> =>
  Object.fromEntries(
    [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, round(v / divisor, 3)]),
  );

/** A write of an AuthProbe's status subresource (PATCH or PUT .../authprobes/<name>/status). */
export const isStatusWrite = (key: string): boolean =>
  /^(PATCH|PUT|APPLY|UPDATE) authprobes\/status$/.test(key);

/** Leader election (Lease GET/PUT): one operator's upkeep, whatever it watches. */
export const isLease = (key: string): boolean => key.endsWith(' leases');

/** An informer's LIST or WATCH (counted when it starts): upkeep of the caches, not of a check. */
export const isInformer = (key: string): boolean => /^(LIST|WATCH) /.test(key);

/**
 * The operator's upkeep, whatever its AuthProbes do: leader election, its informers' LIST/WATCH, and
 * non-resource requests (the published signing keys, /openid/v1/jwks, read on a timer).
 */
export const isUpkeep = (key: string): boolean => isLease(key) || isInformer(key) || isNonResource(key);

/** A non-resource request, named by its path ("GET /openid/v1/jwks"). */
export const isNonResource = (key: string): boolean => (key.split(' ')[1] ?? '').startsWith('/');

/** The AuthProbe a request path names (.../authprobes/<name>[/status]), or undefined. */
export const authProbeOfPath = (urlPath: string): string | undefined =>
  /\/authprobes\/([^/]+)(\/status)?$/.exec(urlPath)?.[1];

/** The counts whose key passes `f`. */
export const filterCounts = (counts: Counts, f: (key: string) => boolean): Counts =>
  new Map([...counts].filter(([k]) => f(k)));
