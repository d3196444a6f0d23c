import {
  ANNOTATION_SERVICE_ACCOUNT_NAME,
  ANNOTATION_SERVICE_ACCOUNT_UID,
  LABEL_LEGACY_TOKEN_INVALID_SINCE,
  LABEL_LEGACY_TOKEN_LAST_USED,
  SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
} from '../api/labels.js';
import type { AuthProbe } from '../api/types.js';
import type { KubeApi } from '../kube/client.js';
import { errorMessage, isNotFound, KubeApiError } from '../kube/errors.js';
import { apiPaths, type SecretJson } from '../kube/resources.js';

/**
 * What survives a heal: persisted on the AuthProbe before the secret is deleted, so the next
 * leader can finish a heal that a crash interrupted. Holds metadata only, never the token.
 */
export interface HealIntent {
  secretName: string;
  /** The stale secret; a delete is only ever made with this uid and resourceVersion as preconditions. */
  staleUid: string;
  staleResourceVersion: string;
  serviceAccountName: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startedAt: string;
}

export const ANNOTATION_HEAL_INTENT = 'authprobe.io/heal-intent';
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
      labels: intent.labels,
      annotations: {
        ...intent.annotations,
        [ANNOTATION_SERVICE_ACCOUNT_NAME]: intent.serviceAccountName,
        [ANNOTATION_HEALED_BY]: now.toISOString(),
      },
    },
    type: SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
  };
}

export function parseIntent(text: string | undefined): HealIntent | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as HealIntent;
    return typeof value.secretName === 'string' && typeof value.staleUid === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where the intent is kept between "about to delete" and "replacement confirmed": an annotation on the
 * AuthProbe, written before the delete and removed when the heal ends either way.
 */
export class IntentStore {
  constructor(private readonly client: Pick<KubeApi, 'mergePatch'>) {}

  read(probe: AuthProbe): HealIntent | undefined {
    return parseIntent(probe.metadata.annotations?.[ANNOTATION_HEAL_INTENT]);
  }

  save(probe: AuthProbe, intent: HealIntent): Promise<void> {
    return this.write(probe, JSON.stringify(intent));
  }

  clear(probe: AuthProbe): Promise<void> {
    return this.write(probe, null);
  }

  private async write(probe: AuthProbe, value: string | null): Promise<void> {
    try {
      await this.client.mergePatch(
        apiPaths.authProbe(probe.metadata.namespace, probe.metadata.name),
        { metadata: { annotations: { [ANNOTATION_HEAL_INTENT]: value } } },
        { timeoutMs: 15_000 },
      );
    } catch (err) {
      if (value === null && isNotFound(err)) return;
      throw err instanceof KubeApiError
        ? err
        : new Error(`could not record the heal intent: ${errorMessage(err)}`);
    }
  }
}
