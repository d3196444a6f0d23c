/**
 * 1. time to heal after a key rotation, and the healer's TokenReview rate during that mass heal.
 * Rotates the cluster's service-account signing key: every legacy token secret made before breaks.
 * The probes' interval is 1h, so a probe healed within seconds was checked because the key it was
 * signed with left the apiserver's published key set, not because its interval came round.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { apiJson, apiserverCounts } from '../lib/apiserver.ts';
import { countReasons, listProbes, ready, waitAllProbesReason } from '../lib/authprobes.ts';
import { createObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe } from '../lib/manifests.ts';
import { startOperator } from '../lib/operator.ts';
import { startProxy } from '../lib/proxy.ts';
import { REPO } from '../lib/repo.ts';
import { countsObject, delta, restarted } from '../lib/request-counts.ts';
import { p50p95, percentile, round } from '../lib/stats.ts';
import { createTokenNamespace } from '../lib/tokens.ts';
import { sleep, waitFor } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

/**
 * p50 / p95 / max of the seconds to heal, a probe not healed in the wait counting as never: a
 * percentile that falls on one is null (more than the wait).
 */
function healTimes(
  times: number[],
  probes: number,
): { p50: number | null; p95: number | null; max: number | null } {
  const all = [...times, ...Array<number>(probes - times.length).fill(Infinity)];
  const at = (p: number): number | null => {
    const v = percentile(all, p);
    return Number.isFinite(v) ? round(v, 1) : null;
  };
  return { p50: at(50), p95: at(95), max: at(100) };
}

