/** The parts of a pod template that can reference a secret. */
interface PodSpecRefs {
  volumes?: Array<{
    secret?: { secretName?: string };
    projected?: { sources?: Array<{ secret?: { name?: string } }> };
  }>;
  containers?: ContainerRefs[];
  initContainers?: ContainerRefs[];
}

interface ContainerRefs {
  env?: Array<{ valueFrom?: { secretKeyRef?: { name?: string } } }>;
  envFrom?: Array<{ secretRef?: { name?: string } }>;
}

export interface WorkloadJson {
  kind?: string;
  metadata: { name: string; namespace: string; uid?: string };
  spec?: { template?: { metadata?: { annotations?: Record<string, string> }; spec?: PodSpecRefs } };
}

export const WORKLOAD_KINDS = [
  { kind: 'Deployment', path: 'deployments' },
  { kind: 'StatefulSet', path: 'statefulsets' },
  { kind: 'DaemonSet', path: 'daemonsets' },
] as const;

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
