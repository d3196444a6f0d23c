/**
 * 6. missing ServiceAccount (issue #15): N AuthProbes whose ServiceAccount never exists, half check Pod
 * (projected token), half check TokenReview (a token Secret that does not exist either). Their verdict
 * is a settling one (ServiceAccountNotFound), checked again on a back-off that is meant to grow to the
 * interval. The operator's own requests (counting proxy) are counted minute by minute from their
 * creation, and each probe's checks are dated from authprobe_probes_total.
 */
import { countReasons, listProbes } from '../lib/authprobes.ts';
import { createObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe } from '../lib/manifests.ts';
import { createNamespace, deleteNamespaces } from '../lib/namespaces.ts';
import { metricByLabel, metricSum, startOperator } from '../lib/operator.ts';
import { cpuSeconds, memory } from '../lib/proc.ts';
import { startProxy } from '../lib/proxy.ts';
import {
  countsObject,
  delta,
  filterCounts,
  isLease,
  isUpkeep,
  sumWhere,
  type Counts,
} from '../lib/request-counts.ts';
import { checkTimes } from '../lib/sampler.ts';
import { round, spread } from '../lib/stats.ts';
import { sleep } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

/** A probe's request: everything but the operator's upkeep (leases, informers, the key set poll). */
const isProbeRequest = (key: string): boolean => !isUpkeep(key);