export async function phaseHeal(ctx: PhaseContext): Promise<void> {
  const n = ctx.sizes.healProbes;
  const intervalS = ctx.sizes.healIntervalS;
  const waitS = ctx.sizes.healWaitS;
  const podProbes = Math.ceil(n / 2);
  const checkOf = (i: number): 'Pod' | 'TokenReview' => (i < podProbes ? 'Pod' : 'TokenReview');
  const names = Array.from({ length: n }, (_, i) => `${checkOf(i) === 'Pod' ? 'pod' : 'tr'}-${i}`);
  const ns = await createTokenNamespace(
    'heal',
    names.map((_, i) => `tok-${i}`),
  );
  await createObjects(
    names.map((name, i) =>
      authProbe(ns, name, {
        secretName: `tok-${i}`,
        check: checkOf(i),
        interval: `${intervalS}s`,
        // 50 probe pods start at once on a small node
        timeout: '30s',
      }),
    ),
    4,
  );
  // through the counting proxy, so the healer's own requests (TokenReviews included) are counted exactly
  const proxy = await startProxy();
  const op = await startOperator({
    name: 'heal',
    image: ctx.image,
    namespace: ns,
    env: { KUBECONFIG: proxy.kubeconfigPath, AUTHPROBE_HEAL_BUDGET_PER_HOUR: '10000' },
  });
  try {
    await waitAllProbesReason(ns, n, 'Authenticated', 600_000);
    log(
      `heal: ${n} secret-sourced probes (${podProbes} check Pod, ${n - podProbes} check TokenReview, interval ` +
        `${intervalS} s) authenticated; rotating the service-account key`,
    );
    // The operator's requests are counted from the start of the rotation: it may notice the old key gone
    // (and heal) while the script still waits for the cluster's components after the last restart.
    const proxy0 = new Map(proxy.counts);
    const rotStart = Date.now();
    await promisify(execFile)('bash', [path.join(REPO, 'test/cluster/rotate-sa-key.sh')], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    const rotatedAt = Date.now();
    const rotationS = (rotatedAt - rotStart) / 1000;
    log(
      `heal: rotation took ${round(rotationS, 1)} s; waiting up to ${waitS} s for every probe to be Healed`,
    );
    // the apiserver restarted during the rotation: its counters start from here
    const api0 = await waitFor('the apiserver metrics', 60_000, () => apiserverCounts());
    const observed = new Map<string, number>();
    const serverSide = new Map<string, number>();
    // One LIST of the namespace's AuthProbes a second (never one request per probe), on a fixed
    // cadence, until every probe is healed or the wait is over (a probe not healed by then is reported).
    const deadline = rotatedAt + waitS * 1000;
    let polls = 0;
    let failedPolls = 0;
    while (observed.size < n && Date.now() < deadline) {
      const tick = Date.now();
      polls++;
      try {
        const items = await listProbes(ns);
        const now = Date.now();
        for (const p of items) {
          const r = ready(p);
          const healedAt = Date.parse(p.status?.heals?.lastTime ?? '');
          if (
            // Healed, or already Authenticated again by a later check (a poll can miss Healed); a heal
            // done before the script returned counts at the first poll (its serverSide time is negative)
            r?.status === 'True' &&
            healedAt >= rotStart - 1000 &&
            !observed.has(p.metadata.name)
          ) {
            observed.set(p.metadata.name, (now - rotatedAt) / 1000);
            serverSide.set(p.metadata.name, (healedAt - rotatedAt) / 1000);
          }
        }
      } catch {
        failedPolls++;
      }
      await sleep(Math.max(0, 1000 - (Date.now() - tick)));
    }
    const proxy1 = new Map(proxy.counts);
    const api1 = await apiserverCounts();
    const times = [...observed.values()];
    const healedCount = times.length;
    // from the start of the rotation (when the requests are counted from) to the last heal or the wait's end
    const lastHealS = (healedCount === n ? Math.max(...times) : (Date.now() - rotatedAt) / 1000) + rotationS;
    const d = delta(api1, api0);
    const opReqs = delta(proxy1, proxy0);
    const reviews = opReqs.get('POST tokenreviews') ?? 0;
    // the busy part of the mass heal: first rejection confirmed to last new token confirmed (Events)
    const events = await apiJson<{
      items: Array<{ reason: string; lastTimestamp?: string; eventTime?: string; firstTimestamp?: string }>;
    }>('GET', `/api/v1/namespaces/${ns}/events`);
    const at = (reason: string): number[] =>
      events.items
        .filter((e) => e.reason === reason)
        .map((e) => Date.parse(e.firstTimestamp ?? e.eventTime ?? e.lastTimestamp ?? ''))
        .filter((t) => t >= rotStart - 1000);
    const confirmed = at('TokenRejectionConfirmed');
    const issued = at('TokenIssued');
    const busyS =
      confirmed.length && issued.length
        ? Math.max(1, (Math.max(...issued) - Math.min(...confirmed)) / 1000 + 1)
        : NaN;
    const healed = healTimes(times, n);
    const byCheck = Object.fromEntries(
      (['Pod', 'TokenReview'] as const).map((check) => {
        const mine = names.filter((_, i) => checkOf(i) === check);
        const t = mine.flatMap((name) => (observed.has(name) ? [observed.get(name) as number] : []));
        return [check, { probes: mine.length, healed: t.length, ...healTimes(t, mine.length) }];
      }),
    );
    const notHealed = names.filter((name) => !observed.has(name));
    ctx.results.heal = {
      probes: n,
      source: 'Secret (legacy token secrets created before the rotation)',
      checks: { Pod: podProbes, TokenReview: n - podProbes },
      intervalS,
      waitS,
      rotationSeconds: round(rotationS, 1),
      runs: healedCount,
      notHealed: notHealed.length,
      secondsFromRotationEndToHealed: {
        ...healed,
        all: times.map((t) => round(t, 1)).sort((a, b) => a - b),
      },
      byCheck,
      serverSideSeconds: p50p95([...serverSide.values()]),
      ...(notHealed.length
        ? {
            notHealedNames: notHealed.slice(0, 20),
            notHealedVerdicts: countReasons(
              (await listProbes(ns).catch(() => [])).filter((p) => notHealed.includes(p.metadata.name)),
              'none',
            ),
          }
        : {}),
      polls: { count: polls, failed: failedPolls },
      method:
        'clock starts when test/cluster/rotate-sa-key.sh exits (old key dropped); a probe counts as healed at the first ' +
        "1-second poll (one LIST of the namespace's AuthProbes a second) that shows Ready=True (reason Healed, or " +
        'Authenticated by a later check) with heals.lastTime after the start of the rotation (serverSideSeconds: ' +
        'heals.lastTime - end of the rotation, 1-second resolution; negative for a heal done before the script ' +
        `returned). Probes not healed ${waitS} s after the rotation count as not healed: a percentile ` +
        'that falls on one is null (more than the wait). With interval 1h, only a check the key change triggers ' +
        'heals within the wait. Ready may not go False in between: the 401, its confirmation and the replacement ' +
        'happen within one reconcile.',
      healerTokenReviews: {
        count: reviews,
        fromRotationStartToLastHealS: round(lastHealS, 1),
        perSecondOverThatWindow: round(reviews / lastHealS, 2),
        busyWindowS: round(busyS, 1),
        perSecondBusy: round(reviews / busyS, 2),
        allClientsCount: d.get('POST tokenreviews') ?? 0,
        what:
          "the operator's POST tokenreviews, counted by the proxy from the start of the rotation (allClientsCount: the apiserver's counter, from its last restart) to the last heal " +
          '(or the end of the wait); the healer does two per heal (confirming the rejection, confirming the new token). busyWindow: from the first ' +
          'TokenRejectionConfirmed Event to the last TokenIssued Event (1-second timestamps).',
      },
      ...(healedCount ? { operatorRequestsPerHealedProbe: countsObject(opReqs, healedCount) } : {}),
      operatorRequestsDuringHeal: countsObject(opReqs),
      operatorRequestsNote:
        "the operator's requests (counting proxy) from the start of the rotation until every probe was healed (or the " +
        'end of the wait), divided by the healed probes: includes the check that got the 401, the heal, and the ' +
        'confirming check',
      apiserverRequestsAfterRotation: countsObject(d),
      apiserverRestartedDuringHeal: restarted(api1, api0),
    };
    log(
      `heal: ${healedCount} of ${n} healed within ${waitS} s; p50 ${healed.p50 ?? `> ${waitS}`} s, ` +
        `p95 ${healed.p95 ?? `> ${waitS}`} s, max ${healed.max ?? `> ${waitS}`} s`,
    );
  } finally {
    await op.stop();
    proxy.close();
  }
}
