import { AsyncLocalStorage } from 'node:async_hooks';
import { NotLeaderError } from '../kube/errors.js';
import type { RequestFence } from '../kube/client.js';
import type { LeadershipTerm } from './leader.js';

/**
 * The leadership term a piece of work belongs to. The manager starts the controllers of a term
 * inside it, and every continuation of their work (awaits, timers, callbacks) carries it along,
 * so a request knows which term it is made for without every function passing it on.
 */
const terms = new AsyncLocalStorage<LeadershipTerm>();

export function runInTerm<T>(term: LeadershipTerm, fn: () => T): T {
  return terms.run(term, fn);
}

export function currentTerm(): LeadershipTerm | undefined {
  return terms.getStore();
}

/** A term that lasts until `signal` aborts: a process that runs without an election. */
export function unelectedTerm(signal: AbortSignal): LeadershipTerm {
  return { signal, valid: () => !signal.aborted };
}

/**
 * The fence of the controllers' client: a request made for a term that has ended (the lease was
 * lost, or the last renewal is older than the renew deadline by the monotonic clock) is refused
 * before it is sent, and one in flight is aborted when its term ends. A write made outside any
 * term is refused too: only the leader's work changes the cluster. Reads outside a term (none
 * expected) pass.
 */
export function leadershipFence(
  onRefused: (method: string, path: string, why: string) => void,
): RequestFence {
  return (method, path) => {
    const term = currentTerm();
    const write = method !== 'GET';
    const why = !term
      ? write
        ? 'made outside a leadership term'
        : undefined
      : term.valid()
        ? undefined
        : 'made after this replica stopped leading';
    if (why) {
      onRefused(method, path, why);
      throw new NotLeaderError(`${method} ${path} refused: ${why}`);
    }
    return term?.signal;
  };
}
