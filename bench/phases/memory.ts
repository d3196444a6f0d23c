/** 4. memory against cluster size: RSS with 0 and with N unrelated Secrets (in the watched namespace). */
import { randomBytes } from 'node:crypto';
import { waitAllProbesReason } from '../lib/authprobes.ts';
import { applyObjects, createObjects } from '../lib/kubectl.ts';
import { log } from '../lib/log.ts';
import { authProbe } from '../lib/manifests.ts';
import { createNamespace, deleteNamespaces } from '../lib/namespaces.ts';
import { startOperator } from '../lib/operator.ts';
import { cpuSeconds, rssMedian } from '../lib/proc.ts';
import { round } from '../lib/stats.ts';
import { sleep } from '../lib/wait.ts';
import type { PhaseContext } from './context.ts';

export async function phaseMemory(ctx: PhaseContext): Promise<void> {
  const { sizes } = ctx;
  const ns = await createNamespace('mem');
  await applyObjects(
    Array.from({ length: 10 }, (_, i) =>
      authProbe(ns, `p${i}`, { serviceAccountName: 'missing', interval: '15s' }),
    ),
  );
  const op = await startOperator({ name: 'memory', image: ctx.image, namespace: ns });
  /** The median of 20 one-per-second RSS samples. */
  const settle = async (label: string): ReturnType<typeof rssMedian> => {
    const m = await rssMedian(op.pid);
    log(`memory ${label}: median RSS ${m.medianRssMiB} MiB over ${m.samples} s, VmHWM ${m.hwmMiB} MiB`);
    return m;
  };
  try {
    await waitAllProbesReason(ns, 10, 'ServiceAccountNotFound', 60_000);
    await sleep(10_000);
    const before = await settle('with 0 unrelated secrets');
    const cpu0 = cpuSeconds(op.pid);
    const t0 = Date.now();
    const secrets = Array.from({ length: sizes.memorySecrets }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `unrelated-${i}`, namespace: ns, labels: { 'authprobe.io/bench': 'unrelated' } },
      type: 'Opaque',
      stringData: { value: randomBytes(48).toString('hex') },
    }));
    await createObjects(secrets, 4);
    const createS = (Date.now() - t0) / 1000;
    const cpuDuring = cpuSeconds(op.pid) - cpu0;
    log(`memory: created ${sizes.memorySecrets} secrets in ${round(createS, 1)} s`);
    await sleep(10_000);
    const after = await settle(`with ${sizes.memorySecrets} unrelated secrets`);
    ctx.results.memory = {
      unrelatedSecrets: sizes.memorySecrets,
      where: `in the operator's watched namespace (${ns}), next to 10 AuthProbes (missing ServiceAccount, interval 15s)`,
      createSeconds: round(createS, 1),
      operatorCpuSecondsWhileCreating: round(cpuDuring, 2),
      before,
      after,
      growthPercent: round((after.medianRssMiB / before.medianRssMiB - 1) * 100, 1),
      method:
        'median of 20 VmRSS samples, one per second, of one operator process before and after the secrets exist',
    };
  } finally {
    await op.stop();
    await deleteNamespaces([ns], 180_000);
  }
}
