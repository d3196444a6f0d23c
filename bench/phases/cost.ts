/** 2. apiserver requests per pod-probe cycle, steady state. */
import { apiserverCounts } from '../lib/apiserver.ts';
import { waitAllProbesReason } from '../lib/authprobes.ts';
import { applyObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe, serviceAccount } from '../lib/manifests.ts';
import { createNamespace } from '../lib/namespaces.ts';
import { metricSum, startOperator } from '../lib/operator.ts';
import { startProxy } from '../lib/proxy.ts';
import {
  countsObject,
  delta,
  isNonResource,
  isStoredWrite,
  restarted,
  sumWhere,
  verbOf,
  type Counts,
} from '../lib/request-counts.ts';
import { round } from '../lib/stats.ts';
import { sleep, waitFor } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

/** The apiserver's request counters, and when they were read. */
const apiserverSnapshot = async () => ({ api: await apiserverCounts(), t: Date.now() });

export async function phaseCost(ctx: PhaseContext): Promise<void> {
  const { sizes } = ctx;
  const n = sizes.costProbes;
  const ns = await createNamespace('cost');
  await applyObjects([
    serviceAccount(ns),
    ...Array.from({ length: n }, (_, i) => authProbe(ns, `p${i}`, { interval: `${sizes.costIntervalS}s` })),
  ]);
  const proxy = await startProxy();
  try {
    const op = await startOperator({
      name: 'cost',
      image: ctx.image,
      namespace: ns,
      env: { KUBECONFIG: proxy.kubeconfigPath },
    });
    await waitAllProbesReason(ns, n, 'Authenticated', 180_000);
    // steady state: every probe has been through keepPods (3) + 1 cycles, so each cycle reaps a pod
    log(`cost: ${n} projected probes authenticated; warming up to steady state`);
    await waitFor('4 cycles per probe', 300_000, async () =>
      metricSum(await op.metrics(), 'authprobe_probes_total') >= 4 * n ? true : undefined,
    );
    /** The apiserver's counters, the operator's own requests (proxy) and metrics, and when. */
    const snapshot = async () => ({
      api: await apiserverCounts(),
      proxy: new Map(proxy.counts),
      metrics: await op.metrics(),
      t: Date.now(),
    });
    const a0 = await snapshot();
    log(`cost: window with the operator (${sizes.costWindowS} s)`);
    await sleep(sizes.costWindowS * 1000);
    const a1 = await snapshot();
    await op.stop();
    const cycles =
      metricSum(a1.metrics, 'authprobe_probes_total') - metricSum(a0.metrics, 'authprobe_probes_total');
    // pods started at the end of the window still finish: let the kubelet settle before the baseline
    await sleep(15_000);
    log(`cost: baseline window without the operator (${sizes.costBaselineS} s)`);
    const b0 = await apiserverSnapshot();
    await sleep(sizes.costBaselineS * 1000);
    const b1 = await apiserverSnapshot();

    const windowS = (a1.t - a0.t) / 1000;
    const baselineS = (b1.t - b0.t) / 1000;
    const withOp = delta(a1.api, a0.api);
    const without = delta(b1.api, b0.api);
    const attributed: Counts = new Map();
    for (const key of new Set([...withOp.keys(), ...without.keys()])) {
      const v = (withOp.get(key) ?? 0) - ((without.get(key) ?? 0) * windowS) / baselineS;
      if (Math.abs(v) >= 0.5) attributed.set(key, v);
    }
    const operatorReqs = delta(a1.proxy, a0.proxy);
    const leases: Counts = new Map([...operatorReqs].filter(([k]) => k.endsWith(' leases')));
    // non-resource requests (the published signing keys, read on a timer) are not part of a cycle either
    const nonResource: Counts = new Map([...operatorReqs].filter(([k]) => isNonResource(k)));
    const perCycle: Counts = new Map(
      [...operatorReqs].filter(([k]) => !k.endsWith(' leases') && !isNonResource(k)),
    );
    const opWrites = sumWhere(perCycle, isStoredWrite) / cycles;
    const opLists = sumWhere(operatorReqs, (k) => verbOf(k) === 'LIST');
    const apiLists = sumWhere(attributed, (k) => verbOf(k) === 'LIST');
    ctx.results.cost = {
      probes: n,
      source: 'Projected',
      intervalS: sizes.costIntervalS,
      windowS: round(windowS, 1),
      baselineWindowS: round(baselineS, 1),
      completedCycles: cycles,
      cyclesSource: "operator's authprobe_probes_total delta over the window",
      operatorPerCycle: countsObject(perCycle, cycles),
      operatorWritesPerCycle: round(opWrites, 2),
      operatorListsInWindow: opLists,
      operatorLeaseRequestsPerMinute: countsObject(leases, windowS / 60),
      operatorNonResourceRequestsPerMinute: countsObject(nonResource, windowS / 60),
      apiserverAttributedPerCycle: countsObject(attributed, cycles),
      apiserverAttributedWritesPerCycle: round(sumWhere(attributed, isStoredWrite) / cycles, 2),
      apiserverAttributedListsInWindow: round(apiLists, 1),
      apiserverWithOperatorRaw: countsObject(withOp),
      apiserverBaselineRaw: countsObject(without),
      apiserverRestartedDuringWindows: restarted(a1.api, a0.api) || restarted(b1.api, b0.api),
      method:
        'apiserver: apiserver_request_total (no client label exists) delta over a window with the operator running, ' +
        'minus the delta over a following window without it (scaled to the same length), divided by completed cycles; ' +
        'this counts every client the cycle causes (operator, scheduler, kubelet, the probe pod itself) and any ' +
        "concurrent traffic of other clients as noise. operator: the operator's own requests, counted exactly by a " +
        'TLS-terminating counting proxy on 127.0.0.1 that forwards to the apiserver (this phase only).',
    };
    log(
      `cost: ${cycles} cycles; operator writes/cycle ${round(opWrites, 2)}, operator LISTs ${opLists}, ` +
        `attributed apiserver LISTs ${round(apiLists, 1)}`,
    );
  } finally {
    proxy.close();
  }
}
