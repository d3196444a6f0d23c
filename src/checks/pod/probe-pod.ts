/**
 * The probe pod, as data. It runs as the target service account and mounts exactly what a consumer pod
 * would, so that what it sees is what the workload sees:
 * - Projected, no expirationSeconds/audience: nothing explicit; automount decides, as for most
 *   workloads. A ServiceAccount with automountServiceAccountToken: false, or an apiserver without the
 *   ServiceAccount admission plugin, leaves the pod without a token: that is the TokenNotMounted verdict.
 * - Projected with expirationSeconds or audience: automount off and the same projected volume the
 *   admission plugin would add (token, kube-root-ca.crt's ca.crt, namespace), with those values.
 * - Secret: automount off and the secret mounted at the standard path (optional: false, so a missing
 *   secret keeps the pod from starting, as it would a consumer).
 * Restricted Pod Security profile, restartPolicy Never, a deadline, tiny requests, owned by the AuthProbe.
 */
import type { V1Container, V1Pod, V1ResourceRequirements, V1Volume } from '@kubernetes/client-node';
import { DEFAULT_PROJECTED_EXPIRATION_SECONDS, type ResolvedSpec } from '../../api/defaults.js';
import { LABEL_MANAGED_BY, LABEL_PROBE, LABEL_RUN, MANAGED_BY_VALUE } from '../../api/labels.js';
import { AUTHPROBE_API_VERSION, AUTHPROBE_KIND, type AuthProbe, type ResourceList } from '../../api/types.js';
import { SERVICE_ACCOUNT_DIR } from '../../probe/result.js';

export const PROBE_CONTAINER_NAME = 'probe';
/** Non-root user of the probe container (the distroless "nonroot" user). */
export const PROBE_USER_ID = 65532;
/**
 * activeDeadlineSeconds counts from the pod's start, image pull included, while the program's own
 * timeout starts when it does: the slack lets the program write its result before the kubelet kills it.
 */
export const PROBE_POD_STARTUP_SLACK_SECONDS = 30;
/** Beyond the pod's deadline, how long the controller waits for scheduling before it calls a pod overdue. */
export const PROBE_POD_SCHEDULING_GRACE_SECONDS = 30;
const POD_NAME_MAX = 63;

const DEFAULT_RESOURCES = {
  requests: { cpu: '10m', memory: '32Mi' },
  limits: { memory: '128Mi' },
} as const;

export interface BuildProbePodOptions {
  /** Image of the probe container when spec.podTemplate.image is unset: the operator's own. */
  image: string;
  /** Identifies this probe run: [a-z0-9], at most 10 characters (see newRunId). */
  runId: string;
}

export function probePodDeadlineSeconds(timeoutMs: number): number {
  return Math.ceil(timeoutMs / 1000) + PROBE_POD_STARTUP_SLACK_SECONDS;
}

/** After this long since creation, a probe pod without a result is overdue (see classifyPodFailure). */
export function probePodOverdueAfterMs(timeoutMs: number): number {
  return (probePodDeadlineSeconds(timeoutMs) + PROBE_POD_SCHEDULING_GRACE_SECONDS) * 1000;
}

/** A run id that sorts by time: seconds since the epoch in base 36, then 3 random characters. */
export function newRunId(nowMs: number, random: () => number = Math.random): string {
  const time = Math.floor(nowMs / 1000).toString(36);
  const suffix = Math.floor(random() * 36 ** 3)
    .toString(36)
    .padStart(3, '0');
  return `${time}${suffix}`;
}

/** `<probe>-probe-<runId>`, the probe's name shortened so that the whole fits 63 characters. */
export function probePodName(probeName: string, runId: string): string {
  const suffix = `-probe-${runId}`;
  const prefix = probeName.slice(0, POD_NAME_MAX - suffix.length).replace(/[-.]+$/, '');
  return `${prefix}${suffix}`;
}

/** Labels that select all probe pods of one AuthProbe (for listing and reaping). */
export function probePodSelector(probeName: string): Record<string, string> {
  return { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_PROBE]: probeName };
}

function quantities(list: ResourceList | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (list?.cpu !== undefined) out['cpu'] = String(list.cpu);
  if (list?.memory !== undefined) out['memory'] = String(list.memory);
  return out;
}

