import { EventReason } from '../api/reasons.js';
import { apiPaths, WORKLOAD_KINDS, type WorkloadJson } from '../kube/resources.js';
import type { HealContext, HealServices } from './procedures/procedure.js';

/** Same annotation `kubectl rollout restart` sets, so the rollout looks familiar to admins. */
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

/**
 * Whether a workload's pods consume the secret: as a volume, a projected volume source, an env
 * variable or envFrom. Pure, so the rule is tested without a cluster.
 */
export function consumesSecret(workload: WorkloadJson, secretName: string): boolean {
  const spec = workload.spec?.template?.spec;
  if (!spec) return false;
  const inVolumes = (spec.volumes ?? []).some(
    (v) =>
      v.secret?.secretName === secretName ||
      (v.projected?.sources ?? []).some((s) => s.secret?.name === secretName),
  );
  const inContainers = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].some(
    (c) =>
      (c.env ?? []).some((e) => e.valueFrom?.secretKeyRef?.name === secretName) ||
      (c.envFrom ?? []).some((e) => e.secretRef?.name === secretName),
  );
  return inVolumes || inContainers;
}

/** The patch that rolls a workload the way `kubectl rollout restart` does. */
export function restartPatch(now: Date): unknown {
  return {
    spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: now.toISOString() } } } },
  };
}

/**
 * Rolls the Deployments, StatefulSets and DaemonSets in the AuthProbe's namespace that consume the
 * secret (heal.restartWorkloads), with one Event naming them; returns what was restarted.
 */
export async function restartConsumers(
  services: Pick<HealServices, 'client' | 'recorder' | 'now'>,
  ctx: HealContext,
  secretName: string,
): Promise<string[]> {
  const { client, recorder, now } = services;
  const ns = ctx.probe.metadata.namespace;
  const restarted: string[] = [];
  for (const { kind, plural } of WORKLOAD_KINDS) {
    const list = await client.get<{ items: WorkloadJson[] }>(apiPaths.workloads(ns, plural), {
      timeoutMs: 15_000,
    });
    for (const workload of list.items.filter((w) => consumesSecret(w, secretName))) {
      await client.mergePatch(
        apiPaths.workload(ns, plural, workload.metadata.name),
        restartPatch(new Date(now())),
        {
          timeoutMs: 15_000,
        },
      );
      restarted.push(`${kind}/${workload.metadata.name}`);
    }
  }
  if (restarted.length) {
    await recorder.record(
      ctx.target,
      'Normal',
      EventReason.WorkloadsRestarted,
      `Restarted ${restarted.join(', ')}, which consume secret ${secretName}, so they pick up the new token.`,
    );
  }
  return restarted;
}
