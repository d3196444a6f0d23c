/** Reading AuthProbes back: their Ready condition, and waiting for a whole namespace of them. */
import { apiJson, apiRequest } from './apiserver.ts';
import { waitFor } from './wait.ts';

export interface Condition {
  type: string;
  status: string;
  reason: string;
  lastTransitionTime?: string;
}

export interface AuthProbeJson {
  metadata: { name: string; namespace: string };
  status?: {
    conditions?: Condition[];
    lastProbe?: { time?: string; pod?: string };
    heals?: { count?: number; lastTime?: string; lastResult?: string };
  };
}

export const ready = (p: AuthProbeJson): Condition | undefined =>
  p.status?.conditions?.find((c) => c.type === 'Ready');

/** A verdict: any Ready reason but the interim ones (Probing while the pod runs, ProbePending). */
export const hasVerdict = (p: AuthProbeJson): boolean =>
  ready(p) !== undefined && !['Probing', 'ProbePending'].includes(ready(p)?.reason ?? '');

export const listProbes = async (ns: string): Promise<AuthProbeJson[]> =>
  (
    await apiJson<{ items: AuthProbeJson[] }>(
      'GET',
      `/apis/authprobe.io/v1alpha1/namespaces/${ns}/authprobes`,
    )
  ).items;

/** Waits until every probe in `ns` (there are `count`) has the Ready reason `reason`. */
export async function waitAllProbesReason(
  ns: string,
  count: number,
  reason: string,
  timeoutMs: number,
): Promise<void> {
  await waitFor(`${count} AuthProbes in ${ns} to be ${reason}`, timeoutMs, async () => {
    const items = await listProbes(ns);
    return items.length >= count && items.every((p) => ready(p)?.reason === reason) ? true : undefined;
  });
}

/** How many probes have each Ready reason; `missing` names the probes without a Ready condition. */
export function countReasons(probes: AuthProbeJson[], missing: string): Record<string, number> {
  const reasons: Record<string, number> = {};
  for (const p of probes) {
    const reason = ready(p)?.reason ?? missing;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
  }
  return reasons;
}

/**
 * Throws unless every verdict is Authenticated: a phase that measures healthy, unchanged verdicts on
 * valid token secrets gives no figures when the cluster rejects its fresh tokens (e.g. after
 * `rotate-sa-key.sh --wrong-order`, kube-controller-manager signs with a key the apiserver does not trust).
 */
export function requireAuthenticated(phase: string, verdicts: Record<string, number>): void {
  const other = Object.entries(verdicts).filter(([reason]) => reason !== 'Authenticated');
  if (other.length)
    throw new Error(
      `${phase}: the fresh token secrets do not authenticate (verdicts ${JSON.stringify(verdicts)}); ` +
        'is the cluster mid-rotation, or its controller-manager signing with an untrusted key?',
    );
}

/** Deletes every AuthProbe in `ns` with one DELETE of the collection (no waiting for them to go). */
export async function deleteAllProbes(ns: string): Promise<void> {
  const res = await apiRequest(
    'DELETE',
    `/apis/authprobe.io/v1alpha1/namespaces/${ns}/authprobes`,
    undefined,
    undefined,
    120_000,
  );
  if (res.status >= 300)
    throw new Error(`deleting the AuthProbes of ${ns}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
}
