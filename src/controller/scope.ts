/**
 * Which AuthProbes the operator runs at all: not those in its own namespace (a probe pod there would
 * run as the operator's own, powerful account), not those in namespaces the admin excluded (kube-system
 * by default), and not more per namespace than the admin allows. Pure; the reconciler reports the
 * verdict instead of running a check.
 */
import { ProbeReason } from '../api/reasons.js';
import type { AuthProbe } from '../api/types.js';
import { verdict, type Verdict } from '../api/verdict.js';

export interface ProbeScope {
  operatorNamespace: string;
  excludedNamespaces: readonly string[];
  /** 0: no limit. */
  maxPerNamespace: number;
}

/** undefined when the AuthProbe is run; otherwise why not. `sameNamespace` lists the namespace's AuthProbes. */
export function outOfScope(
  probe: AuthProbe,
  scope: ProbeScope,
  sameNamespace: readonly AuthProbe[],
): Verdict | undefined {
  const ns = probe.metadata.namespace;
  if (ns === scope.operatorNamespace) {
    return verdict(
      ProbeReason.NamespaceExcluded,
      'False',
      `AuthProbes in the operator's own namespace ${ns} are not run: a probe pod here could run as the operator's ` +
        `own ServiceAccount, which may read every token secret it heals. Nothing was checked or changed.`,
    );
  }
  if (scope.excludedNamespaces.includes(ns)) {
    return verdict(
      ProbeReason.NamespaceExcluded,
      'False',
      `Namespace ${ns} is excluded by the operator's settings (--excluded-namespaces; kube-system by default): ` +
        `its AuthProbes are reported, not run. Nothing was checked or changed; the cluster admin can allow it.`,
    );
  }
  if (scope.maxPerNamespace > 0) {
    // The oldest ones run: a newly added AuthProbe cannot push an existing one out.
    const order = [...sameNamespace].sort(
      (a, b) =>
        (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
        a.metadata.name.localeCompare(b.metadata.name),
    );
    const position = order.findIndex((p) => p.metadata.uid === probe.metadata.uid);
    if (position >= scope.maxPerNamespace) {
      return verdict(
        ProbeReason.AuthProbeLimitExceeded,
        'False',
        `Namespace ${ns} has ${order.length} AuthProbes and the operator runs at most ${scope.maxPerNamespace} per ` +
          `namespace (--max-authprobes-per-namespace); this one is not run. Delete unused AuthProbes.`,
      );
    }
  }
  return undefined;
}
