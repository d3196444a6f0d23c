import type { Logger } from 'pino';
import { EventReason } from '../api/reasons.js';
import type { EventSink, EventTarget } from '../events/recorder.js';
import type { OperatorMetrics } from '../metrics/metrics.js';
import type { KeySetChange } from './trusted-keys.js';

export interface SigningKeySignalDeps {
  recorder: EventSink;
  metrics: Pick<OperatorMetrics, 'trustedSigningKeys' | 'signingKeysRetired' | 'signingKeyUntrusted'>;
  logger: Logger;
  /** Where the cluster-level Events go: the operator's own namespace. */
  operatorNamespace: string;
}

/**
 * The cluster-level story of the signing keys, on the operator's namespace: which key left the
 * apiserver's trusted set, when, and how many AuthProbes' token secrets it broke; and whether
 * kube-controller-manager signs with a key the apiserver trusts (when not, heals are paused).
 */
export class SigningKeySignal {
  private signerUntrusted = false;

  constructor(private readonly deps: SigningKeySignalDeps) {}

  private get target(): EventTarget {
    const ns = this.deps.operatorNamespace;
    return { apiVersion: 'v1', kind: 'Namespace', name: ns, namespace: ns };
  }

  trustedKeysRead(trusted: ReadonlySet<string>): void {
    this.deps.metrics.trustedSigningKeys.set(trusted.size);
  }

  /** A key left the set; `affected` are the AuthProbes (namespace/name) whose last checked token it signed. */
  async keysRetired(change: KeySetChange, affected: readonly string[]): Promise<void> {
    if (!change.removed.length) return;
    this.deps.metrics.signingKeysRetired.inc(change.removed.length);
    const shown = affected.slice(0, 10).join(', ');
    await this.deps.recorder.record(
      this.target,
      'Warning',
      EventReason.SigningKeyRemoved,
      `Signing key ${change.removed.join(', ')} left the apiserver's trusted keys at ${new Date(change.at).toISOString()} ` +
        `(now trusted: ${[...change.trusted].join(', ')}). ${affected.length} AuthProbe token secret(s) carry ` +
        `tokens it signed and no longer authenticate${affected.length ? ` (${shown}${affected.length > 10 ? ', ...' : ''})` : ''}: ` +
        `they are checked now, whatever their interval, and healed by their own rules. Running pods whose ` +
        `projected tokens were issued before that time carry tokens it signed until the kubelet refreshes them ` +
        `(at 80% of their lifetime): restart those that fail with 401 meanwhile; no secret replaces them.`,
    );
    this.deps.logger.warn(
      { removed: change.removed, affected: affected.length },
      'signing key left the trusted set; checking the AuthProbes whose tokens it signed',
    );
  }

  /** After every canary fill: the key kube-controller-manager signs with, and whether it is trusted. */
  async signerChecked(keyID: string, trusted: boolean, trustedKeys: ReadonlySet<string>): Promise<void> {
    if (trusted === !this.signerUntrusted) return;
    this.signerUntrusted = !trusted;
    this.deps.metrics.signingKeyUntrusted.set(trusted ? 0 : 1);
    if (!trusted) {
      await this.deps.recorder.record(
        this.target,
        'Warning',
        EventReason.SigningKeyUntrusted,
        `kube-controller-manager signs new token secrets with key ${keyID}, which the apiserver does not trust ` +
          `(it trusts ${[...trustedKeys].join(', ')}). Every replaced secret would get another rejected token, so ` +
          `heals are paused and nothing is deleted. The key rotation was done in the wrong order: add the new ` +
          `public key to kube-apiserver's --service-account-key-file first. Heals resume once the keys agree.`,
      );
      this.deps.logger.error(
        { signer: keyID, trusted: [...trustedKeys] },
        'tokens controller signs with an untrusted key: heals paused',
      );
    } else {
      await this.deps.recorder.record(
        this.target,
        'Normal',
        EventReason.SigningKeyTrusted,
        `kube-controller-manager signs with key ${keyID}, which the apiserver trusts again: heals resume.`,
      );
      this.deps.logger.info({ signer: keyID }, 'tokens controller key trusted again: heals resume');
    }
  }
}
