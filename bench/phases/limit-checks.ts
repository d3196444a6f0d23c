/**
 * The operator's own controller-side checks (spec.check TokenReview) against the same apiserver:
 * N AuthProbes on one valid token secret, created before the operator starts (interval 24h),
 * with the work-queue concurrency equal to the raw loop's. Two rounds, each with a fresh operator:
 * "first" checks every probe once (its first verdict also writes an Event); then, with the operator
 * stopped, every probe gets a new authprobe.io/probe-now value, and "steady" checks every probe again
 * (an unchanged verdict: no Event), which is what every later check costs. A second, smaller run goes
 * through the counting proxy for the requests per check of each round.
 */
import { countReasons, listProbes } from '../lib/authprobes.ts';
import { createObjects, kubectl } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe } from '../lib/manifests.ts';
import { metricSum, startOperator } from '../lib/operator.ts';
import { controlPlaneCpu, controlPlaneCpuSince, cpuSeconds, memory } from '../lib/proc.ts';
import { startProxy, type Proxy } from '../lib/proxy.ts';
import { countsObject, delta, isStoredWrite, isUpkeep, sumWhere } from '../lib/request-counts.ts';
import { round } from '../lib/stats.ts';
import { createTokenNamespace } from '../lib/tokens.ts';
import { waitFor } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

/** One round: a fresh operator checks every probe in `ns` once; `proxy` counts its requests. */
async function checkRound(
  ctx: PhaseContext,
  ns: string,
  count: number,
  label: string,
  proxy: Proxy | undefined,
): Promise<Record<string, unknown>> {
  const before = proxy ? new Map(proxy.counts) : undefined;
  const op = await startOperator({
    name: `checks-${label}${proxy ? '-counted' : ''}`,
    image: ctx.image,
    namespace: ns,
    env: {
      AUTHPROBE_LEADER_ELECTION: 'false',
      AUTHPROBE_CONCURRENCY: String(ctx.sizes.limitConcurrency),
      ...(proxy ? { KUBECONFIG: proxy.kubeconfigPath } : {}),
    },
  });
  const cpu0 = cpuSeconds(op.pid);
  const cp0 = controlPlaneCpu();
  // The rate is taken between the first poll that sees a finished check and the poll that sees
  // the last one, so the operator's start-up (Node, the informers' LIST) is not in it.
  let t0 = 0;
  let n0 = 0;
  await waitFor(
    `${count} TokenReview checks (${label})`,
    300_000,
    async () => {
      const done = metricSum(await op.metrics(), 'authprobe_probes_total');
      if (done > 0 && t0 === 0) {
        t0 = Date.now();
        n0 = done;
      }
      return done >= count ? true : undefined;
    },
    50,
  );
  const seconds = Math.max(0.001, (Date.now() - t0) / 1000);
  const cpu = cpuSeconds(op.pid) - cpu0;
  const cp = controlPlaneCpuSince(cp0);
  const out: Record<string, unknown> = {
    probes: count,
    seconds: round(seconds, 2),
    checksInWindow: count - n0,
    perSecond: round((count - n0) / seconds, 1),
    operatorCpuSeconds: round(cpu, 2),
    peakRssMiB: memory(op.pid).hwmMiB,
    // Start-up (the informers' LIST) and all checks, over all checks: an upper bound per check.
    ...(cp !== undefined
      ? { controlPlaneCpuSeconds: round(cp, 2), controlPlaneCpuMsPerCheck: round((cp * 1000) / count, 3) }
      : {}),
  };
  await op.stop();
  out.verdicts = countReasons(await listProbes(ns), 'none');
  if (proxy && before) {
    const counts = delta(proxy.counts, before);
    // The informers' start-up LIST and WATCH and the operator's non-resource reads (the published
    // signing keys) are not part of a check.
    for (const key of [...counts.keys()]) if (isUpkeep(key)) counts.delete(key);
    out.requestsPerCheck = countsObject(counts, count);
    out.writesPerCheck = round(sumWhere(counts, isStoredWrite) / count, 3);
  }
  log(
    `limit: ${label} checks: ${count - n0} of ${count} in ${round(seconds, 1)} s = ${out.perSecond}/s` +
      `${proxy ? ' (through the counting proxy)' : ''}`,
  );
  return out;
}

/** `count` probes in a new namespace, checked in a first and a steady round. */
async function checkRun(
  ctx: PhaseContext,
  count: number,
  viaProxy: boolean,
): Promise<{ first: Record<string, unknown>; steady: Record<string, unknown> }> {
  const ns = await createTokenNamespace(viaProxy ? 'limit-counted' : 'limit-ops', ['app-token']);
  await createObjects(
    Array.from({ length: count }, (_, i) =>
      authProbe(ns, `c${i}`, { secretName: 'app-token', check: 'TokenReview', interval: '24h' }),
    ),
    4,
  );
  const proxy = viaProxy ? await startProxy() : undefined;
  try {
    const first = await checkRound(ctx, ns, count, 'first', proxy);
    await kubectl([
      'annotate',
      '--overwrite',
      'authprobes',
      '--all',
      '-n',
      ns,
      `authprobe.io/probe-now=${Date.now()}`,
    ]);
    const steady = await checkRound(ctx, ns, count, 'steady', proxy);
    return { first, steady };
  } finally {
    proxy?.close();
  }
}

export async function operatorCheckThroughput(ctx: PhaseContext): Promise<Record<string, unknown>> {
  const { sizes } = ctx;
  const direct = await checkRun(ctx, sizes.limitProbes, false);
  const counted = await checkRun(ctx, sizes.limitCountedProbes, true);
  return {
    what:
      'AuthProbes with spec.check TokenReview on one valid legacy token secret (interval 24h), work-queue ' +
      `concurrency ${sizes.limitConcurrency}, a fresh operator per round. first: every probe's first check ` +
      '(GET secret, POST tokenreviews, PATCH status, and POST events for the first verdict); steady: every ' +
      'probe checked again after a new authprobe.io/probe-now value was set while the operator was stopped ' +
      '(an unchanged verdict writes no Event). Rates from the first finished check to the last, the ' +
      "operator's authprobe_probes_total polled every 50 ms",
    concurrency: sizes.limitConcurrency,
    direct,
    counted,
  };
}
