/**
 * Label and annotation keys: ours, and the Kubernetes ones the operator reads or writes.
 * One place, so that a key is never spelled twice.
 */

/** On probe pods: who manages them (value `authprobe`). */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'authprobe';
/** On probe pods: the AuthProbe they belong to. */
export const LABEL_PROBE = 'authprobe.io/probe';
/** On probe pods: the probe run they carry out. */
export const LABEL_RUN = 'authprobe.io/run';

/** On probe pods: the AuthProbe generation the pod checks (the schedule reads it back). */
export const ANNOTATION_CHECK_GENERATION = 'authprobe.io/generation';
/** On probe pods: the probe-now value the pod answers (the schedule reads it back). */
export const ANNOTATION_CHECK_PROBE_NOW = 'authprobe.io/probe-now-handled';
/**
 * On probe pods: the key id (`kid`) and issuer of the token the operator read from the secret when it
 * started the pod (never the token). Only a hint for naming a rejection and fanning out on a key change;
 * nothing is ever deleted on it.
 */
export const ANNOTATION_CHECK_TOKEN_KEY_ID = 'authprobe.io/token-key-id';
export const ANNOTATION_CHECK_TOKEN_ISSUER = 'authprobe.io/token-issuer';

/** On an AuthProbe: changing its value asks for a probe now. */
export const ANNOTATION_PROBE_NOW = 'authprobe.io/probe-now';

/** On token secrets: which ServiceAccount the tokens controller issues the token for. */
export const ANNOTATION_SERVICE_ACCOUNT_NAME = 'kubernetes.io/service-account.name';
/** On token secrets: the UID of that ServiceAccount, filled by the tokens controller. */
export const ANNOTATION_SERVICE_ACCOUNT_UID = 'kubernetes.io/service-account.uid';
/** Set by the legacy token cleaner; the apiserver rejects the secret's token while it is present. */
export const LABEL_LEGACY_TOKEN_INVALID_SINCE = 'kubernetes.io/legacy-token-invalid-since';
/** Set by the apiserver on the day a legacy token was last used. */
export const LABEL_LEGACY_TOKEN_LAST_USED = 'kubernetes.io/legacy-token-last-used';

export const SECRET_TYPE_SERVICE_ACCOUNT_TOKEN = 'kubernetes.io/service-account-token';
