import type { KubeApi } from '../kube/client.js';
import { isConflict } from '../kube/errors.js';
import { getOrUndefined } from '../kube/resources.js';

/** One heal attempt: when, and which secret (`namespace/name`). */
export interface HealRecord {
  at: number;
  secret: string;
}

const HOUR_MS = 3_600_000;
/** More than a busy hour of the default budget; the oldest are dropped beyond it. */
const MAX_RECORDS = 2_000;

/**
 * Heal attempts of the last hour, kept in a ConfigMap in the operator's own namespace (which only the
 * operator writes), so that the cluster-wide budget and a secret's heal history survive an operator
 * restart, a leader change, and the deletion and re-creation of an AuthProbe.
 */
export class LedgerStore {
  /** This process's writes, one at a time (a burst of heals would otherwise conflict with itself). */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: Pick<KubeApi, 'get' | 'post' | 'mergePatch'>,
    private readonly namespace: string,
    private readonly name = 'authprobe-heal-ledger',
  ) {}

  private get path(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/configmaps/${encodeURIComponent(this.name)}`;
  }

  async load(now: number): Promise<HealRecord[]> {
    const map = await getOrUndefined<ConfigMap>(this.client, this.path, { timeoutMs: 10_000 });
    return recent(parse(map?.data?.['heals']), now);
  }

  /**
   * Writes `change` applied to the stored records (read-modify-write with a resourceVersion
   * precondition, again on a conflict), and returns what is stored now.
   */
  update(now: number, change: (records: HealRecord[]) => HealRecord[]): Promise<HealRecord[]> {
    const next = this.writing.then(
      () => this.write(now, change),
      () => this.write(now, change),
    );
    this.writing = next.catch(() => undefined);
    return next;
  }

  private async write(now: number, change: (records: HealRecord[]) => HealRecord[]): Promise<HealRecord[]> {
    for (let attempt = 0; ; attempt++) {
      const map = await getOrUndefined<ConfigMap>(this.client, this.path, { timeoutMs: 10_000 });
      const next = recent(change(recent(parse(map?.data?.['heals']), now)), now).slice(-MAX_RECORDS);
      const data = { heals: JSON.stringify(next) };
      try {
        if (!map) {
          await this.client.post(
            `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/configmaps`,
            {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata: {
                name: this.name,
                namespace: this.namespace,
                labels: { 'app.kubernetes.io/managed-by': 'authprobe' },
              },
              data,
            },
            { timeoutMs: 10_000 },
          );
        } else {
          await this.client.mergePatch(
            this.path,
            { metadata: { resourceVersion: map.metadata?.resourceVersion }, data },
            { timeoutMs: 10_000 },
          );
        }
        return next;
      } catch (err) {
        // Another writer got there first (a create racing a create answers 409 AlreadyExists): again.
        if (!isConflict(err) || attempt >= 4) throw err;
      }
    }
  }
}

interface ConfigMap {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

function parse(text: string | undefined): HealRecord[] {
  if (!text) return [];
  try {
    const value = JSON.parse(text) as unknown;
    if (!Array.isArray(value)) return [];
    return value.filter(
      (r): r is HealRecord =>
        typeof r === 'object' &&
        r !== null &&
        typeof (r as HealRecord).at === 'number' &&
        typeof (r as HealRecord).secret === 'string',
    );
  } catch {
    return [];
  }
}

function recent(records: HealRecord[], now: number): HealRecord[] {
  return records.filter((r) => now - r.at < HOUR_MS).sort((a, b) => a.at - b.at);
}
