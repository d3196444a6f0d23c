/** The issue's targets, judged from the results: met, missed, or not measured (and why). */
import os from 'node:os';
import { isStoredWrite } from '../lib/request-counts.ts';
import { round } from '../lib/stats.ts';
import type { Errors, Results } from './document.ts';

export interface Target {
  target: string;
  value: string;
  met: boolean | null;
  why: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export function judge(results: Results, errors: Errors, mode: string): Target[] {
  const r = results as Record<string, any>;
  const targets: Target[] = [];
  /** A target whose phase did not run or failed. */
  const notMeasured = (target: string, phase: string): Target => ({
    target,
    value: 'not measured',
    met: null,
    why: errors[phase] ?? 'phase not run',
  });
  if (r.heal) {
    const h = r.heal;
    const t = h.secondsFromRotationEndToHealed;
    const waited = h.waitS as number | undefined;
    /** A figure in seconds; null: more than the wait (a probe not healed in it). */
    const secs = (v: number | null): string => (v === null ? `> ${waited} s` : `${v} s`);
    const unhealed = (h.notHealed as number | undefined) ?? 0;
    const why = (met: boolean): string =>
      met
        ? h.intervalS > 60
          ? 'the key that signed the old tokens left the published key set and the operator checked every probe ' +
            'whose token carries it at once; the check, the confirming TokenReview and the replacement take seconds'
          : `a broken probe is noticed at its next scheduled check (interval ${h.intervalS} s), then the ` +
            'confirmation and the replacement take seconds'
        : unhealed
          ? `${unhealed} of ${h.probes} probes were not healed ${waited} s after the rotation: with interval ` +
            `${h.intervalS} s a probe is checked again at its interval unless a lost signing key makes the ` +
            'operator check it at once; see byCheck and notHealedVerdicts'
          : 'every probe healed, but slowly: see byCheck and the per-probe times (the probe pods, the ' +
            'confirming TokenReview, the replacement and waiting for the tokens controller)';
    for (const [label, value, limit] of [
      ['p95', t.p95, 30],
      ['max', t.max, 60],
    ] as Array<[string, number | null, number]>) {
      const met = value !== null && value <= limit;
      targets.push({
        target: `heal ${label} <= ${limit} s after the key rotation (interval ${h.intervalS} s)`,
        value: `${secs(value)} over ${h.probes} probes (${h.runs} healed)`,
        met,
        why: why(met),
      });
    }
  } else targets.push(notMeasured('heal p95 <= 30 s, max <= 60 s after the key rotation', 'heal'));
  if (r.cost) {
    const w = r.cost.operatorWritesPerCycle as number;
    targets.push({
      target: '<= 4 write requests per pod-probe cycle (operator)',
      value: `${w} over ${r.cost.completedCycles} cycles`,
      met: w <= 4,
      why:
        w <= 4
          ? `measured per cycle: ${Object.entries(r.cost.operatorPerCycle as Record<string, number>)
              .filter(([k]) => isStoredWrite(k))
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}; Events are written only when the verdict changes`
          : `per-cycle writes: ${JSON.stringify(Object.fromEntries(Object.entries(r.cost.operatorPerCycle).filter(([k]) => isStoredWrite(k))))}`,
    });
    const lists = r.cost.operatorListsInWindow as number;
    targets.push({
      target: 'no LIST in steady state (operator)',
      value: `${lists} operator LISTs in ${r.cost.windowS} s (apiserver-attributed: ${r.cost.apiserverAttributedListsInWindow})`,
      met: lists === 0,
      why:
        lists === 0
          ? 'informers list once at start and then only watch; Secrets and ServiceAccounts are read with single GETs'
          : 'the operator listed during steady state (watch re-lists or list calls in the reconcile path): see operatorPerCycle',
    });
  } else targets.push(notMeasured('<= 4 writes per cycle, no LIST', 'cost'));
  if (r.writes) {
    const w = r.writes.statusWritesPerProbePerHour as number;
    // A window shorter than 3600 / 20 s cannot tell a write period just longer than itself from one of
    // 180 s: no write in it would not prove <= 20 an hour.
    const conclusive = w > 20 || (r.writes.windowS as number) >= 3600 / 20 - 1;
    targets.push({
      target: '<= 20 status writes per AuthProbe per hour (unchanged verdicts)',
      value: `${w} (${r.writes.statusWrites} in ${r.writes.windowS} s over ${r.writes.probes} AuthProbes, interval ${r.writes.intervalS} s; ${r.writes.checksPerProbePerHour} checks per AuthProbe per hour)`,
      met: conclusive ? w <= 20 : null,
      why: !conclusive
        ? `the ${r.writes.windowS} s window is shorter than 180 s (3600 / 20): a write period between the two would not show in it`
        : w <= 20
          ? 'an unchanged verdict is written to status only as a heartbeat, not on every check'
          : `every check writes status (${r.writes.statusWritesPerCheck} status writes per check): lastProbe.time and the condition change on each`,
    });
  } else targets.push(notMeasured('<= 20 status writes per AuthProbe per hour', 'writes'));
  const noPod = r.scale?.probesWithoutPods;
  if (noPod && noPod.probes >= 1000) {
    targets.push({
      target: 'peak RSS <= 150 MiB with 1,000 AuthProbes',
      value: `${noPod.peakRssMiB} MiB`,
      met: noPod.peakRssMiB <= 150,
      why:
        noPod.peakRssMiB <= 150 ? 'the cache holds only AuthProbes and the probe pods' : 'see rssMiBOverTime',
    });
  } else {
    targets.push({
      target: 'peak RSS <= 150 MiB with 1,000 AuthProbes',
      value: noPod
        ? `not measured at 1,000 (${mode} mode: ${noPod.peakRssMiB} MiB with ${noPod.probes})`
        : 'not measured',
      met: null,
      why: noPod
        ? 'quick mode runs 100 AuthProbes; run the full mode for 1,000'
        : (errors.scale ?? 'phase not run'),
    });
  }
  if (r.memory) {
    const g = r.memory.growthPercent as number;
    targets.push({
      target: `RSS growth < 10% with ${r.memory.unrelatedSecrets} unrelated Secrets`,
      value: `${g}% (${r.memory.before.medianRssMiB} -> ${r.memory.after.medianRssMiB} MiB)`,
      met: g < 10,
      why:
        g < 10
          ? 'Secrets are never listed or watched, only fetched one at a time'
          : 'RSS grew: see the samples',
    });
  } else targets.push(notMeasured('RSS growth < 10% with unrelated Secrets', 'memory'));
  if (r.soak?.rssMiB) {
    const k = r.soak;
    const m = k.rssMiB;
    const minutes = round(k.soakSecondsActual / 60, 1);
    const size = `${k.cyclesCompleted} cycles of ${k.probesPerCycle} AuthProbes in ${minutes} min`;
    const full = k.probesPerCycle >= 1000 && k.soakS >= 1200;
    const allowance = Math.max(m.warm * 0.1, 10);
    const rssMet = m.end !== undefined && m.end <= m.warm + allowance;
    const trend = `RSS after each drain moved ${m.afterDrainSlopePerCycle} MiB per cycle`;
    targets.push({
      target:
        'RSS back to its start after a soak of 1,000 AuthProbes created and deleted for 20 min (+10% or +10 MiB)',
      value:
        m.end !== undefined
          ? `${m.warm} -> ${m.end} MiB (${m.growthFromWarm.MiB >= 0 ? '+' : ''}${m.growthFromWarm.MiB} MiB) ` +
            `over ${size}; cold start ${m.cold} MiB, peak ${m.peakHwm} MiB`
          : `no end measurement: ${size}, RSS ${m.warm} MiB after the warm-up cycle, ${m.afterLastCycle} MiB ` +
            `after the last cycle (peak ${m.peakHwm} MiB)`,
      // stopped early: not met when RSS after the last cycle was already past the allowance
      met: k.stoppedBy
        ? m.afterLastCycle > m.warm + allowance
          ? false
          : null
        : full && m.end !== undefined
          ? rssMet
          : null,
      why: k.stoppedBy
        ? `the soak stopped (${k.stoppedBy}); ${trend}`
        : !full
          ? `${mode} mode soaks ${k.probesPerCycle} AuthProbes for ${k.soakS} s; run the quick or full mode`
          : (rssMet
              ? 'the start is the idle operator after a warm-up cycle (its heap grown to its working size); '
              : 'RSS grew: see rssMiBOverTime and the cycles; ') +
            trend +
            (k.heapUsedAfterGcMiB?.end !== undefined
              ? `; V8 heap in use after a forced full GC: ${k.heapUsedAfterGcMiB.cold} MiB cold, ` +
                `${k.heapUsedAfterGcMiB.warm} warm, ${k.heapUsedAfterGcMiB.end} at the end`
              : ''),
    });
    const s = k.series;
    if (s.end) {
      // Series without an authprobe label have bounded label sets (controller, result, informer, check
      // kind; the runtime's GC kinds), some made only on first use (an error result, a watch error).
      const seriesMet = s.end.perAuthProbe === s.cold.perAuthProbe && s.end.all <= s.warm.all + 100;
      const changed = Object.entries(s.changedWarmToEnd as Record<string, [number, number]>)
        .map(([name, [a, b]]) => `${name} ${a} -> ${b}`)
        .join(', ');
      targets.push({
        target:
          'metric series back to their start after the soak (no per-AuthProbe series left; the rest within +100 of the warm start)',
        value:
          `${s.warm.all} -> ${s.end.all} (authprobe_* ${s.warm.authprobe} -> ${s.end.authprobe}, per AuthProbe ` +
          `${s.cold.perAuthProbe} -> ${s.end.perAuthProbe}; ${s.withProbesMax} with ${k.probesPerCycle} AuthProbes)`,
        met: seriesMet,
        why:
          (s.end.perAuthProbe === s.cold.perAuthProbe
            ? 'every series of a deleted AuthProbe is removed'
            : `${s.end.perAuthProbe} per-AuthProbe series are left`) +
          `; changed since the warm-up cycle, all with bounded label sets made on first use: ${changed || 'none'}`,
      });
    } else targets.push(notMeasured('metric series back to their start after the soak', 'soak'));
  } else targets.push(notMeasured('RSS and metric series back to their start after a soak', 'soak'));
  const checks = r.limit?.operator?.direct?.steady;
  if (r.limit && checks) {
    const raw = r.limit.perSecond as number;
    const ctl = checks.perSecond as number;
    const ratio = ctl / raw;
    const first = r.limit.operator.direct.first;
    targets.push({
      target: 'controller-side TokenReview checks/s / raw TokenReviews/s >= 0.5',
      value: `${round(ratio, 3)} (${ctl}/s / ${raw}/s; ${checks.probes} steady-state checks, concurrency ${r.limit.operator.concurrency}; first checks: ${first.perSecond}/s)`,
      met: ratio >= 0.5,
      why: (() => {
        // what a steady check costs, as the counting proxy measured it (when it did)
        const perCheck = r.limit.operator.counted?.steady?.requestsPerCheck as
          Record<string, number> | undefined;
        const total = perCheck
          ? round(
              Object.values(perCheck).reduce((a, b) => a + b, 0),
              2,
            )
          : undefined;
        const writes = r.limit.operator.counted?.steady?.writesPerCheck as number | undefined;
        const cost = perCheck
          ? `a steady check is ${total} requests (${Object.entries(perCheck)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}; stored writes per check ${writes})`
          : 'a check is three requests (GET secret, POST tokenreviews, PATCH status)';
        if (ratio >= 0.5) return `${cost}; the apiserver, not the operator, is the limit`;
        return (
          `${cost}, where the raw loop makes one read-only request; the apiserver and etcd share the ` +
          `machine's ${os.availableParallelism()} cores with the operator, which used ${checks.operatorCpuSeconds} CPU-s ` +
          `in ${checks.seconds} s` +
          (checks.controlPlaneCpuMsPerCheck !== undefined && r.limit.controlPlaneCpuMsPerReview !== undefined
            ? `; apiserver + etcd spend ${checks.controlPlaneCpuMsPerCheck} CPU-ms per check against ` +
              `${r.limit.controlPlaneCpuMsPerReview} per raw review`
            : '')
        );
      })(),
    });
  } else
    targets.push(notMeasured('controller-side TokenReview checks/s / raw TokenReviews/s >= 0.5', 'limit'));
  return targets;
}
/* eslint-enable @typescript-eslint/no-explicit-any */
