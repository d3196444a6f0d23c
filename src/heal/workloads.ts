import type { WorkloadJson } from '../kube/resources.js';

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
