/** The objects the phases create. */

export const serviceAccount = (ns: string, name = 'app') => ({
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  metadata: { name, namespace: ns },
});

/** A legacy token Secret for a ServiceAccount (the tokens controller fills it). */
export const legacyTokenSecret = (ns: string, name: string, sa: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: ns, annotations: { 'kubernetes.io/service-account.name': sa } },
  type: 'kubernetes.io/service-account-token',
});

export interface ProbeOptions {
  serviceAccountName?: string;
  secretName?: string;
  check?: 'Pod' | 'TokenReview';
  interval: string;
  timeout?: string;
  keepPods?: number;
}

export const authProbe = (ns: string, name: string, o: ProbeOptions) => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace: ns },
  spec: {
    serviceAccountName: o.serviceAccountName ?? 'app',
    token: o.secretName ? { source: 'Secret', secretName: o.secretName } : { source: 'Projected' },
    interval: o.interval,
    timeout: o.timeout ?? '10s',
    ...(o.keepPods !== undefined ? { keepPods: o.keepPods } : {}),
    ...(o.check ? { check: o.check } : {}),
  },
});
