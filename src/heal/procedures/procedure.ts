import type { Logger } from 'pino';
import type { ResolvedSpec } from '../../api/defaults.js';
import type { HealKind } from '../../api/reasons.js';
import type { AuthProbe } from '../../api/types.js';
import { verdict as makeVerdict, type Verdict } from '../../api/verdict.js';
import { HealReason } from '../../api/reasons.js';
import type { EventSink, EventTarget } from '../../events/recorder.js';
import type { KubeApi } from '../../kube/client.js';
import type { SecretJson } from '../../kube/resources.js';
import type { IntentStore } from '../intent.js';

/** The AuthProbe a heal acts for. */
export interface HealContext {
  probe: AuthProbe;
  spec: ResolvedSpec;
  target: EventTarget;
  /**
   * When this heal began confirming the rejection (epoch ms): the tokens-controller proof it relies on
   * must have started after that, so a controller that broke (or switched keys) meanwhile is noticed.
   */
  startedAt?: number;
}

/** What the procedures share: the API, Events, the intent store and the clock. */
export interface HealServices {
  client: KubeApi;
  recorder: EventSink;
  logger: Logger;
  intents: IntentStore;
  now: () => number;
  /** How long to wait for the tokens controller to fill a new secret. */
  fillTimeoutMs: number;
  /** Proof that the tokens controller fills secrets right now; asked before anything is deleted. */
  canary?: { check(notBefore?: number): Promise<{ ok: true } | { ok: false; message: string }> };
}

/** How a procedure ended; the healer turns it into status, Events, metrics and budget. */
export type ProcedureResult =
  /** The token works again; `action` is what status.heals.lastAction records. */
  | { kind: 'healed'; action: string; verdict: Verdict }
  /** Attempted and not done; counts against the back-off. */
  | { kind: 'failed'; message: string }
  /** Not attempted after all (the secret changed under us); check again at once. */
  | { kind: 'aborted'; verdict: Verdict }
  /** Not attempted: a precondition does not hold (HealBlocked); nothing was changed. */
  | { kind: 'blocked'; verdict: Verdict };

/**
 * One kind of heal (replace a token secret, remove the cleaner's label; later, write a new token into a
 * copy). Every kind acts only on the secret the healer just proved stale, with that secret's uid and
 * resourceVersion as preconditions, and confirms the result before it says healed.
 */
export interface HealProcedure {
  readonly kind: HealKind;
  begin(ctx: HealContext, secret: SecretJson): Promise<ProcedureResult>;
}

/** Calls `attempt` every `everyMs` until it returns a value or `deadline` (epoch ms) passes. */
export async function pollUntil<T>(
  now: () => number,
  deadline: number,
  attempt: () => Promise<T | undefined>,
  everyMs = 500,
): Promise<T | undefined> {
  for (;;) {
    const value = await attempt();
    if (value !== undefined || now() >= deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A heal that must not start: Ready=False, HealBlocked, with what to fix. */
export function blocked(message: string): ProcedureResult {
  return { kind: 'blocked', verdict: makeVerdict(HealReason.HealBlocked, 'False', message) };
}
