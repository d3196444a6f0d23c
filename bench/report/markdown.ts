/** latest.md: the targets, then a table of figures per phase. */
import { verbOf } from '../lib/request-counts.ts';
import { round } from '../lib/stats.ts';
import type { ReportDocument } from './document.ts';

/** "key: value; key: value", or `empty` when there is none. */
const formatCounts = (c: Record<string, number>, empty = '—'): string =>
  Object.entries(c)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ') || empty;

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
      `| ${t.target} | ${t.value} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} | ${t.why} |`,
    );
  lines.push('');
  if (r.heal) {
    lines.push('## 1. Time to heal after `cluster:rotate-sa-key`', '');
    table([
      ['probes (runs)', `${r.heal.runs} secret-sourced probes, interval ${r.heal.intervalS} s`],
      ['rotation took', `${r.heal.rotationSeconds} s`],
      [
        'rotation end -> Ready=True (Healed), p50 / p95 / max',
        `${r.heal.secondsFromRotationEndToHealed.p50} / ${r.heal.secondsFromRotationEndToHealed.p95} / ${r.heal.secondsFromRotationEndToHealed.max} s`,
      ],
      [
        'same from heals.lastTime, p50 / p95',
        `${r.heal.serverSideSeconds.p50} / ${r.heal.serverSideSeconds.p95} s`,
      ],
      ['all (s)', r.heal.secondsFromRotationEndToHealed.all.join(', ')],
      ['operator requests per healed probe', formatCounts(r.heal.operatorRequestsPerHealedProbe)],
    ]);
    lines.push(`Requests: ${r.heal.operatorRequestsNote}.`, '');
    lines.push(`Method: ${r.heal.method}`, '');
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
    if (r.heal) {
      const h = r.heal.healerTokenReviews;
      rows.push(
        [
          'operator (heal path)',
          `${h.count} TokenReviews in ${h.fromRotationEndToLastHealS} s = ${h.perSecondOverThatWindow}/s; busy window ${h.busyWindowS} s = ${h.perSecondBusy}/s`,
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
