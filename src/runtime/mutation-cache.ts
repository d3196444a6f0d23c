import type { KubeObject } from '../kube/resources.js';
import { stripManagedFields } from './informer.js';

/**
 * Remembers objects this process just wrote until the informer's cache has caught up, so that a
 * reconcile triggered right after a status write does not act on the status from before it
 * (and, say, record the same probe twice). Resource versions are compared as numbers, as
 * client-go's mutation cache does; if they are not numeric the informer's copy wins.
 */
export class MutationCache<T extends KubeObject> {
  private readonly written = new Map<string, T>();

  remember(key: string, obj: T): void {
    this.written.set(key, stripManagedFields(obj));
  }

  forget(key: string): void {
    this.written.delete(key);
  }

  newest(key: string, cached: T): T {
    const mine = this.written.get(key);
    if (!mine) return cached;
    if (mine.metadata?.uid !== cached.metadata?.uid || !isNewer(mine, cached)) {
      this.written.delete(key);
      return cached;
    }
    return mine;
  }
}

function isNewer(a: KubeObject, b: KubeObject): boolean {
  try {
    return BigInt(a.metadata?.resourceVersion ?? '0') > BigInt(b.metadata?.resourceVersion ?? '0');
  } catch {
    return false;
  }
}
