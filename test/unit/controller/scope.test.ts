import { describe, expect, it } from '@jest/globals';
import type { AuthProbe } from '../../../src/api/types.js';
import { outOfScope, type ProbeScope } from '../../../src/controller/scope.js';

const probe = (namespace: string, name: string, created: string): AuthProbe => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace, uid: `${namespace}-${name}`, creationTimestamp: created },
  spec: { serviceAccountName: 'sa' },
});
const scope: ProbeScope = {
  operatorNamespace: 'authprobe-system',
  excludedNamespaces: ['kube-system'],
  maxPerNamespace: 2,
};

describe('outOfScope', () => {
  it('never runs an AuthProbe in the operator’s own namespace', () => {
    const p = probe('authprobe-system', 'mine', '2026-11-29T08:00:00Z');
    expect(outOfScope(p, { ...scope, excludedNamespaces: [] }, [p])?.reason).toBe('NamespaceExcluded');
  });

  it('reports kube-system (excluded by default) and runs it once allowed', () => {
    const p = probe('kube-system', 'dns', '2026-11-29T08:00:00Z');
    expect(outOfScope(p, scope, [p])?.message).toContain('--excluded-namespaces');
    expect(outOfScope(p, { ...scope, excludedNamespaces: [] }, [p])).toBeUndefined();
  });

  it('runs the oldest AuthProbes of a namespace up to the limit', () => {
    const a = probe('team', 'a', '2026-11-29T08:00:00Z');
    const b = probe('team', 'b', '2026-11-29T08:00:01Z');
    const c = probe('team', 'c', '2026-11-29T08:00:02Z');
    const all = [c, a, b];
    expect(outOfScope(a, scope, all)).toBeUndefined();
    expect(outOfScope(b, scope, all)).toBeUndefined();
    expect(outOfScope(c, scope, all)?.reason).toBe('AuthProbeLimitExceeded');
    expect(outOfScope(c, { ...scope, maxPerNamespace: 0 }, all)).toBeUndefined();
  });
});
