/**
 * heal.restartWorkloads: after a heal, every Deployment, StatefulSet and DaemonSet of the namespace
 * whose pods consume the secret (volume, projected volume, env, envFrom) is rolled the way
 * `kubectl rollout restart` does it, and only those; one Event names them.
 */
import { describe, expect, it } from '@jest/globals';
import { restartConsumers, RESTARTED_AT_ANNOTATION } from '../../../src/heal/workloads.js';
import type { HealContext } from '../../../src/heal/procedures/procedure.js';
import type { EventSink } from '../../../src/events/recorder.js';

type PodSpec = Record<string, unknown>;
const workload = (name: string, spec: PodSpec) => ({ metadata: { name }, spec: { template: { spec } } });
const byVolume = {
  volumes: [{ name: 't', secret: { secretName: 'app-token' } }],
  containers: [{ name: 'c' }],
};
const byProjected = {
  volumes: [{ name: 't', projected: { sources: [{ secret: { name: 'app-token' } }] } }],
  containers: [{ name: 'c' }],
};
const byEnv = {
  containers: [
    { name: 'c', env: [{ name: 'T', valueFrom: { secretKeyRef: { name: 'app-token', key: 'token' } } }] },
  ],
};
const byEnvFrom = {
  initContainers: [{ name: 'i', envFrom: [{ secretRef: { name: 'app-token' } }] }],
  containers: [],
};
const unrelated = {
  volumes: [{ name: 't', secret: { secretName: 'other-token' } }],
  containers: [{ name: 'c' }],
};

describe('restartConsumers', () => {
  it('rolls the Deployments, StatefulSets and DaemonSets that consume the secret, and only those', async () => {
    const lists: Record<string, unknown[]> = {
      deployments: [workload('web', byVolume), workload('other', unrelated)],
      statefulsets: [workload('db', byEnv), workload('cache', unrelated)],
      daemonsets: [workload('agent', byProjected), workload('logger', byEnvFrom)],
    };
    const patches: Array<{ path: string; patch: unknown }> = [];
    const client = {
      get: async <T>(path: string) => ({ items: lists[path.split('/').pop() as string] ?? [] }) as T,
      mergePatch: async <T>(path: string, patch: unknown) => {
        patches.push({ path, patch });
        return {} as T;
      },
    };
    const events: string[] = [];
    const recorder: EventSink = {
      record: async (_t, _type, reason, message) => void events.push(`${reason}: ${message}`),
    };
    const now = Date.UTC(2026, 10, 29, 12, 0, 0);
    const ctx = { probe: { metadata: { namespace: 'ns', name: 'p' } }, target: {} } as unknown as HealContext;
    const restarted = await restartConsumers(
      { client: client as never, recorder, now: () => now },
      ctx,
      'app-token',
    );
    expect(restarted).toEqual(['Deployment/web', 'StatefulSet/db', 'DaemonSet/agent', 'DaemonSet/logger']);
    expect(patches.map((p) => p.path)).toEqual([
      '/apis/apps/v1/namespaces/ns/deployments/web',
      '/apis/apps/v1/namespaces/ns/statefulsets/db',
      '/apis/apps/v1/namespaces/ns/daemonsets/agent',
      '/apis/apps/v1/namespaces/ns/daemonsets/logger',
    ]);
    for (const { patch } of patches) {
      expect(patch).toEqual({
        spec: {
          template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: '2026-11-29T12:00:00.000Z' } } },
        },
      });
    }
    expect(events).toEqual([
      'WorkloadsRestarted: Restarted Deployment/web, StatefulSet/db, DaemonSet/agent, DaemonSet/logger, which consume secret app-token, so they pick up the new token.',
    ]);
  });

  it('restarts nothing and records no Event when no workload consumes the secret', async () => {
    const client = {
      get: async <T>() => ({ items: [workload('other', unrelated)] }) as T,
      mergePatch: async () => {
        throw new Error('no patch expected');
      },
    };
    const events: string[] = [];
    const recorder: EventSink = { record: async (_t, _type, reason) => void events.push(reason) };
    const ctx = { probe: { metadata: { namespace: 'ns', name: 'p' } }, target: {} } as unknown as HealContext;
    expect(
      await restartConsumers({ client: client as never, recorder, now: Date.now }, ctx, 'app-token'),
    ).toEqual([]);
    expect(events).toEqual([]);
  });
});
