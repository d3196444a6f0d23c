/**
 * 1. time to heal after a key rotation, and the healer's TokenReview rate during that mass heal.
 * Rotates the cluster's service-account signing key: every legacy token secret made before breaks.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { apiJson, apiserverCounts } from '../lib/apiserver.ts';
import { listProbes, ready, waitAllProbesReason } from '../lib/authprobes.ts';
import { applyObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe } from '../lib/manifests.ts';
import { startOperator } from '../lib/operator.ts';
import { startProxy } from '../lib/proxy.ts';
import { REPO } from '../lib/repo.ts';
import { countsObject, delta, restarted } from '../lib/request-counts.ts';
import { p50p95, round } from '../lib/stats.ts';
import { createTokenNamespace } from '../lib/tokens.ts';
import { waitFor } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

export async function phaseHeal(ctx: PhaseContext): Promise<void> {
  const n = ctx.sizes.healProbes;
  const intervalS = ctx.sizes.healIntervalS;
  const names = Array.from({ length: n }, (_, i) => `tok-${i}`);
  const ns = await createTokenNamespace('heal', names);
  await applyObjects(
    names.map((s, i) => authProbe(ns, `p${i}`, { secretName: s, interval: `${intervalS}s` })),
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
    await waitAllProbesReason(ns, n, 'Authenticated', 180_000);
    log(`heal: ${n} secret-sourced probes authenticated; rotating the service-account key`);
    const rotStart = Date.now();
    await promisify(execFile)('bash', [path.join(REPO, 'test/cluster/rotate-sa-key.sh')], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    const rotatedAt = Date.now();
    const rotationS = (rotatedAt - rotStart) / 1000;
    log(`heal: rotation took ${round(rotationS, 1)} s; waiting for every probe to be Healed`);
    // the apiserver restarted during the rotation: its counters start from here
    const proxy0 = new Map(proxy.counts);
    const api0 = await waitFor('the apiserver metrics', 60_000, () => apiserverCounts());
    const observed = new Map<string, number>();
    const serverSide = new Map<string, number>();
    await waitFor(
      `${n} probes to heal`,
      (intervalS + 180) * 1000,
      async () => {
        const items = await listProbes(ns);
        const now = Date.now();
        for (const p of items) {
          const r = ready(p);
          const healedAt = Date.parse(p.status?.heals?.lastTime ?? '');
          if (
            // Healed, or already Authenticated again by a later cycle (a poll can miss Healed)
            r?.status === 'True' &&
            healedAt >= rotatedAt - 1000 &&
            !observed.has(p.metadata.name)
          ) {
            observed.set(p.metadata.name, (now - rotatedAt) / 1000);
            serverSide.set(p.metadata.name, (healedAt - rotatedAt) / 1000);
          }
        }
        return observed.size >= n ? true : undefined;
      },
      1000,
    );
    const proxy1 = new Map(proxy.counts);
    const api1 = await apiserverCounts();
    const lastHealS = Math.max(...observed.values());
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
        .filter((t) => t >= rotatedAt - 1000);
    const confirmed = at('TokenRejectionConfirmed');
    const issued = at('TokenIssued');
    const busyS =
      confirmed.length && issued.length
        ? Math.max(1, (Math.max(...issued) - Math.min(...confirmed)) / 1000 + 1)
        : NaN;
    const times = [...observed.values()];
    const healed = p50p95(times);
    ctx.results.heal = {
      probes: n,
      source: 'Secret (legacy token secrets created before the rotation)',
      intervalS,
      rotationSeconds: round(rotationS, 1),
      runs: times.length,
      secondsFromRotationEndToHealed: {
        ...healed,
        max: round(Math.max(...times), 1),
        all: times.map((t) => round(t, 1)).sort((a, b) => a - b),
      },
      serverSideSeconds: p50p95([...serverSide.values()]),
      method:
        'clock starts when test/cluster/rotate-sa-key.sh exits (old key dropped); a probe counts as healed at the first ' +
        '1-second poll that shows Ready=True (reason Healed, or Authenticated by a later cycle) with heals.lastTime after the rotation (serverSideSeconds: ' +
        'heals.lastTime, 1-second resolution). Ready may not go False in between: the 401, its confirmation and the ' +
        'replacement happen within one reconcile.',
      healerTokenReviews: {
        count: reviews,
        fromRotationEndToLastHealS: round(lastHealS, 1),
        perSecondOverThatWindow: round(reviews / lastHealS, 2),
        busyWindowS: round(busyS, 1),
        perSecondBusy: round(reviews / busyS, 2),
        allClientsCount: d.get('POST tokenreviews') ?? 0,
        what:
          "the operator's POST tokenreviews (counted by the proxy; allClientsCount: the apiserver's counter) from the end of the rotation to the last heal; the " +
          'healer does two per heal (confirming the rejection, confirming the new token). busyWindow: from the first ' +
          'TokenRejectionConfirmed Event to the last TokenIssued Event (1-second timestamps).',
      },
      operatorRequestsPerHealedProbe: countsObject(opReqs, times.length),
      operatorRequestsNote:
        "the operator's requests (counting proxy) from the end of the rotation until every probe was healed, divided by " +
        'the healed probes: includes the probe cycle that got the 401, the heal, and part of the confirming probe cycle',
      apiserverRequestsDuringHeal: countsObject(d),
      apiserverRestartedDuringHeal: restarted(api1, api0),
    };
    log(`heal: p50 ${healed.p50} s, p95 ${healed.p95} s over ${times.length} probes`);
  } finally {
    await op.stop();
    proxy.close();
  }
}
