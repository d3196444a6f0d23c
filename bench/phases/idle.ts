/**
 * 8. idle (issue #12): N TokenReview-checked AuthProbes (interval 1h) on valid token secrets; once every
 * one has its first verdict and a short wait, nothing is due for most of an hour: the operator's
 * requests (counting proxy) over a window are what it costs while idle.
 */
import { countReasons, listProbes, requireAuthenticated } from '../lib/authprobes.ts';
import { createObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe } from '../lib/manifests.ts';
import { deleteNamespaces } from '../lib/namespaces.ts';
import { metricSum, startOperator } from '../lib/operator.ts';
import { cpuSeconds, memory } from '../lib/proc.ts';
import { startProxy } from '../lib/proxy.ts';
import { countsObject, delta, isStatusWrite, isUpkeep, sumWhere } from '../lib/request-counts.ts';
import { round } from '../lib/stats.ts';
import { createTokenNamespace } from '../lib/tokens.ts';
import { sleep, waitFor } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

export async function phaseIdle(ctx: PhaseContext): Promise<void> {
  const { sizes } = ctx;
  const n = sizes.idleProbes;
  const secrets = Array.from({ length: sizes.idleSecrets }, (_, i) => `tok-${i}`);
  const ns = await createTokenNamespace('idle', secrets);
  const c0 = Date.now();
  await createObjects(
    Array.from({ length: n }, (_, i) =>
      authProbe(ns, `i${i}`, {
        secretName: secrets[i % secrets.length] as string,
        check: 'TokenReview',
        interval: '1h',
      }),
    ),
    4,
  );
  log(`idle: ${n} AuthProbes created in ${round((Date.now() - c0) / 1000, 1)} s`);
  const proxy = await startProxy();
  const op = await startOperator({
    name: 'idle',
    image: ctx.image,
    namespace: ns,
    env: { KUBECONFIG: proxy.kubeconfigPath },
  });
  try {
    const t0 = Date.now();
    // a first verdict: status.lastProbe is written with it
    const verdicts = await waitFor(
      `${n} AuthProbes to have a first verdict`,
      900_000,
      async () => {
        const items = await listProbes(ns);
        return items.length >= n && items.every((p) => p.status?.lastProbe?.time)
          ? countReasons(items, 'none')
          : undefined;
      },
      2000,
    );
    const verdictS = (Date.now() - t0) / 1000;
    requireAuthenticated('idle', verdicts);
    log(
      `idle: every first verdict after ${round(verdictS, 1)} s (${JSON.stringify(verdicts)}); waiting ${sizes.idleWaitS} s`,
    );
    await sleep(sizes.idleWaitS * 1000);
    const snapshot = async () => ({
      counts: new Map(proxy.counts),
      checks: metricSum(await op.metrics(), 'authprobe_probes_total'),
      cpu: cpuSeconds(op.pid),
      t: Date.now(),
    });
    const a0 = await snapshot();
    await sleep(sizes.idleWindowS * 1000);
    const a1 = await snapshot();
    const windowS = (a1.t - a0.t) / 1000;
    const d = delta(a1.counts, a0.counts);
    const total = sumWhere(d, () => true);
    ctx.results.idle = {
      probes: n,
      source: `Secret (${secrets.length} valid legacy token secrets)`,
      check: 'TokenReview',
      interval: '1h',
      secondsToEveryFirstVerdict: round(verdictS, 1),
      verdicts,
      waitS: sizes.idleWaitS,
      windowS: round(windowS, 1),
      requests: total,
      requestsPerSecond: round(total / windowS, 3),
      requestsPerSecondByRequest: countsObject(d, windowS),
      upkeepPerSecond: round(sumWhere(d, isUpkeep) / windowS, 3),
      otherPerSecond: round(sumWhere(d, (k) => !isUpkeep(k)) / windowS, 3),
      checksInWindow: a1.checks - a0.checks,
      statusWritesInWindow: sumWhere(d, isStatusWrite),
      operatorCpuSecondsInWindow: round(a1.cpu - a0.cpu, 2),
      rssMiBAtEnd: memory(op.pid).rssMiB,
      peakRssMiB: memory(op.pid).hwmMiB,
      method:
        "the operator's own requests (counting proxy) over the window, which starts " +
        `${sizes.idleWaitS} s after every AuthProbe had its first verdict (status.lastProbe), by verb and resource ` +
        '(non-resource requests by path); upkeep = leader election, informer LIST/WATCH and non-resource ' +
        'requests. checksInWindow: authprobe_probes_total, expected 0 with interval 1h.',
    };
    log(
      `idle: ${total} operator requests in ${round(windowS, 1)} s = ${round(total / windowS, 3)}/s ` +
        `(${a1.checks - a0.checks} checks): ${JSON.stringify(countsObject(d))}`,
    );
  } finally {
    await op.stop();
    proxy.close();
    await deleteNamespaces([ns]);
  }
}
