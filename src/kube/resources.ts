/**
 * The objects the operator reads and writes, as plain JSON (timestamps are RFC 3339 strings), the API
 * paths they live at, and the few questions every caller asks of them. One module, so that a shape or
 * a path is spelled once.
 */
import { AUTHPROBE_GROUP, AUTHPROBE_PLURAL, AUTHPROBE_VERSION, type OwnerReference } from '../api/types.js';
import type { KubeApi, RequestOptions } from './client.js';
import { isNotFound } from './errors.js';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** Metadata of an object that has been stored: it has a name and a namespace. */
export type StoredMeta = ObjectMeta & { name: string; namespace: string };

/** The parts of a Pod the controller reads. */
export interface PodJson extends KubeObject {
  metadata: StoredMeta;
  spec?: { serviceAccountName?: string };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    containerStatuses?: Array<{
      name: string;
      state?: {
        waiting?: { reason?: string; message?: string };
        terminated?: { exitCode?: number; reason?: string; message?: string };
      };
    }>;
  };
}

export interface SecretJson extends KubeObject {
  metadata: StoredMeta;
  type?: string;
  data?: Record<string, string>;
}

export interface ServiceAccountJson extends KubeObject {
  metadata: StoredMeta;
}

/** The parts of a pod template that can reference a secret. */
export interface PodSpecRefs {
  volumes?: Array<{
    secret?: { secretName?: string };
    projected?: { sources?: Array<{ secret?: { name?: string } }> };
  }>;
  containers?: ContainerRefs[];
  initContainers?: ContainerRefs[];
}

export interface ContainerRefs {
  env?: Array<{ valueFrom?: { secretKeyRef?: { name?: string } } }>;
  envFrom?: Array<{ secretRef?: { name?: string } }>;
}

/** A Deployment, StatefulSet or DaemonSet, as far as restarting its consumers of a secret goes. */
export interface WorkloadJson extends KubeObject {
  metadata: StoredMeta;
  spec?: { template?: { metadata?: { annotations?: Record<string, string> }; spec?: PodSpecRefs } };
}

export const WORKLOAD_KINDS = [
  { kind: 'Deployment', plural: 'deployments' },
  { kind: 'StatefulSet', plural: 'statefulsets' },
  { kind: 'DaemonSet', plural: 'daemonsets' },
] as const;
export type WorkloadPlural = (typeof WORKLOAD_KINDS)[number]['plural'];

const seg = encodeURIComponent;
const core = (ns: string, plural: string, name?: string): string =>
  `/api/v1/namespaces/${seg(ns)}/${plural}${name === undefined ? '' : `/${seg(name)}`}`;

/** API paths, built in one place (every segment escaped). */
export const apiPaths = {
  pods: (ns: string) => core(ns, 'pods'),
  pod: (ns: string, name: string) => core(ns, 'pods', name),
  secrets: (ns: string) => core(ns, 'secrets'),
  secret: (ns: string, name: string) => core(ns, 'secrets', name),
  serviceAccounts: (ns: string) => core(ns, 'serviceaccounts'),
  serviceAccount: (ns: string, name: string) => core(ns, 'serviceaccounts', name),
  events: (ns: string) => core(ns, 'events'),
  event: (ns: string, name: string) => core(ns, 'events', name),
  workloads: (ns: string, plural: WorkloadPlural) => `/apis/apps/v1/namespaces/${seg(ns)}/${plural}`,
  workload: (ns: string, plural: WorkloadPlural, name: string) =>
    `/apis/apps/v1/namespaces/${seg(ns)}/${plural}/${seg(name)}`,
  authProbes: (ns?: string) =>
    `/apis/${AUTHPROBE_GROUP}/${AUTHPROBE_VERSION}` +
    (ns === undefined ? '' : `/namespaces/${seg(ns)}`) +
    `/${AUTHPROBE_PLURAL}`,
  authProbe: (ns: string, name: string) =>
    `/apis/${AUTHPROBE_GROUP}/${AUTHPROBE_VERSION}/namespaces/${seg(ns)}/${AUTHPROBE_PLURAL}/${seg(name)}`,
  authProbeStatus: (ns: string, name: string) => `${apiPaths.authProbe(ns, name)}/status`,
  tokenReviews: () => '/apis/authentication.k8s.io/v1/tokenreviews',
} as const;

/** GET that answers undefined for 404; every other failure is thrown. */
export async function getOrUndefined<T>(
  api: Pick<KubeApi, 'get'>,
  path: string,
  options: RequestOptions = {},
): Promise<T | undefined> {
  try {
    return await api.get<T>(path, options);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The username a service account's token authenticates as. */
export function serviceAccountUsername(namespace: string, serviceAccountName: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccountName}`;
}

/** The token of a `kubernetes.io/service-account-token` secret, decoded, or undefined when not filled yet. */
export function secretToken(secret: { data?: Record<string, string> }): string | undefined {
  const encoded = secret.data?.token;
  if (!encoded) return undefined;
  const token = Buffer.from(encoded, 'base64').toString('utf8').trim();
  return token || undefined;
}
