import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { resolveSpec, type ResolvedSpec } from '../../../../src/api/defaults.js';
import type { AuthProbe, AuthProbeSpec } from '../../../../src/api/types.js';
import {
  buildProbePod,
  newRunId,
  probePodDeadlineSeconds,
  probePodName,
  probePodOverdueAfterMs,
} from '../../../../src/checks/pod/probe-pod.js';

function probe(spec: AuthProbeSpec, name = 'dashboard'): { probe: AuthProbe; spec: ResolvedSpec } {
  const resolved = resolveSpec(spec);
  if (!resolved.ok) throw new Error(resolved.message);
  return {
    probe: {
      apiVersion: 'authprobe.io/v1alpha1',
      kind: 'AuthProbe',
      metadata: { name, namespace: 'team', uid: 'uid-1', generation: 2 },
      spec,
    },
    spec: resolved.spec,
  };
}

function build(spec: AuthProbeSpec, name?: string): V1Pod {
  const p = probe(spec, name);
  return buildProbePod(p.probe, p.spec, { image: 'authprobe:1.0', runId: 'abc123' });
}

const container = (pod: V1Pod) => pod.spec!.containers[0]!;

describe('buildProbePod: identity and ownership', () => {
  const pod = build({ serviceAccountName: 'dash-sa' });

  it('names and labels the pod after its probe and run', () => {
    expect(pod.metadata?.name).toBe('dashboard-probe-abc123');
    expect(pod.metadata?.namespace).toBe('team');
    expect(pod.metadata?.labels).toEqual({
      'app.kubernetes.io/managed-by': 'authprobe',
      'authprobe.io/probe': 'dashboard',
      'authprobe.io/run': 'abc123',
    });
  });

  it('is owned by the AuthProbe, so deleting the probe deletes its pods', () => {
    expect(pod.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'authprobe.io/v1alpha1',
        kind: 'AuthProbe',
        name: 'dashboard',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it('runs once, as the target service account, within a deadline', () => {
    expect(pod.spec?.serviceAccountName).toBe('dash-sa');
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.spec?.activeDeadlineSeconds).toBe(probePodDeadlineSeconds(30_000));
    expect(container(pod).args).toEqual(['probe', '--path', '/api', '--timeout', '30000']);
    expect(container(pod).image).toBe('authprobe:1.0');
    expect(container(pod).imagePullPolicy).toBe('IfNotPresent');
  });

  it('meets the restricted Pod Security Standard', () => {
    expect(pod.spec?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container(pod).securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.spec?.volumes ?? []).not.toContainEqual(
      expect.objectContaining({ hostPath: expect.anything() }),
    );
  });

  it('asks for tiny resources', () => {
    expect(container(pod).resources).toEqual({
      requests: { cpu: '10m', memory: '32Mi' },
      limits: { memory: '128Mi' },
    });
  });
});

describe('buildProbePod: token mount, as a consumer has it', () => {
  it('Projected by default relies on automount, so a disabled automount shows as TokenNotMounted', () => {
    const pod = build({ serviceAccountName: 'sa' });
    expect(pod.spec?.automountServiceAccountToken).toBeUndefined();
    expect(pod.spec?.volumes).toBeUndefined();
    expect(container(pod).volumeMounts).toBeUndefined();
  });

  it('Projected with expirationSeconds/audience declares the admission plugin’s volume itself', () => {
    const pod = build({ serviceAccountName: 'sa', token: { expirationSeconds: 600, audience: 'vault' } });
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.volumes).toEqual([
      {
        name: 'serviceaccount-token',
        projected: {
          defaultMode: 0o644,
          sources: [
            { serviceAccountToken: { path: 'token', expirationSeconds: 600, audience: 'vault' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            {
              downwardAPI: {
                items: [
                  { path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
                ],
              },
            },
          ],
        },
      },
    ]);
    expect(container(pod).volumeMounts).toEqual([
      {
        name: 'serviceaccount-token',
        mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
        readOnly: true,
      },
    ]);
  });

  it('Projected with only an audience gets the default lifetime', () => {
    const pod = build({ serviceAccountName: 'sa', token: { audience: 'vault' } });
    expect(pod.spec?.volumes?.[0]?.projected?.sources?.[0]?.serviceAccountToken?.expirationSeconds).toBe(
      3600,
    );
  });

  it('Secret mounts the secret (not optional) at the standard path with automount off', () => {
    const pod = build({ serviceAccountName: 'sa', token: { source: 'Secret', secretName: 'sa-token' } });
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.volumes).toEqual([
      { name: 'serviceaccount-token', secret: { secretName: 'sa-token', optional: false } },
    ]);
    expect(container(pod).volumeMounts?.[0]?.mountPath).toBe('/var/run/secrets/kubernetes.io/serviceaccount');
  });
});

describe('buildProbePod: spec and podTemplate', () => {
  it('passes path and timeout to the program and derives the deadline', () => {
    const pod = build({ serviceAccountName: 'sa', path: '/apis/apps/v1', timeout: '1m30s', interval: '10m' });
    expect(container(pod).args).toEqual(['probe', '--path', '/apis/apps/v1', '--timeout', '90000']);
    expect(pod.spec?.activeDeadlineSeconds).toBe(90 + 30);
  });

  it('applies every podTemplate field, keeping the operator’s labels', () => {
    const pod = build({
      serviceAccountName: 'sa',
      podTemplate: {
        image: 'registry.example/authprobe:2',
        resources: { requests: { cpu: 1 }, limits: { cpu: '200m', memory: '64Mi' } },
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ops', effect: 'NoSchedule' }],
        priorityClassName: 'low',
        imagePullSecrets: [{ name: 'regcred' }],
        labels: { team: 'ops', 'authprobe.io/probe': 'hijack' },
        annotations: { 'example.com/owner': 'ops' },
      },
    });
    expect(container(pod).image).toBe('registry.example/authprobe:2');
    expect(container(pod).resources).toEqual({
      requests: { cpu: '1', memory: '32Mi' },
      limits: { cpu: '200m', memory: '64Mi' },
    });
    expect(pod.spec?.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.spec?.tolerations).toEqual([
      { key: 'dedicated', operator: 'Equal', value: 'ops', effect: 'NoSchedule' },
    ]);
    expect(pod.spec?.priorityClassName).toBe('low');
    expect(pod.spec?.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(pod.metadata?.labels).toMatchObject({ team: 'ops', 'authprobe.io/probe': 'dashboard' });
    expect(pod.metadata?.annotations).toEqual({ 'example.com/owner': 'ops' });
  });
});

describe('names and run ids', () => {
  it.each([
    ['short', 'web', 'abc', 'web-probe-abc'],
    ['exactly fitting', 'a'.repeat(50), 'r1', `${'a'.repeat(50)}-probe-r1`],
    ['too long', 'b'.repeat(63), 'abcdefghij', `${'b'.repeat(46)}-probe-abcdefghij`],
    [
      'cut at a dash',
      `${'c'.repeat(45)}-x${'d'.repeat(20)}`,
      'abcdefghij',
      `${'c'.repeat(45)}-probe-abcdefghij`,
    ],
  ])('probePodName: %s', (_name, probeName, runId, expected) => {
    const name = probePodName(probeName, runId);
    expect(name).toBe(expected);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it('newRunId sorts by time and fits a label value', () => {
    const earlier = newRunId(1_700_000_000_000, () => 0.99);
    const later = newRunId(1_700_000_001_000, () => 0);
    expect(earlier < later).toBe(true);
    expect(later).toMatch(/^[a-z0-9]{1,10}$/);
  });

  it('a pod is overdue only after its deadline and a scheduling grace', () => {
    expect(probePodOverdueAfterMs(30_000)).toBe((30 + 30 + 30) * 1000);
  });
});
