/**
 * What a probe pod may ask for, decided by the cluster admin (operator settings), not by the AuthProbe's
 * author: which images, priority classes, tolerations, labels and annotations, and how much cpu and
 * memory. An AuthProbe that asks for more gets ProbePodNotAllowed and no pod. Pure, table-tested.
 */
import type { ProbePodTemplate, Quantity } from '../../api/types.js';
import { ProbeReason } from '../../api/reasons.js';
import { parseQuantity } from '../../api/quantity.js';
import { verdict, type Verdict } from '../../api/verdict.js';

export interface ProbePodPolicy {
  /** The operator's own image: always allowed, and the default. */
  probeImage: string;
  /** Further images; an entry ending in `*` allows every reference with that prefix. */
  allowedImages: string[];
  allowedPriorityClasses: string[];
  allowedTolerationKeys: string[];
  allowedLabelPrefixes: string[];
  allowedAnnotationPrefixes: string[];
  /** Ceilings for requests and limits, in cores and bytes. */
  maxCpu: number;
  maxMemory: number;
}

const matches = (value: string, patterns: readonly string[]): boolean =>
  patterns.some((p) => (p.endsWith('*') ? value.startsWith(p.slice(0, -1)) : value === p));
const hasPrefix = (key: string, prefixes: readonly string[]): boolean =>
  prefixes.some((p) => key.startsWith(p));

/** undefined when the template is within the policy; otherwise a verdict naming every field that is not. */
export function judgePodTemplate(template: ProbePodTemplate, policy: ProbePodPolicy): Verdict | undefined {
  const problems: string[] = [];
  if (
    template.image !== undefined &&
    template.image !== policy.probeImage &&
    !matches(template.image, policy.allowedImages)
  ) {
    problems.push(
      `spec.podTemplate.image ${template.image} is not an allowed probe image (the operator's own image, or --allowed-probe-images)`,
    );
  }
  if (
    template.priorityClassName !== undefined &&
    !policy.allowedPriorityClasses.includes(template.priorityClassName)
  ) {
    problems.push(
      `spec.podTemplate.priorityClassName ${template.priorityClassName} is not allowed (--allowed-priority-classes)`,
    );
  }
  for (const toleration of template.tolerations ?? []) {
    const key = toleration.key ?? '(every taint)';
    if (toleration.key === undefined || !policy.allowedTolerationKeys.includes(toleration.key)) {
      problems.push(`spec.podTemplate.tolerations: key ${key} is not allowed (--allowed-toleration-keys)`);
    }
  }
  for (const key of Object.keys(template.labels ?? {})) {
    if (!hasPrefix(key, policy.allowedLabelPrefixes)) {
      problems.push(`spec.podTemplate.labels: ${key} is not allowed (--allowed-pod-label-prefixes)`);
    }
  }
  for (const key of Object.keys(template.annotations ?? {})) {
    if (!hasPrefix(key, policy.allowedAnnotationPrefixes)) {
      problems.push(
        `spec.podTemplate.annotations: ${key} is not allowed (--allowed-pod-annotation-prefixes)`,
      );
    }
  }
  const check = (field: string, value: Quantity | undefined, max: number, flag: string) => {
    if (value === undefined) return;
    const amount = parseQuantity(value);
    if (amount === undefined || amount > max) {
      problems.push(`spec.podTemplate.resources.${field} ${value} is above the ceiling (${flag})`);
    }
  };
  for (const kind of ['requests', 'limits'] as const) {
    check(`${kind}.cpu`, template.resources?.[kind]?.cpu, policy.maxCpu, '--max-probe-cpu');
    check(`${kind}.memory`, template.resources?.[kind]?.memory, policy.maxMemory, '--max-probe-memory');
  }
  if (!problems.length) return undefined;
  return verdict(
    ProbeReason.ProbePodNotAllowed,
    'False',
    `No probe pod was created: ${problems.join('; ')}. The cluster admin sets these bounds in the operator's settings (Helm values operator.tenancy).`,
  );
}
