/** 3. scale: N AuthProbes (missing ServiceAccount: no pods), then M real pod probes. */
import { countReasons, hasVerdict, listProbes, ready } from '../lib/authprobes.ts';
import { applyObjects, createObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe, serviceAccount } from '../lib/manifests.ts';
import { createNamespace, deleteNamespaces } from '../lib/namespaces.ts';
import { startOperator } from '../lib/operator.ts';
import { cpuSeconds, memory } from '../lib/proc.ts';
import { sampler } from '../lib/sampler.ts';
import { round } from '../lib/stats.ts';
import { sleep, waitFor } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

export async function phaseScale(ctx: PhaseContext): Promise<void> {
  const { sizes } = ctx;
  const out: Record<string, unknown> = {};
  ctx.results.scale = out;
  for (const kind of ['no-pod', 'pod'] as const) {
    const n = kind === 'no-pod' ? sizes.scaleProbes : sizes.scalePodProbes;
    const ns = await createNamespace(kind === 'no-pod' ? 'scale' : 'scalepods');
    if (kind === 'pod') await applyObjects([serviceAccount(ns)]);
    const op = await startOperator({ name: `scale-${kind}`, image: ctx.image, namespace: ns });
    await sleep(3000);
    const cpuStart = cpuSeconds(op.pid);
    const t0 = Date.now();
    const s = sampler(op, t0);
    try {
      const probes = Array.from({ length: n }, (_, i) =>
        kind === 'no-pod'
          ? authProbe(ns, `p${i}`, { serviceAccountName: 'missing', interval: '1h' })
          : authProbe(ns, `p${i}`, { interval: '1h', timeout: '30s', keepPods: 1 }),
      );
      await createObjects(probes, 4);
      const createdS = (Date.now() - t0) / 1000;
      let firstStatusS = NaN;
      let verdictS = NaN;
      let reasons: Record<string, number> = {};
      await waitFor(
        `${n} ${kind} probes to get a verdict`,
        kind === 'no-pod' ? 600_000 : 300_000,
        async () => {
          const items = await listProbes(ns);
          const now = (Date.now() - t0) / 1000;
          if (items.length < n) return undefined;
          if (Number.isNaN(firstStatusS) && items.every((p) => ready(p) !== undefined)) firstStatusS = now;
          if (!items.every(hasVerdict)) return undefined;
          verdictS = now;
          reasons = countReasons(items, '');
          return true;
        },
        500,
      );
      // the queue drains after the last status is written
      await sleep(3000);
      await s.stop();
      const mem = memory(op.pid);
      out[kind === 'no-pod' ? 'probesWithoutPods' : 'podProbes'] = {
        probes: n,
        what:
          kind === 'no-pod'
            ? 'AuthProbes for a ServiceAccount that does not exist: the pre-check answers ServiceAccountNotFound, no pod is started'
            : 'AuthProbes with projected tokens, one probe pod each (interval 1h, timeout 30s, keepPods 1), until every one has a verdict',
        createSeconds: round(createdS, 1),
        secondsToEveryFirstStatus: round(firstStatusS, 1),
        secondsToEveryVerdict: round(verdictS, 1),
        verdicts: reasons,
        cpuSeconds: round(cpuSeconds(op.pid) - cpuStart, 2),
        cpuSecondsSinceStart: round(cpuSeconds(op.pid), 2),
        rssMiBAtEnd: mem.rssMiB,
        peakRssMiB: mem.hwmMiB,
        maxQueueDepth: Math.max(0, ...s.samples.map((x) => x.queueDepth)),
        queueDepthOverTime: s.samples.map((x) => [x.t, x.queueDepth]),
        rssMiBOverTime: s.samples.map((x) => [x.t, x.rssMiB]),
      };
      log(
        `scale ${kind}: ${n} probes, every first status after ${round(firstStatusS, 1)} s, verdicts ${round(verdictS, 1)} s, ` +
          `cpu ${round(cpuSeconds(op.pid) - cpuStart, 2)} s, peak RSS ${mem.hwmMiB} MiB`,
      );
    } finally {
      await s.stop();
      await op.stop();
      await deleteNamespaces([ns]);
    }
  }
}
