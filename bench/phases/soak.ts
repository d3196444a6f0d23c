/**
 * 9. soak (issue #14): one operator while N AuthProbes are created and deleted in cycles for a fixed
 * time. Each cycle creates N AuthProbes with names of their own (half check TokenReview on a valid
 * legacy token secret made for the cycle: Authenticated; half for a ServiceAccount that does not exist:
 * ServiceAccountNotFound, no pod; interval 1h, so each is checked when it is created), waits until every
 * one has a verdict, deletes them all with one DELETE of the collection, and waits until the operator
 * has let them go (no AuthProbe left, work queue empty, no per-AuthProbe metric series).
 * The operator's RSS and metric series are taken three times, idle: cold (before any AuthProbe), warm
 * (after a first, warm-up cycle: the heap has grown to its working size and the label sets made on
 * first use exist) and at the end (after the last cycle).
 */
import { apiRequest } from '../lib/apiserver.ts';
import { collectGarbage } from '../lib/inspector.ts';
import { countReasons, deleteAllProbes, hasVerdict, listProbes } from '../lib/authprobes.ts';
import { createObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe } from '../lib/manifests.ts';
import { deleteNamespaces } from '../lib/namespaces.ts';
import {
  chartNodeOptions,
  countSeries,
  metricSum,
  startOperator,
  type SeriesCount,
} from '../lib/operator.ts';
import { cpuSeconds, memory, rssKinds, rssMedian } from '../lib/proc.ts';
import { sampler } from '../lib/sampler.ts';
import { round, slope, spread } from '../lib/stats.ts';
import { createLegacyTokenSecrets, createTokenNamespace } from '../lib/tokens.ts';
import { sleep, waitFor } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

const MiB = 1024 * 1024;
type Totals = Omit<SeriesCount, 'byName'>;
/** The counts of a SeriesCount, without the per-name breakdown. */
const totals = ({ all, authprobe, perAuthProbe }: SeriesCount): Totals => ({ all, authprobe, perAuthProbe });

/** The names whose number of series differs between two counts: name -> [before, after]. */
function changedNames(a: SeriesCount, b: SeriesCount): Record<string, [number, number]> {
  const changed: Record<string, [number, number]> = {};
  for (const name of new Set([...Object.keys(a.byName), ...Object.keys(b.byName)])) {
    const [x, y] = [a.byName[name] ?? 0, b.byName[name] ?? 0];
    if (x !== y) changed[name] = [x, y];
  }
  return changed;
}

interface Cycle {
  /** 0: the warm-up cycle. */
  cycle: number;
  createS: number;
  verdictS: number;
  verdicts: Record<string, number>;
  seriesWithProbes: Totals;
  rssMiBWithProbes: number;
  deleteS: number;
  drainS: number;
  drained: boolean;
  seriesAfter: Totals;
  rssMiBAfter: number;
  hwmMiB: number;
  maxRssMiB: number;
  maxQueueDepth: number;
  cpuSeconds: number;
  seconds: number;
}

