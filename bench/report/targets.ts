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
    const p95 = r.heal.secondsFromRotationEndToHealed.p95 as number;
    const limit = r.heal.intervalS + 15;
    targets.push({
      target: `heal p95 <= interval + 15 s (${limit} s)`,
      value: `${p95} s over ${r.heal.runs} probes`,
      met: p95 <= limit,
      why:
        p95 <= limit
          ? 'a broken probe is noticed at its next scheduled probe (at most interval + 10% jitter), then pod start, confirmation and replacement take seconds'
          : 'see the per-probe times: the next scheduled probe (up to interval + 10% jitter), the probe pod, the confirming TokenReview, the replacement and waiting for the tokens controller add up beyond the target',
    });
  } else targets.push(notMeasured('heal p95 <= interval + 15 s', 'heal'));
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
  const checks = r.limit?.operator?.direct?.steady;
  if (r.limit && checks) {
    const raw = r.limit.perSecond as number;
    const ctl = checks.perSecond as number;
    const ratio = ctl / raw;
    const first = r.limit.operator.direct.first;
    targets.push({
      target: 'controller-side check throughput >= 1/2 of raw TokenReview throughput',
      value: `${ctl}/s vs ${raw}/s = ${round(ratio, 3)} (${checks.probes} steady-state checks, concurrency ${r.limit.operator.concurrency}; first checks: ${first.perSecond}/s)`,
      met: ratio >= 0.5,
      why:
        ratio >= 0.5
          ? 'a check is three requests (GET secret, POST tokenreviews, PATCH status); the apiserver, not the operator, is the limit'
          : `a check is three requests, one of them a write etcd must store (PATCH status: lastProbe and the ` +
            `Ready condition), where the raw loop makes one read-only request; the apiserver and etcd share the ` +
            `machine's ${os.availableParallelism()} cores with the operator, which used ${checks.operatorCpuSeconds} CPU-s ` +
            `in ${checks.seconds} s, so it is not the bottleneck` +
            (checks.controlPlaneCpuMsPerCheck !== undefined &&
            r.limit.controlPlaneCpuMsPerReview !== undefined
              ? `; apiserver + etcd spend ${checks.controlPlaneCpuMsPerCheck} CPU-ms per check against ` +
                `${r.limit.controlPlaneCpuMsPerReview} per raw review`
              : ''),
    });
  } else targets.push(notMeasured('controller-side >= 1/2 raw TokenReview', 'limit'));
  return targets;
}
/* eslint-enable @typescript-eslint/no-explicit-any */