function resources(spec: ResolvedSpec): V1ResourceRequirements {
  const custom = spec.podTemplate.resources;
  return {
    requests: { ...DEFAULT_RESOURCES.requests, ...quantities(custom?.requests) },
    limits: { ...DEFAULT_RESOURCES.limits, ...quantities(custom?.limits) },
  };
}

const TOKEN_VOLUME = 'serviceaccount-token';

/** The token volume and pod-level automount setting for the spec's token source (see file comment). */
function tokenMount(spec: ResolvedSpec): { automount: boolean | undefined; volume?: V1Volume } {
  const token = spec.token;
  if (token.source === 'Secret') {
    return {
      automount: false,
      volume: { name: TOKEN_VOLUME, secret: { secretName: token.secretName ?? '', optional: false } },
    };
  }
  if (token.expirationSeconds === undefined && token.audience === undefined) return { automount: undefined };
  return {
    automount: false,
    volume: {
      name: TOKEN_VOLUME,
      projected: {
        // What the ServiceAccount admission plugin adds (kube-api-access-*), with the spec's values.
        defaultMode: 0o644,
        sources: [
          {
            serviceAccountToken: {
              path: 'token',
              expirationSeconds: token.expirationSeconds ?? DEFAULT_PROJECTED_EXPIRATION_SECONDS,
              ...(token.audience !== undefined ? { audience: token.audience } : {}),
            },
          },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          {
            downwardAPI: {
              items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
            },
          },
        ],
      },
    },
  };
}

/**
 * The probe pod for one run of `probe`. `spec` is the probe's resolved spec (resolveSpec), which the
 * controller computes anyway for the interval; so this function cannot fail.
 */
export function buildProbePod(probe: AuthProbe, spec: ResolvedSpec, options: BuildProbePodOptions): V1Pod {
  const { runId } = options;
  const template = spec.podTemplate;
  const { automount, volume } = tokenMount(spec);

  const container: V1Container = {
    name: PROBE_CONTAINER_NAME,
    image: template.image ?? options.image,
    imagePullPolicy: 'IfNotPresent',
    args: ['probe', '--path', spec.path, '--timeout', String(spec.timeoutMs)],
    resources: resources(spec),
    // The result is the termination message; if the program dies before writing it, its last log
    // lines (it prints the result to stdout too) are used instead.
    terminationMessagePolicy: 'FallbackToLogsOnError',
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: PROBE_USER_ID,
      runAsGroup: PROBE_USER_ID,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    ...(volume
      ? { volumeMounts: [{ name: TOKEN_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true }] }
      : {}),
  };

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: probePodName(probe.metadata.name, runId),
      namespace: probe.metadata.namespace,
      // The operator's labels last: a podTemplate label must not detach a pod from its probe.
      labels: { ...template.labels, ...probePodSelector(probe.metadata.name), [LABEL_RUN]: runId },
      ...(template.annotations ? { annotations: { ...template.annotations } } : {}),
      ownerReferences: [
        {
          apiVersion: AUTHPROBE_API_VERSION,
          kind: AUTHPROBE_KIND,
          name: probe.metadata.name,
          uid: probe.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      serviceAccountName: spec.serviceAccountName,
      ...(automount !== undefined ? { automountServiceAccountToken: automount } : {}),
      restartPolicy: 'Never',
      activeDeadlineSeconds: probePodDeadlineSeconds(spec.timeoutMs),
      terminationGracePeriodSeconds: 5,
      // KUBERNETES_SERVICE_HOST/PORT are injected regardless; other services' variables are noise.
      enableServiceLinks: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: PROBE_USER_ID,
        runAsGroup: PROBE_USER_ID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [container],
      ...(volume ? { volumes: [volume] } : {}),
      ...(template.nodeSelector ? { nodeSelector: { ...template.nodeSelector } } : {}),
      ...(template.tolerations ? { tolerations: template.tolerations.map((t) => ({ ...t })) } : {}),
      ...(template.priorityClassName ? { priorityClassName: template.priorityClassName } : {}),
      ...(template.imagePullSecrets
        ? { imagePullSecrets: template.imagePullSecrets.map((s) => ({ name: s.name })) }
        : {}),
    },
  };
}
