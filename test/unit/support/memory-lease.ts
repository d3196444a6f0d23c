import { KubeApiError } from '../../../src/kube/errors.js';
import type { LeaseSpec, LeaseStore } from '../../../src/runtime/leader.js';

/**
 * An in-memory Lease with the apiserver's optimistic concurrency (409 on a stale resourceVersion).
 * `broken` makes reads and updates fail with 503, as while the apiserver is away.
 */
export class MemoryLease implements LeaseStore {
  spec: LeaseSpec | null = null;
  rv = 0;
  broken = false;
  describe = (): string => 'test/lease';
  async get() {
    if (this.broken) throw new KubeApiError(503, 'ServiceUnavailable', 'away');
    return this.spec ? { spec: { ...this.spec }, resourceVersion: String(this.rv) } : null;
  }
  async create(spec: LeaseSpec) {
    if (this.spec) throw new KubeApiError(409, 'AlreadyExists', 'exists');
    this.spec = { ...spec };
    return String(++this.rv);
  }
  async update(spec: LeaseSpec, resourceVersion: string) {
    if (this.broken) throw new KubeApiError(503, 'ServiceUnavailable', 'away');
    if (String(this.rv) !== resourceVersion) throw new KubeApiError(409, 'Conflict', 'stale');
    this.spec = { ...spec };
    return String(++this.rv);
  }
}