export async function phaseSoak(ctx: PhaseContext): Promise<void> {
  const { sizes } = ctx;
  const n = sizes.soakProbes;
  const reviewed = Math.ceil(n / 2);
  const cycles: Cycle[] = [];
  const failedCycles: Array<{ cycle: number; atS: number; error: string }> = [];
  const out: Record<string, unknown> = {
    probesPerCycle: n,
    what:
      `${reviewed} AuthProbes with check TokenReview on a valid legacy token secret (a new one every cycle) and ${n - reviewed} for a ` +
      'ServiceAccount that does not exist (ServiceAccountNotFound, no pod), interval 1h, new names every cycle',
    soakS: sizes.soakSeconds,
    settleS: sizes.soakSettleS,
    nodeOptions: chartNodeOptions().join(' '),
    cycles,
    failedCycles,
  };
  ctx.results.soak = out;
  const ns = await createTokenNamespace('soak', []);
  const op = await startOperator({ name: 'soak', image: ctx.image, namespace: ns, inspect: true });
  const t0 = Date.now();
  const samples = sampler(op, t0);
  // A cycle's waits give up as soon as the operator exits (e.g. out of memory), not at their timeouts.
  const exited = new Promise<never>((_, reject) =>
    op.child.once('exit', (code, signal) =>
      reject(new Error(`the operator exited (code ${code}, signal ${signal}); see ${op.logFile}`)),
    ),
  );
  exited.catch(() => undefined);
  const guard = <T>(work: Promise<T>): Promise<T> => Promise.race([work, exited]);
  /** V8's heap and the memory outside it (buffers, TLS), from the operator's own nodejs_* metrics. */
  const heapOf = (text: string) => ({
    heapUsedMiB: round(metricSum(text, 'nodejs_heap_size_used_bytes') / MiB, 1),
    heapTotalMiB: round(metricSum(text, 'nodejs_heap_size_total_bytes') / MiB, 1),
    externalMiB: round(metricSum(text, 'nodejs_external_memory_bytes') / MiB, 1),
  });
  /**
   * Once the operator is idle: RSS (median of 20 one-per-second samples), its heap and the metric
   * series as it runs; then the same after a full garbage collection forced through its inspector, which
   * tells memory it still holds from memory its garbage collector has not given back yet.
   */
  const idle = async (label: string) => {
    const rss = await guard(rssMedian(op.pid));
    const kinds = rssKinds(op.pid);
    const text = await op.metrics();
    const series = countSeries(text);
    const heap = heapOf(text);
    await collectGarbage(op.inspectorPort as number);
    const gcRss = await guard(rssMedian(op.pid, 10));
    const afterGc = { medianRssMiB: gcRss.medianRssMiB, ...heapOf(await op.metrics()) };
    log(
      `soak ${label}: median RSS ${rss.medianRssMiB} MiB (anonymous ${kinds.anonMiB}, file ${kinds.fileMiB}; heap used ${heap.heapUsedMiB} of ${heap.heapTotalMiB}, ` +
        `external ${heap.externalMiB}), VmHWM ${rss.hwmMiB} MiB; after a forced GC: RSS ` +
        `${afterGc.medianRssMiB} MiB (heap used ${afterGc.heapUsedMiB} of ${afterGc.heapTotalMiB}, external ` +
        `${afterGc.externalMiB}); series ${series.all} (authprobe_* ${series.authprobe}, per AuthProbe ` +
        `${series.perAuthProbe})`,
    );
    return { ...rss, ...kinds, ...heap, series, afterGc };
  };
  let perAuthProbeIdle = 0;
  /** Deletes every AuthProbe and waits until the operator has let them go: none left, queue empty, no series. */
  const letGo = async (c: number) => {
    const d0 = Date.now();
    await deleteAllProbes(ns);
    const deleteS = (Date.now() - d0) / 1000;
    let after: SeriesCount | undefined;
    const drained = await guard(
      waitFor(
        `cycle ${c}: the operator to let the deleted AuthProbes go`,
        sizes.soakDrainTimeoutS * 1000,
        async () => {
          const [items, text] = await Promise.all([listProbes(ns), op.metrics()]);
          after = countSeries(text);
          return items.length === 0 &&
            metricSum(text, 'authprobe_workqueue_depth') === 0 &&
            after.perAuthProbe === perAuthProbeIdle
            ? true
            : undefined;
        },
        500,
      ),
    ).catch((err: unknown) => {
      if (op.child.exitCode !== null || op.child.signalCode !== null) throw err;
      log(`soak: ${String(err)}`);
      return false;
    });
    return { deleteS, drainS: (Date.now() - d0) / 1000, drained, after };
  };
  /** One cycle: create N AuthProbes, wait for every verdict, delete them all, wait until they are let go. */
  const runCycle = async (c: number): Promise<Cycle> => {
    // A token secret of its own: a signing-key rotation by another suite spoils one cycle, not the rest.
    const secret = `tok-c${c}`;
    await guard(createLegacyTokenSecrets(ns, 'app', [secret]));
    const cpu0 = cpuSeconds(op.pid);
    const c0 = Date.now();
    await guard(
      createObjects(
        Array.from({ length: n }, (_, i) =>
          i < reviewed
            ? authProbe(ns, `c${c}-r${i}`, { secretName: secret, check: 'TokenReview', interval: '1h' })
            : authProbe(ns, `c${c}-m${i}`, { serviceAccountName: 'missing', interval: '1h' }),
        ),
        4,
      ),
    );
    const createS = (Date.now() - c0) / 1000;
    const verdicts = await guard(
      waitFor(
        `cycle ${c}: ${n} AuthProbes to have a verdict`,
        600_000,
        async () => {
          const items = await listProbes(ns);
          return items.length >= n && items.every(hasVerdict) ? countReasons(items, 'none') : undefined;
        },
        1000,
      ),
    );
    const verdictS = (Date.now() - c0) / 1000;
    const loaded = countSeries(await op.metrics());
    const rssLoaded = memory(op.pid).rssMiB;
    const gone = await letGo(c);
    const after = gone.after ?? loaded;
    const from = (c0 - t0) / 1000;
    const during = samples.samples.filter((x) => x.t >= from);
    const mem = memory(op.pid);
    const cycle: Cycle = {
      cycle: c,
      createS: round(createS, 1),
      verdictS: round(verdictS, 1),
      verdicts,
      seriesWithProbes: totals(loaded),
      rssMiBWithProbes: rssLoaded,
      deleteS: round(gone.deleteS, 1),
      drainS: round(gone.drainS, 1),
      drained: gone.drained,
      seriesAfter: totals(after),
      rssMiBAfter: mem.rssMiB,
      hwmMiB: mem.hwmMiB,
      maxRssMiB: Math.max(0, ...during.map((x) => x.rssMiB)),
      maxQueueDepth: Math.max(0, ...during.map((x) => x.queueDepth)),
      cpuSeconds: round(cpuSeconds(op.pid) - cpu0, 2),
      seconds: round((Date.now() - c0) / 1000, 1),
    };
    log(
      `soak cycle ${c}: created ${round(createS, 1)} s, every verdict ${round(verdictS, 1)} s ` +
        `(${JSON.stringify(verdicts)}), drained ${round(gone.drainS, 1)} s${gone.drained ? '' : ' (NOT drained)'}; ` +
        `RSS ${rssLoaded} -> ${mem.rssMiB} MiB, series ${loaded.all} -> ${after.all} ` +
        `(per AuthProbe ${loaded.perAuthProbe} -> ${after.perAuthProbe})`,
    );
    return cycle;
  };
  /**
   * A cycle the cluster failed (the apiserver or etcd away: other suites stop them on the shared test
   * cluster) is recorded, and the soak goes on once the apiserver is back and the AuthProbes are gone.
   */
  const recover = async (c: number, err: unknown): Promise<void> => {
    if (op.child.exitCode !== null || op.child.signalCode !== null) throw err;
    // the first line of the message: kubectl repeats it for every object of the List
    const error = (err instanceof Error ? err.message : String(err)).split('\n')[0]?.slice(0, 300) ?? '';
    failedCycles.push({ cycle: c, atS: round((Date.now() - t0) / 1000, 1), error });
    log(`soak cycle ${c} failed (${error}); waiting for the apiserver, then deleting its AuthProbes`);
    await guard(
      waitFor(
        'the apiserver to be ready and the AuthProbes deleted',
        900_000,
        async () => ((await apiRequest('GET', '/readyz')).status === 200 ? await letGo(c) : undefined),
        5000,
      ),
    );
  };
  /** What the soak measured so far; `end` only once it ran to its end. */
  const summarise = (soakS: number, end?: Awaited<ReturnType<typeof idle>>): void => {
    const soaked = cycles.filter((x) => x.cycle > 0);
    const num = (key: 'seconds' | 'verdictS' | 'drainS'): number[] => soaked.map((x) => x[key]);
    const cold = out.cold as Awaited<ReturnType<typeof idle>> | undefined;
    const warm = out.warm as Awaited<ReturnType<typeof idle>> | undefined;
    const growth = (from?: number) =>
      end && from
        ? { MiB: round(end.medianRssMiB - from, 1), percent: round((end.medianRssMiB / from - 1) * 100, 1) }
        : undefined;
    const last = cycles[cycles.length - 1];
    Object.assign(out, {
      cyclesCompleted: soaked.length,
      cyclesFailed: failedCycles.length,
      authProbesCreatedAndDeleted: soaked.length * n,
      soakSecondsActual: round(soakS, 1),
      cycleSeconds: spread(num('seconds')),
      verdictSeconds: spread(num('verdictS')),
      drainSeconds: spread(num('drainS')),
      cyclesNotDrained: cycles.filter((x) => !x.drained).length,
      ...(end ? { end } : {}),
      rssMiB: {
        cold: cold?.medianRssMiB,
        warm: warm?.medianRssMiB,
        end: end?.medianRssMiB,
        afterLastCycle: last?.rssMiBAfter,
        growthFromWarm: growth(warm?.medianRssMiB),
        growthFromCold: growth(cold?.medianRssMiB),
        peakHwm: end?.hwmMiB ?? last?.hwmMiB,
        maxSampled: Math.max(0, ...samples.samples.map((x) => x.rssMiB)),
        // RSS right after each drain, by cycle: a leak climbs, a warm heap does not
        afterDrainSlopePerCycle: round(slope(soaked.map((x) => [x.cycle, x.rssMiBAfter])), 3),
      },
      // what the operator still holds: V8's heap in use right after a forced full GC
      heapUsedAfterGcMiB: {
        cold: cold?.afterGc.heapUsedMiB,
        warm: warm?.afterGc.heapUsedMiB,
        end: end?.afterGc.heapUsedMiB,
      },
      series: {
        cold: cold && totals(cold.series),
        warm: warm && totals(warm.series),
        end: end && totals(end.series),
        withProbesMax: Math.max(0, ...cycles.map((x) => x.seriesWithProbes.all)),
        changedColdToWarm: cold && warm && changedNames(cold.series, warm.series),
        changedWarmToEnd: warm && end && changedNames(warm.series, end.series),
      },
      rssMiBOverTime: samples.samples.filter((_, i) => i % 10 === 0).map((x) => [x.t, x.rssMiB]),
      method:
        `a fresh operator (node ${chartNodeOptions().join(' ')}: the chart's operator.nodeOptions) watching only the soak namespace. ` +
        'Idle measurements: cold 15 s after it served /healthz, ' +
        `no AuthProbe yet; warm ${sizes.soakSettleS} s after the warm-up cycle (cycle 0) drained; end ` +
        `${sizes.soakSettleS} s after the last cycle drained (V8 gives its emptied pages back once the process is ` +
        'idle: its memory reducer, about 100 s after its last full GC). RSS: median of 20 VmRSS samples, one ' +
        'per second, as it runs; then a full GC forced through its inspector (HeapProfiler.collectGarbage) and ' +
        'V8 heap in use (nodejs_heap_size_used_bytes) and RSS (median of 10) after it; peak: VmHWM. ' +
        'Series: the sample lines of /metrics (not # HELP / # TYPE); per AuthProbe: ' +
        `those with an authprobe label. Cycles 1.. are started for ${sizes.soakSeconds} s after the warm ` +
        'measurement. A cycle: 4 parallel kubectl create, every AuthProbe with a verdict (one LIST a second), ' +
        'one DELETE of the AuthProbe collection, then drained = no AuthProbe left, authprobe_workqueue_depth 0 ' +
        'and no per-AuthProbe series (polled every 0.5 s). A cycle the cluster fails (apiserver or etcd away) ' +
        'is listed in failedCycles; its AuthProbes are deleted once the apiserver is back, and the soak goes on.',
    });
  };
  let soakStart = Date.now();
  try {
    // leader election, the informers' first LIST: then nothing to do
    await sleep(15_000);
    const cold = await idle('cold, no AuthProbe yet');
    out.cold = cold;
    perAuthProbeIdle = cold.series.perAuthProbe;
    cycles.push(await runCycle(0));
    await sleep(sizes.soakSettleS * 1000);
    out.warm = await idle('warm, after the warm-up cycle');
    soakStart = Date.now();
    for (let c = 1; c === 1 || Date.now() - soakStart < sizes.soakSeconds * 1000; c++) {
      try {
        cycles.push(await runCycle(c));
      } catch (err) {
        await recover(c, err);
      }
    }
    const soakS = (Date.now() - soakStart) / 1000;
    log(`soak: ${cycles.length - 1} cycles in ${round(soakS, 1)} s; settling ${sizes.soakSettleS} s`);
    await sleep(sizes.soakSettleS * 1000);
    const end = await idle('end');
    out.operatorCpuSeconds = round(cpuSeconds(op.pid), 1);
    await samples.stop();
    summarise(soakS, end);
    log(
      `soak: RSS cold ${cold.medianRssMiB}, warm ${(out.warm as typeof end).medianRssMiB}, end ` +
        `${end.medianRssMiB} MiB (peak ${end.hwmMiB}); series cold ${cold.series.all}, warm ` +
        `${(out.warm as typeof end).series.all}, end ${end.series.all} (per AuthProbe ${end.series.perAuthProbe})`,
    );
  } catch (err) {
    out.stoppedBy = err instanceof Error ? err.message : String(err);
    await samples.stop();
    summarise((Date.now() - soakStart) / 1000);
    throw err;
  } finally {
    await samples.stop();
    await op.stop();
    await deleteNamespaces([ns]);
  }
}