export async function phaseMissing(ctx: PhaseContext): Promise<void> {
  const { sizes } = ctx;
  const n = sizes.missingProbes;
  const intervalS = sizes.missingIntervalS;
  const windowS = sizes.missingWindowS;
  const podProbes = Math.ceil(n / 2);
  const out: Record<string, unknown> = {
    probes: n,
    podChecks: podProbes,
    tokenReviewChecks: n - podProbes,
    intervalS,
    windowS,
    what:
      `AuthProbes for a ServiceAccount that never exists: ${podProbes} check Pod (projected token; the pre-check ` +
      `answers ServiceAccountNotFound, no pod), ${n - podProbes} check TokenReview (spec.token Secret that does not ` +
      `exist either), interval ${intervalS} s, created at once`,
  };
  ctx.results.missing = out;
  const ns = await createNamespace('missing');
  const proxy = await startProxy();
  const op = await startOperator({
    name: 'missing',
    image: ctx.image,
    namespace: ns,
    env: { KUBECONFIG: proxy.kubeconfigPath },
  });
  const scraper = checkTimes(op, 2000);
  try {
    // the informers' first LIST and WATCH and the first Lease are not in the window
    await sleep(3000);
    const probes = Array.from({ length: n }, (_, i) =>
      i < podProbes
        ? authProbe(ns, `pod-${i}`, {
            serviceAccountName: 'missing',
            check: 'Pod',
            interval: `${intervalS}s`,
          })
        : authProbe(ns, `tr-${i}`, {
            serviceAccountName: 'missing',
            secretName: 'missing-token',
            check: 'TokenReview',
            interval: `${intervalS}s`,
          }),
    );
    const cpu0 = cpuSeconds(op.pid);
    const t0 = Date.now();
    let prev = { counts: new Map(proxy.counts) as Counts, checks: 0, t: t0 };
    const first = prev;
    await createObjects(probes, 4);
    log(
      `missing: ${n} AuthProbes created in ${round((Date.now() - t0) / 1000, 1)} s; counting for ${windowS} s`,
    );
    const perMinute: Array<Record<string, unknown>> = [];
    out.perMinute = perMinute;
    let byKind = { pod: 0, tokenReview: 0 };
    for (let end = Math.min(60, windowS); ; end = Math.min(end + 60, windowS)) {
      await sleep(Math.max(0, t0 + end * 1000 - Date.now()));
      const counts = new Map(proxy.counts);
      const t = Date.now();
      const metrics = await op.metrics();
      const checks = metricSum(metrics, 'authprobe_probes_total');
      const perProbe = metricByLabel(metrics, 'authprobe_probes_total', 'authprobe');
      byKind = {
        pod: sumWhere(perProbe, (k) => k.startsWith('pod-')),
        tokenReview: sumWhere(perProbe, (k) => k.startsWith('tr-')),
      };
      const d = delta(counts, prev.counts);
      const sliceS = (t - prev.t) / 1000;
      const requests = sumWhere(d, isProbeRequest);
      perMinute.push({
        minute: perMinute.length + 1,
        seconds: round(sliceS, 1),
        requests,
        requestsPerProbe: round(requests / n, 2),
        checks: checks - prev.checks,
        byRequest: countsObject(filterCounts(d, isProbeRequest)),
        upkeep: countsObject(filterCounts(d, isUpkeep)),
      });
      log(
        `missing: minute ${perMinute.length}: ${requests} probe requests (${round(requests / n, 2)} per probe), ` +
          `${checks - prev.checks} checks`,
      );
      prev = { counts, checks, t };
      if (end >= windowS) break;
    }
    await scraper.stop();
    const cpu = cpuSeconds(op.pid) - cpu0;
    const all = delta(prev.counts, first.counts);
    const checks = prev.checks;
    const probeRequests = sumWhere(all, isProbeRequest);
    const requestsPerCheck = probeRequests / checks;
    const last = perMinute[perMinute.length - 1] as { seconds: number; requests: number; checks: number };
    const perHour = (count: number): number => round(((count / n) * 3600) / last.seconds, 1);
    const oneCheckPerIntervalPerHour = 3600 / intervalS;
    // Each probe's check period at the end: the gap between its last two checks, or the time since its
    // last check when that is longer (the next one is late).
    const periods: number[] = [];
    for (const times of scraper.times.values()) {
      const lastAt = times[times.length - 1] as number;
      const gap = times.length >= 2 ? lastAt - (times[times.length - 2] as number) : 0;
      periods.push(Math.max(gap, prev.t - lastAt) / 1000);
    }
    const period = spread(periods);
    Object.assign(out, {
      checks,
      checksByKind: byKind,
      probeRequests,
      requestsPerCheck: round(requestsPerCheck, 2),
      requestsPerCheckByRequest: countsObject(filterCounts(all, isProbeRequest), checks),
      upkeepPerMinute: countsObject(filterCounts(all, isUpkeep), (prev.t - first.t) / 60_000),
      leaseRequests: sumWhere(all, isLease),
      lastMinute: {
        requestsPerProbePerHour: perHour(last.requests),
        checksPerProbePerHour: perHour(last.checks),
      },
      oneCheckPerInterval: {
        checksPerProbePerHour: round(oneCheckPerIntervalPerHour, 1),
        requestsPerProbePerHour: round(requestsPerCheck * oneCheckPerIntervalPerHour, 1),
        what: 'one check per probe per interval at the requests per check measured over the whole window',
      },
      lastMinuteToOneCheckPerInterval: round(
        perHour(last.requests) / (requestsPerCheck * oneCheckPerIntervalPerHour),
        2,
      ),
      checkPeriodAtEndS: period,
      checksPerProbePerHourAtEnd: round(3600 / period.p50, 1),
      checkPeriodAtEndToInterval: round(period.p50 / intervalS, 2),
      verdicts: countReasons(await listProbes(ns), 'none'),
      operatorCpuSeconds: round(cpu, 2),
      peakRssMiB: memory(op.pid).hwmMiB,
      method:
        "the operator's own requests (counting proxy), minute by minute from the start of the creation; probe " +
        'requests are all but its upkeep (Lease requests of leader election, informer LIST/WATCH, non-resource ' +
        'requests such as the key set poll), which is listed apart. checks: authprobe_probes_total. lastMinute: the ' +
        "window's last minute, per probe, scaled to an hour; compared with one check per interval at the window's " +
        'requests per check. The settle back-off has no jitter, so probes created together are checked together ' +
        "and one minute can hold all or none of their checks: checkPeriodAtEnd is each probe's gap between its " +
        'last two checks (or the time since its last check, when longer), dated by scraping authprobe_probes_total ' +
        'every 2 s.',
    });
    log(
      `missing: last minute ${perHour(last.requests)} requests per probe-hour (one check per interval: ` +
        `${round(requestsPerCheck * oneCheckPerIntervalPerHour, 1)}); check period at the end p50 ${period.p50} s; ` +
        `${round(requestsPerCheck, 2)} requests per check`,
    );
  } finally {
    await scraper.stop();
    await op.stop();
    proxy.close();
    await deleteNamespaces([ns]);
  }
}
