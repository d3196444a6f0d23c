import {
  ANNOTATION_SERVICE_ACCOUNT_NAME,
  ANNOTATION_SERVICE_ACCOUNT_UID,
  LABEL_LEGACY_TOKEN_INVALID_SINCE,
  LABEL_LEGACY_TOKEN_LAST_USED,
  SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
} from '../api/labels.js';
import type { ResolvedSpec } from '../api/defaults.js';
import type { AuthProbe, HealIntent } from '../api/types.js';
import type { KubeApi } from '../kube/client.js';
import { errorMessage, isNotFound, KubeApiError } from '../kube/errors.js';
import { apiPaths, type SecretJson } from '../kube/resources.js';

export type { HealIntent } from '../api/types.js';

/**
 * Where versions before 0.2 kept the intent. A namespace user can write annotations, so the operator
 * never acts on it: one found is reported (HealIntentIgnored) and left alone.
 */
export const ANNOTATION_HEAL_INTENT = 'authprobe.io/heal-intent';
/** Held by an AuthProbe while a heal of its secret is in flight: deleting it first finishes the heal. */
export const FINALIZER_HEAL_IN_FLIGHT = 'authprobe.io/heal-in-flight';
/** Marks secrets this operator created, so an admin can tell them apart. */
export const ANNOTATION_HEALED_BY = 'authprobe.io/replaced-at';

/** Labels and annotations that belong to the stale token, not to the user: never copied. */
const NOT_COPIED_LABELS = new Set([LABEL_LEGACY_TOKEN_INVALID_SINCE, LABEL_LEGACY_TOKEN_LAST_USED]);
const NOT_COPIED_ANNOTATIONS = new Set([
  ANNOTATION_SERVICE_ACCOUNT_UID,
  'kubectl.kubernetes.io/last-applied-configuration',
]);

export function intentFor(secret: SecretJson, serviceAccountName: string, now: Date): HealIntent {
  const pick = (map: Record<string, string> | undefined, skip: Set<string>) =>
    Object.fromEntries(Object.entries(map ?? {}).filter(([key]) => !skip.has(key)));
  return {
    secretName: secret.metadata.name,
    staleUid: secret.metadata.uid ?? '',
    staleResourceVersion: secret.metadata.resourceVersion ?? '',
    serviceAccountName,
    labels: pick(secret.metadata.labels, NOT_COPIED_LABELS),
    annotations: pick(secret.metadata.annotations, NOT_COPIED_ANNOTATIONS),
    ...(secret.metadata.ownerReferences?.length ? { ownerReferences: secret.metadata.ownerReferences } : {}),
    startedAt: now.toISOString(),
  };
}

/**
 * The replacement: same name, type and service-account annotation, the user's labels and
 * annotations; no data, so the tokens controller issues a fresh token, ca.crt and namespace.
 */
export function replacementSecret(
  intent: HealIntent,
  namespace: string,
  now: Date,
): SecretJson & { apiVersion: string; kind: string } {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: intent.secretName,
      namespace,
      labels: intent.labels ?? {},
      ...(intent.ownerReferences?.length ? { ownerReferences: intent.ownerReferences } : {}),
      annotations: {
        ...intent.annotations,
        [ANNOTATION_SERVICE_ACCOUNT_NAME]: intent.serviceAccountName,
        [ANNOTATION_HEALED_BY]: now.toISOString(),
      },
    },
    type: SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
  };
}

/**
 * Why an intent found in status must not be acted on, or undefined when it matches the AuthProbe: it
 * names the spec's secret and account, and the stale secret's identity. A status intent was written by
 * the operator, unless someone with rights on authprobes/status wrote it; either way nothing is done
 * for an intent that the spec does not back.
 */
export function intentMismatch(intent: HealIntent, spec: ResolvedSpec): string | undefined {
  if (typeof intent.secretName !== 'string' || typeof intent.staleUid !== 'string' || !intent.staleUid) {
    return 'it is malformed';
  }
  if (spec.token.source !== 'Secret') return 'spec.token.source is not Secret';
  if (intent.secretName !== spec.token.secretName) {
    return `it names secret ${intent.secretName}, the spec ${spec.token.secretName}`;
  }
  if (intent.serviceAccountName !== spec.serviceAccountName) {
    return `it names ServiceAccount ${intent.serviceAccountName}, the spec ${spec.serviceAccountName}`;
  }
  return undefined;
}

/**
 * Where the intent is kept between "about to delete" and "replacement confirmed": status.healIntent,
 * which only the operator writes, plus a finalizer on the AuthProbe so that deleting it mid-heal first
 * finishes the heal instead of leaving the secret deleted.
 */
export class IntentStore {
  constructor(private readonly client: Pick<KubeApi, 'get' | 'mergePatch'>) {}

  read(probe: AuthProbe): HealIntent | undefined {
    return probe.status?.healIntent ?? undefined;
  }

  /** The finalizer first: a finalizer without an intent is harmless, an intent without one is not. */
  async save(probe: AuthProbe, intent: HealIntent): Promise<void> {
    await this.setFinalizer(probe, true);
    await this.patchStatus(probe, intent);
  }

  async clear(probe: AuthProbe): Promise<void> {
    await this.patchStatus(probe, null);
    await this.setFinalizer(probe, false);
  }

  /** Adds or removes the heal-in-flight finalizer, keeping every other one (optimistic concurrency). */
  async setFinalizer(probe: AuthProbe, present: boolean): Promise<void> {
    const path = apiPaths.authProbe(probe.metadata.namespace, probe.metadata.name);
    for (let attempt = 0; ; attempt++) {
      let current: AuthProbe;
      try {
        current = await this.client.get<AuthProbe>(path, { timeoutMs: 10_000 });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      const finalizers = current.metadata.finalizers ?? [];
      if (finalizers.includes(FINALIZER_HEAL_IN_FLIGHT) === present) return;
      const next = present
        ? [...finalizers, FINALIZER_HEAL_IN_FLIGHT]
        : finalizers.filter((f) => f !== FINALIZER_HEAL_IN_FLIGHT);
      try {
        await this.client.mergePatch(
          path,
          { metadata: { resourceVersion: current.metadata.resourceVersion, finalizers: next } },
          { timeoutMs: 15_000 },
        );
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        // Someone else changed the object meanwhile: read it again (a few times, then let the queue retry).
        if (!(err instanceof KubeApiError && err.status === 409) || attempt >= 2) throw err;
      }
    }
  }

  private async patchStatus(probe: AuthProbe, intent: HealIntent | null): Promise<void> {
    try {
      await this.client.mergePatch(
        apiPaths.authProbeStatus(probe.metadata.namespace, probe.metadata.name),
        { status: { healIntent: intent } },
        { timeoutMs: 15_000 },
      );
    } catch (err) {
      if (intent === null && isNotFound(err)) return;
      throw err instanceof KubeApiError
        ? err
        : new Error(`could not record the heal intent: ${errorMessage(err)}`);
    }
  }
}
