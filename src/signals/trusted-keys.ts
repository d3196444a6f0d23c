import type { Logger } from 'pino';
import type { KubeApi } from '../kube/client.js';
import { errorMessage } from '../kube/errors.js';
import { sleep, systemClock } from '../runtime/clock.js';

/** Where the apiserver publishes the public keys it verifies service-account tokens with. */
export const JWKS_PATH = '/openid/v1/jwks';

/** A change of the trusted key set: key ids that appeared and key ids that left, at one time. */
export interface KeySetChange {
  added: string[];
  removed: string[];
  /** The keys trusted after the change. */
  trusted: ReadonlySet<string>;
  at: number;
  /** The first read: nothing left, every key is "added"; tokens outside the set are still dead. */
  first: boolean;
}

export interface TrustedKeysDeps {
  client: KubeApi;
  logger: Logger;
  now: () => number;
  /** Told about the first read and every change after it. */
  onChange: (change: KeySetChange) => void | Promise<void>;
  /** Told about the number of trusted keys after every successful read. */
  onRead?: (trusted: ReadonlySet<string>) => void;
}

/** The key ids of a JWKS document; undefined when it is not one. Never anything but `kid` is kept. */
export function keyIdsOf(document: unknown): Set<string> | undefined {
  const keys = (document as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) return undefined;
  const ids = new Set<string>();
  for (const key of keys) {
    const kid = (key as { kid?: unknown } | null)?.kid;
    if (typeof kid === 'string' && kid.length > 0 && kid.length <= 256) ids.add(kid);
  }
  return ids;
}

/**
 * The signing keys the apiserver trusts, as a watched fact: read from the published key set
 * (/openid/v1/jwks, readable by every service account through system:service-account-issuer-discovery)
 * at start, on a short poll and after a watch reconnect (a key change needs an apiserver restart).
 * A token whose `kid` is not in this set is rejected for that reason alone; a key id that leaves the set
 * is reported once, with the time it was first seen gone.
 */
export class TrustedKeys {
  private trusted: Set<string> | undefined;
  private readonly retired = new Map<string, number>();
  private reading: Promise<void> | undefined;
  private unavailableLogged = false;

  constructor(private readonly deps: TrustedKeysDeps) {}

  /** The trusted key ids; undefined until the set was read once (or when the apiserver publishes none). */
  current(): ReadonlySet<string> | undefined {
    return this.trusted;
  }

  /** When a key id was first seen missing from a set that had held it; undefined if never. */
  retiredAt(kid: string): number | undefined {
    return this.retired.get(kid);
  }

  /** Reads the set now; concurrent callers share one read. Failures keep the last known set. */
  refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Polls every `pollMs` until `signal` aborts (runs while this replica leads). */
  async run(pollMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.refresh();
      // sleep removes its listener from the term's signal each time (one left per poll would pile up).
      await sleep(systemClock, pollMs, signal);
    }
  }

  private async read(): Promise<void> {
    const { client, logger, now } = this.deps;
    let ids: Set<string> | undefined;
    try {
      ids = keyIdsOf(
        await client.get<unknown>(JWKS_PATH, {
          accept: 'application/jwk-set+json, application/json',
          timeoutMs: 5_000,
        }),
      );
    } catch (err) {
      if (!this.unavailableLogged) {
        logger.warn(
          { path: JWKS_PATH, err: errorMessage(err) },
          'could not read the apiserver trusted signing keys; key-aware detection waits (probes and heals go on)',
        );
        this.unavailableLogged = true;
      }
      return;
    }
    if (!ids || ids.size === 0) return;
    this.unavailableLogged = false;
    const previous = this.trusted;
    this.trusted = ids;
    this.deps.onRead?.(ids);
    const at = now();
    if (!previous) {
      logger.info({ keys: [...ids] }, 'trusted service-account signing keys');
      await this.deps.onChange({ added: [...ids], removed: [], trusted: ids, at, first: true });
      return;
    }
    const added = [...ids].filter((kid) => !previous.has(kid));
    const removed = [...previous].filter((kid) => !ids.has(kid));
    for (const kid of removed) this.retired.set(kid, at);
    for (const kid of added) this.retired.delete(kid);
    if (added.length || removed.length) {
      logger.info({ added, removed, keys: [...ids] }, 'trusted service-account signing keys changed');
      await this.deps.onChange({ added, removed, trusted: ids, at, first: false });
    }
  }
}
