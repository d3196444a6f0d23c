/**
 * 7. status writes (issue #12): N TokenReview-checked AuthProbes on one valid token secret, a short
 * interval; once every one has a verdict, a window in which the operator's status writes (PATCH/PUT
 * .../authprobes/<name>/status, counted by the proxy) are counted against its checks.
 */
import { countReasons, hasVerdict, listProbes, requireAuthenticated } from '../lib/authprobes.ts';
import { createObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe } from '../lib/manifests.ts';
import { deleteNamespaces } from '../lib/namespaces.ts';
import { metricSum, startOperator } from '../lib/operator.ts';
import { startProxy } from '../lib/proxy.ts';
import {
  authProbeOfPath,
  countsObject,
  delta,
  filterCounts,
  isStatusWrite,
  isUpkeep,
  sumWhere,
} from '../lib/request-counts.ts';
import { round, spread } from '../lib/stats.ts';
import { createTokenNamespace } from '../lib/tokens.ts';
import { sleep, waitFor } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

export async function phaseWrites(ctx: PhaseContext): Promise<void> {
  const { sizes } = ctx;
  const n = sizes.writesProbes;
  const intervalS = sizes.writesIntervalS;
  const ns = await createTokenNamespace('writes', ['app-token']);
  await createObjects(
    Array.from({ length: n }, (_, i) =>
      authProbe(ns, `w${i}`, {
        secretName: 'app-token',
        check: 'TokenReview',
        interval: `${intervalS}s`,
        // the timeout must be shorter than the interval
        timeout: '5s',
      }),
    ),
    4,
  );
  // every status write is also kept with its time and AuthProbe
  const proxy = await startProxy({ record: isStatusWrite });
  const op = await startOperator({
    name: 'writes',
    image: ctx.image,
    namespace: ns,
    env: { KUBECONFIG: proxy.kubeconfigPath },
  });
  try {
    const verdicts = await waitFor(
      `${n} AuthProbes to have a verdict`,
      300_000,
      async () => {
        const items = await listProbes(ns);
        return items.length >= n && items.every(hasVerdict) ? countReasons(items, 'none') : undefined;
      },
      1000,
    );
    requireAuthenticated('writes', verdicts);
    log(
      `writes: ${n} AuthProbes have a verdict (${JSON.stringify(verdicts)}); counting for ${sizes.writesWindowS} s`,
    );
    const snapshot = async () => ({
      counts: new Map(proxy.counts),
      checks: metricSum(await op.metrics(), 'authprobe_probes_total'),
      t: Date.now(),
    });
    const a0 = await snapshot();
    await sleep(sizes.writesWindowS * 1000);
    const a1 = await snapshot();
    const windowS = (a1.t - a0.t) / 1000;
    const d = delta(a1.counts, a0.counts);
    const checks = a1.checks - a0.checks;
    const statusWrites = sumWhere(d, isStatusWrite);
    const perHour = (count: number): number => round(((count / n) * 3600) / windowS, 1);
    // Per AuthProbe: its status writes in the window, and the gaps between its writes from its last
    // write before the window to the window's end (the last gap is open: no write since).
    const writesAt = new Map<string, number[]>();
    for (const r of proxy.recorded) {
      const name = authProbeOfPath(r.path);
      if (!name) continue;
      const times = writesAt.get(name) ?? [];
      times.push(r.t);
      writesAt.set(name, times);
    }
    const inWindow: Record<string, number> = {};
    const gaps: number[] = [];
    const openGaps: number[] = [];
    for (let i = 0; i < n; i++) {
      const times = writesAt.get(`w${i}`) ?? [];
      const count = times.filter((t) => t >= a0.t && t < a1.t).length;
      inWindow[String(count)] = (inWindow[String(count)] ?? 0) + 1;
      const from = Math.max(0, times.filter((t) => t < a0.t).length - 1);
      const span = times.filter((t) => t < a1.t).slice(from);
      for (let j = 1; j < span.length; j++) gaps.push(((span[j] as number) - (span[j - 1] as number)) / 1000);
      if (span.length) openGaps.push((a1.t - (span[span.length - 1] as number)) / 1000);
    }
    const probeRequests = filterCounts(d, (k) => !isUpkeep(k));
    ctx.results.writes = {
      probes: n,
      source: 'Secret (one valid legacy token secret)',
      check: 'TokenReview',
      intervalS,
      windowS: round(windowS, 1),
      verdictsBeforeWindow: verdicts,
      statusWrites,
      statusWritesPerProbePerHour: perHour(statusWrites),
      checks,
      checksPerProbePerHour: perHour(checks),
      statusWritesPerCheck: round(statusWrites / checks, 3),
      probesByStatusWritesInWindow: inWindow,
      statusWriteGapsS: spread(gaps),
      sinceLastStatusWriteAtEndS: spread(openGaps),
      requestsPerCheck: countsObject(probeRequests, checks),
      upkeepInWindow: countsObject(filterCounts(d, isUpkeep)),
      method:
        "status writes: the operator's PATCH/PUT of .../authprobes/<name>/status counted by the proxy over the " +
        'window, which starts once every AuthProbe has a verdict (its first verdict and the Ready=Unknown before ' +
        'it are not in it); checks: authprobe_probes_total. Per AuthProbe per hour = count / probes x 3600 / ' +
        'window. A status heartbeat longer than the window shows as 0 or 1 write per AuthProbe in it: ' +
        'statusWriteGapsS (gaps between consecutive writes of one AuthProbe, from its last write before the ' +
        "window) and sinceLastStatusWriteAtEndS (the open gap at the window's end) bound the period.",
    };
    log(
      `writes: ${statusWrites} status writes, ${checks} checks in ${round(windowS, 1)} s = ` +
        `${perHour(statusWrites)} status writes and ${perHour(checks)} checks per AuthProbe per hour`,
    );
  } finally {
    await op.stop();
    proxy.close();
    await deleteNamespaces([ns]);
  }
}
