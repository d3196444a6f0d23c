/** latest.md: the targets, then a table of figures per phase. */
import { verbOf } from '../lib/request-counts.ts';
import { round } from '../lib/stats.ts';
import type { ReportDocument } from './document.ts';

/** "key: value; key: value", or `empty` when there is none. */
const formatCounts = (c: Record<string, number>, empty = '—'): string =>
  Object.entries(c)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ') || empty;

/** "name: before -> after; ..." for series counts that changed, or — when none did. */
const formatChanges = (c: Record<string, [number, number]>): string =>
  Object.entries(c)
    .map(([k, [a, b]]) => `${k}: ${a} -> ${b}`)
    .join('; ') || '—';

/* eslint-disable @typescript-eslint/no-explicit-any */
export function markdown(doc: ReportDocument): string {
  const r = doc.results as Record<string, any>;
  const m = doc.machine as Record<string, any>;
  const lines: string[] = [];
  const table = (rows: Array<[string, string]>) => {
    lines.push('| figure | value |', '| --- | --- |');
    for (const [k, v] of rows) lines.push(`| ${k} | ${v} |`);
    lines.push('');
  };
  lines.push(`# authprobe benchmark (${doc.mode} mode)`, '');
  lines.push(
    `Run ${doc.startedAt} to ${doc.finishedAt}. Machine: ${m.nproc} cores (${m.cpu}), ${m.memoryGiB} GiB memory, ` +
      `kernel ${m.kernel}; Kubernetes ${m.kubernetes}, single node; operator on Node ${m.node} as a host process from dist/; ` +
      `probe image ${doc.image}.`,
    '',
  );
  lines.push('## Targets', '', '| target | value | met | why |', '| --- | --- | --- | --- |');
  for (const t of doc.targets)
    lines.push(
      `| ${t.target} | ${t.value} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} | ${t.why.replace(/\s*\n\s*/g, ' ')} |`,
    );
  lines.push('');
  if (r.heal) {
    const h = r.heal;
    const t = h.secondsFromRotationEndToHealed;
    /** Seconds; null (a percentile on a probe not healed in the wait) is "more than the wait". */
    const secs = (v: number | null | undefined): string => (v === null ? `> ${h.waitS}` : String(v));
    const checks = h.checks ? ` (${h.checks.Pod} check Pod, ${h.checks.TokenReview} check TokenReview)` : '';
    lines.push('## 1. Time to heal after `cluster:rotate-sa-key`', '');
    const rows: Array<[string, string]> = [
      ['probes', `${h.probes ?? h.runs} secret-sourced probes${checks}, interval ${h.intervalS} s`],
      ['rotation took', `${h.rotationSeconds} s`],
      [
        'healed within the wait',
        h.waitS !== undefined ? `${h.runs} of ${h.probes} within ${h.waitS} s` : `${h.runs}`,
      ],
      [
        'rotation end -> Ready=True (Healed), p50 / p95 / max',
        `${secs(t.p50)} / ${secs(t.p95)} / ${secs(t.max)} s`,
      ],
    ];
    for (const [check, b] of Object.entries((h.byCheck ?? {}) as Record<string, any>))
      rows.push([
        `same, check ${check}: p50 / p95 / max`,
        `${secs(b.p50)} / ${secs(b.p95)} / ${secs(b.max)} s (${b.healed} of ${b.probes} healed)`,
      ]);
    rows.push(
      ['same from heals.lastTime, p50 / p95', `${h.serverSideSeconds.p50} / ${h.serverSideSeconds.p95} s`],
      ['all (s)', t.all.join(', ') || '—'],
      [
        'operator requests per healed probe',
        h.operatorRequestsPerHealedProbe ? formatCounts(h.operatorRequestsPerHealedProbe) : 'none healed',
      ],
    );
    if (h.notHealed) rows.push(['not healed: their verdicts', formatCounts(h.notHealedVerdicts ?? {})]);
    table(rows);
    lines.push(`Requests: ${h.operatorRequestsNote}.`, '');
    lines.push(`Method: ${h.method}`, '');
  }
  if (r.cost) {
    lines.push('## 2. apiserver requests per pod-probe cycle (steady state)', '');
    table([
      ['probes', `${r.cost.probes} projected, interval ${r.cost.intervalS} s`],
      ['window / baseline window', `${r.cost.windowS} s / ${r.cost.baselineWindowS} s`],
      ['completed cycles (runs)', String(r.cost.completedCycles)],
      ['operator requests per cycle', formatCounts(r.cost.operatorPerCycle)],
      ['operator writes per cycle', String(r.cost.operatorWritesPerCycle)],
      ['operator LISTs in the window', String(r.cost.operatorListsInWindow)],
      [
        'operator Lease requests per minute (leader election)',
        formatCounts(r.cost.operatorLeaseRequestsPerMinute),
      ],
      [
        'operator non-resource requests per minute (e.g. the published signing keys)',
        formatCounts(r.cost.operatorNonResourceRequestsPerMinute ?? {}),
      ],
      [
        'apiserver, all clients, attributed per cycle (WATCH rows left out: a watch is counted when it ends)',
        formatCounts(
          Object.fromEntries(
            Object.entries(r.cost.apiserverAttributedPerCycle as Record<string, number>).filter(
              ([k]) => verbOf(k) !== 'WATCH',
            ),
          ),
        ),
      ],
      ['apiserver attributed stored writes per cycle', String(r.cost.apiserverAttributedWritesPerCycle)],
      ['apiserver attributed LISTs in the window', String(r.cost.apiserverAttributedListsInWindow)],
    ]);
    lines.push(`Method: ${r.cost.method}`, '');
    if (r.cost.apiserverRestartedDuringWindows)
      lines.push(
        '**The apiserver restarted during a window: its counters reset, the apiserver figures are not valid.**',
        '',
      );
  }
  if (r.scale) {
    lines.push('## 3. Scale (one run each)', '');
    for (const s of Object.values(r.scale as Record<string, any>)) {
      table([
        ['case', `${s.probes} AuthProbes: ${s.what}`],
        ['created (4 parallel kubectl create)', `${s.createSeconds} s`],
        [
          'every probe has a first status / a verdict',
          `${s.secondsToEveryFirstStatus} s / ${s.secondsToEveryVerdict} s`,
        ],
        ['verdicts', formatCounts(s.verdicts)],
        ['operator CPU during the run / since start', `${s.cpuSeconds} s / ${s.cpuSecondsSinceStart} s`],
        ['peak RSS (VmHWM) / RSS at end', `${s.peakRssMiB} MiB / ${s.rssMiBAtEnd} MiB`],
        ['work-queue depth, max', String(s.maxQueueDepth)],
        [
          'work-queue depth over time [s, depth]',
          (s.queueDepthOverTime as number[][]).map(([t, d]) => `${t}:${d}`).join(' '),
        ],
      ]);
    }
  }
  if (r.memory) {
    lines.push('## 4. Memory against cluster size (one run)', '');
    table([
      ['unrelated Secrets', `${r.memory.unrelatedSecrets}, ${r.memory.where}`],
      [
        'created in',
        `${r.memory.createSeconds} s (operator CPU meanwhile ${r.memory.operatorCpuSecondsWhileCreating} s)`,
      ],
      [
        'RSS with 0 (median of samples)',
        `${r.memory.before.medianRssMiB} MiB (${r.memory.before.samples} samples, VmHWM ${r.memory.before.hwmMiB} MiB)`,
      ],
      [
        `RSS with ${r.memory.unrelatedSecrets}`,
        `${r.memory.after.medianRssMiB} MiB (${r.memory.after.samples} samples, VmHWM ${r.memory.after.hwmMiB} MiB)`,
      ],
      ['growth', `${r.memory.growthPercent}%`],
    ]);
  }
  if (r.missing) {
    const x = r.missing;
    lines.push('## 6. AuthProbes whose ServiceAccount never exists (issue #15)', '');
    table([
      ['case', `${x.probes} AuthProbes: ${x.what}`],
      ['window', `${x.windowS} s from their creation`],
      [
        'operator requests per minute (per probe) [minute: requests (per probe), checks]',
        (x.perMinute as any[])
          .map((m) => `${m.minute}: ${m.requests} (${m.requestsPerProbe}), ${m.checks}`)
          .join('; '),
      ],
      [
        'last minute: requests / checks per probe per hour',
        `${x.lastMinute.requestsPerProbePerHour} / ${x.lastMinute.checksPerProbePerHour}`,
      ],
      [
        'one check per interval: requests / checks per probe per hour',
        `${x.oneCheckPerInterval.requestsPerProbePerHour} / ${x.oneCheckPerInterval.checksPerProbePerHour}`,
      ],
      ['last minute / one check per interval (requests)', String(x.lastMinuteToOneCheckPerInterval)],
      [
        "each probe's check period at the end, p50 (min-max)",
        `${x.checkPeriodAtEndS.p50} s (${x.checkPeriodAtEndS.min}-${x.checkPeriodAtEndS.max} s) = ${x.checksPerProbePerHourAtEnd} checks per probe per hour; ${x.checkPeriodAtEndToInterval} x the interval`,
      ],
      [
        'requests per check',
        `${x.requestsPerCheck} (${formatCounts(x.requestsPerCheckByRequest)}; ${x.checks} checks: ${x.checksByKind.pod} Pod, ${x.checksByKind.tokenReview} TokenReview)`,
      ],
      ['operator upkeep per minute (not per probe)', formatCounts(x.upkeepPerMinute)],
      ['verdicts at the end', formatCounts(x.verdicts)],
    ]);
    lines.push(`Method: ${x.method}`, '');
  }
  if (r.writes) {
    const w = r.writes;
    lines.push('## 7. Status writes of unchanged verdicts (issue #12)', '');
    table([
      ['AuthProbes', `${w.probes}, check ${w.check}, ${w.source}, interval ${w.intervalS} s`],
      [
        'window',
        `${w.windowS} s, after every AuthProbe had a verdict (${formatCounts(w.verdictsBeforeWindow)})`,
      ],
      [
        'status writes per AuthProbe per hour',
        `${w.statusWritesPerProbePerHour} (${w.statusWrites} in the window; ${w.statusWritesPerCheck} per check)`,
      ],
      ['checks per AuthProbe per hour', String(w.checksPerProbePerHour)],
      ['AuthProbes by status writes in the window', formatCounts(w.probesByStatusWritesInWindow)],
      [
        'gaps between status writes of one AuthProbe, p50 (min-max) / open gap at the end, p50',
        `${
          Number.isFinite(w.statusWriteGapsS.p50)
            ? `${w.statusWriteGapsS.p50} s (${w.statusWriteGapsS.min}-${w.statusWriteGapsS.max} s)`
            : 'none (no AuthProbe wrote status twice)'
        } / ${w.sinceLastStatusWriteAtEndS.p50} s`,
      ],
      ['operator requests per check', formatCounts(w.requestsPerCheck)],
    ]);
    lines.push(`Method: ${w.method}`, '');
  }
  if (r.idle) {
    const i = r.idle;
    lines.push('## 8. An idle operator (issue #12)', '');
    table([
      ['AuthProbes', `${i.probes}, check ${i.check}, interval ${i.interval}, ${i.source}`],
      ['every first verdict after', `${i.secondsToEveryFirstVerdict} s (${formatCounts(i.verdicts)})`],
      ['window', `${i.windowS} s, starting ${i.waitS} s later`],
      [
        'operator requests per second',
        `${i.requestsPerSecond} (upkeep ${i.upkeepPerSecond}, other ${i.otherPerSecond})`,
      ],
      ['by verb and resource, per second', formatCounts(i.requestsPerSecondByRequest)],
      ['checks / status writes in the window', `${i.checksInWindow} / ${i.statusWritesInWindow}`],
      ['operator CPU in the window', `${i.operatorCpuSecondsInWindow} s`],
      ['RSS at end / peak', `${i.rssMiBAtEnd} / ${i.peakRssMiB} MiB`],
    ]);
    lines.push(`Method: ${i.method}`, '');
  }
  if (r.soak?.rssMiB) {
    const k = r.soak;
    const rows: Array<[string, string]> = [
      ['AuthProbes per cycle', `${k.probesPerCycle}: ${k.what}`],
      [
        'cycles',
        `${k.cyclesCompleted} in ${k.soakSecondsActual} s after a warm-up cycle (${k.authProbesCreatedAndDeleted} AuthProbes created and deleted); not drained: ${k.cyclesNotDrained}; failed by the cluster: ${k.cyclesFailed}`,
      ],
      [
        'per cycle, p50 (min-max): all / create until every verdict / delete until let go',
        ['cycleSeconds', 'verdictSeconds', 'drainSeconds']
          .map((f) => `${k[f].p50} s (${k[f].min}-${k[f].max})`)
          .join(' / '),
      ],
    ];
    for (const [label, x] of [
      ['cold (no AuthProbe yet)', k.cold],
      ['warm (after the warm-up cycle)', k.warm],
      ['end', k.end],
    ] as Array<[string, any]>)
      if (x) {
        rows.push([
          `idle ${label}: RSS (median) / VmHWM / series (authprobe_*, per AuthProbe)`,
          `${x.medianRssMiB} / ${x.hwmMiB} MiB / ${x.series.all} (${x.series.authprobe}, ${x.series.perAuthProbe})`,
        ]);
        if (x.afterGc)
          rows.push([
            `idle ${label}: V8 heap used / committed, as it runs -> after a forced full GC (RSS after it)`,
            `${x.heapUsedMiB} / ${x.heapTotalMiB} -> ${x.afterGc.heapUsedMiB} / ${x.afterGc.heapTotalMiB} MiB ` +
              `(${x.afterGc.medianRssMiB} MiB)`,
          ]);
      }
    const g = (x: any): string => (x ? `${x.MiB} MiB (${x.percent}%)` : '—');
    rows.push(
      [
        'RSS growth, warm -> end / cold -> end',
        `${g(k.rssMiB.growthFromWarm)} / ${g(k.rssMiB.growthFromCold)}`,
      ],
      ['RSS after the last cycle', `${k.rssMiB.afterLastCycle} MiB`],
      ['peak RSS (VmHWM) / highest sampled', `${k.rssMiB.peakHwm} / ${k.rssMiB.maxSampled} MiB`],
      ['RSS after each drain, slope', `${k.rssMiB.afterDrainSlopePerCycle} MiB per cycle`],
      ['series with the AuthProbes, max', String(k.series.withProbesMax)],
      [
        'series that changed, cold -> warm / warm -> end (name: before -> after)',
        `${formatChanges(k.series.changedColdToWarm ?? {})} / ${formatChanges(k.series.changedWarmToEnd ?? {})}`,
      ],
      ['operator CPU, whole phase', k.operatorCpuSeconds !== undefined ? `${k.operatorCpuSeconds} s` : '—'],
      [
        'by cycle [cycle: every verdict s, drained s, RSS MiB with the AuthProbes -> after, series]',
        (k.cycles as any[])
          .filter((c) => c.cycle > 0)
          .map(
            (c) =>
              `${c.cycle}: ${c.verdictS}, ${c.drainS}, ${c.rssMiBWithProbes} -> ${c.rssMiBAfter}, ${c.seriesAfter.all}`,
          )
          .join('; '),
      ],
    );
    if (k.failedCycles?.length)
      rows.push([
        'cycles the cluster failed [cycle (s into the phase): error]',
        (k.failedCycles as any[]).map((f) => `${f.cycle} (${f.atS} s): ${f.error}`).join('; '),
      ]);
    if (k.stoppedBy) rows.push(['**stopped by**', k.stoppedBy]);
    lines.push('## 9. Soak: AuthProbes created and deleted in cycles (issue #14)', '');
    table(rows);
    lines.push(`Method: ${k.method}`, '');
  }
  if (r.limit) {
    lines.push('## 5. The limit: TokenReview throughput', '');
    const rows: Array<[string, string]> = [
      [
        'raw loop',
        `${r.limit.perSecond}/s (${r.limit.authenticated} reviews in ${r.limit.seconds} s, concurrency ${r.limit.concurrency}, ${r.limit.failed} failed; latency p50 ${r.limit.latencyMs.p50} ms, p95 ${r.limit.latencyMs.p95} ms${r.limit.controlPlaneCpuMsPerReview !== undefined ? `; apiserver + etcd CPU ${r.limit.controlPlaneCpuMsPerReview} ms per review` : ''}) — ${r.limit.what}`,
      ],
    ];
    const o = r.limit.operator;
    if (o?.direct) {
      for (const label of ['first', 'steady'] as const) {
        const d = o.direct[label];
        const c = o.counted?.[label];
        rows.push(
          [
            `operator, ${label} checks (check TokenReview)`,
            `${d.perSecond}/s (${d.checksInWindow} of ${d.probes} checks in ${d.seconds} s; verdicts ${JSON.stringify(d.verdicts)}; operator CPU ${d.operatorCpuSeconds} s, peak RSS ${d.peakRssMiB} MiB${d.controlPlaneCpuMsPerCheck !== undefined ? `; apiserver + etcd CPU ${d.controlPlaneCpuMsPerCheck} ms per check` : ''}); ratio to raw ${round(d.perSecond / r.limit.perSecond, 3)}`,
          ],
          [
            `operator requests per ${label} check (counting proxy)`,
            c?.requestsPerCheck
              ? `${formatCounts(c.requestsPerCheck, '')} (${c.probes} checks; stored writes per check ${c.writesPerCheck})`
              : 'not measured',
          ],
        );
      }
      lines.push(`What the operator figures are: ${o.what}.`, '');
    }
    if (o?.direct?.steady) {
      const ratio = round(o.direct.steady.perSecond / r.limit.perSecond, 3);
      rows.push([
        'controller-side TokenReview checks/s / raw TokenReviews/s (target >= 0.5)',
        `**${ratio}** (${o.direct.steady.perSecond}/s / ${r.limit.perSecond}/s): ${ratio >= 0.5 ? 'met' : 'not met'}`,
      ]);
    }
    if (r.heal) {
      const h = r.heal.healerTokenReviews;
      rows.push(
        [
          'operator (heal path)',
          `${h.count} TokenReviews in ${h.fromRotationStartToLastHealS ?? h.fromRotationEndToLastHealS} s = ${h.perSecondOverThatWindow}/s; busy window ${h.busyWindowS} s = ${h.perSecondBusy}/s`,
        ],
        [
          'heal path / raw',
          `${round(h.perSecondOverThatWindow / r.limit.perSecond, 4)} (busy window: ${round(h.perSecondBusy / r.limit.perSecond, 4)})`,
        ],
      );
      lines.push(`What the heal-path figure is: ${h.what}`, '');
    }
    table(rows);
  }
  if (Object.keys(doc.errors).length) {
    lines.push('## Errors', '');
    for (const [phase, message] of Object.entries(doc.errors)) lines.push(`- ${phase}: ${message}`);
    lines.push('');
  }
  lines.push(
    'Reproduce: `npm run bench -- --quick` (or `npm run bench` for the full mode) on the test cluster.',
    '',
  );
  return lines.join('\n');
}
/* eslint-enable @typescript-eslint/no-explicit-any */
