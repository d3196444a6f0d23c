/**
 * The AuthProbe API (authprobe.io/v1alpha1) as TypeScript sees it.
 *
 * These interfaces describe objects as the apiserver stores them: fields that have a default in the CRD
 * are optional here (a user may omit them), and `withDefaults` in ./defaults.ts fills them in.
 * `crds/authprobe.io_authprobes.yaml` is the other half of this file; test/unit/api/crd-drift.test.ts
 * fails when the two disagree on a field name, on which fields are required, on an enum or on a default.
 */

export const AUTHPROBE_GROUP = 'authprobe.io';
export const AUTHPROBE_VERSION = 'v1alpha1';
export const AUTHPROBE_API_VERSION = `${AUTHPROBE_GROUP}/${AUTHPROBE_VERSION}`;
export const AUTHPROBE_KIND = 'AuthProbe';
export const AUTHPROBE_PLURAL = 'authprobes';

/** Enum values are arrays first, so the CRD's `enum` lists can be compared with them at test time. */
export const TOKEN_SOURCES = ['Projected', 'Secret'] as const;
export type TokenSource = (typeof TOKEN_SOURCES)[number];

/**
 * How a probe proves the token: a pod that runs as the service account and uses the token as a
 * consumer would (Pod), the operator's own TokenReview of a secret's token (TokenReview), or a copy of
 * the token held in another system's Secret, asked of the server it is used with (Copy).
 */
export const CHECK_MODES = ['Pod', 'TokenReview', 'Copy'] as const;
export type CheckMode = (typeof CHECK_MODES)[number];

/** The shapes a copied token is kept in (src/copies/copy-format.ts reads and rewrites them). */
export const COPY_FORMATS = ['Token', 'Kubeconfig', 'ArgoCDCluster'] as const;
export type CopyFormat = (typeof COPY_FORMATS)[number];

/** Where a new token for a copy comes from. */
export const RENEW_SOURCES = ['TokenRequest', 'Secret'] as const;
export type RenewSource = (typeof RENEW_SOURCES)[number];

export const HEAL_POLICIES = ['Auto', 'DryRun', 'Disabled'] as const;
export type HealPolicy = (typeof HEAL_POLICIES)[number];

export const INVALIDATED_LEGACY_TOKEN_ACTIONS = ['Recreate', 'Revalidate', 'Report'] as const;
export type InvalidatedLegacyTokenAction = (typeof INVALIDATED_LEGACY_TOKEN_ACTIONS)[number];

export const TOLERATION_OPERATORS = ['Exists', 'Equal'] as const;
export type TolerationOperator = (typeof TOLERATION_OPERATORS)[number];

export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
export type TaintEffect = (typeof TAINT_EFFECTS)[number];

export const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;
export type ConditionStatus = (typeof CONDITION_STATUSES)[number];

/** The metadata fields the operator reads or writes, as they arrive in JSON (times are RFC 3339 strings). */
export interface AuthProbeMetadata {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

export interface AuthProbe {
  apiVersion: typeof AUTHPROBE_API_VERSION;
  kind: typeof AUTHPROBE_KIND;
  metadata: AuthProbeMetadata;
  spec: AuthProbeSpec;
  status?: AuthProbeStatus;
}

export interface AuthProbeSpec {
  serviceAccountName: string;
  token?: TokenSpec;
  /** Pod (default) or TokenReview (source Secret only: no pod, the operator reviews the token). */
  check?: CheckMode;
  /** Go-style duration, e.g. "5m". */
  interval?: string;
  /** Go-style duration, e.g. "30s"; shorter than interval. */
  timeout?: string;
  path?: string;
  heal?: HealSpec;
  podTemplate?: ProbePodTemplate;
  keepPods?: number;
  /** check Copy: the copy of the account's token held in another system's Secret. */
  copy?: CopySpec;
}

/** A copy of a ServiceAccount token kept in a Secret of the AuthProbe's namespace (check Copy). */
export interface CopySpec {
  /** The Secret holding the copy. */
  secretName: string;
  /** Token (a key holding the bearer token; default), Kubeconfig, or ArgoCDCluster. */
  format?: CopyFormat;
  /** Token: the key holding the token (default "token"); Kubeconfig: the key holding it (default "kubeconfig"). */
  key?: string;
  /** Kubeconfig: the user whose token is the copy (default: the current context's user). */
  user?: string;
  /**
   * The account's namespace on the server the copy is used with (default: the AuthProbe's). Another
   * namespace only for a copy used with another cluster.
   */
  serviceAccountNamespace?: string;
  /** How a new token is made when the copy is proven invalid or about to expire. */
  renew?: CopyRenewSpec;
}

export interface CopyRenewSpec {
  /** TokenRequest (default): a new token from the TokenRequest API; Secret: the account's token secret. */
  from?: RenewSource;
  /** TokenRequest: the lifetime asked for, 600 to 31536000 seconds (default 86400). */
  expirationSeconds?: number;
  /** Secret: the account's token secret (kubernetes.io/service-account-token). */
  secretName?: string;
  /**
   * TokenRequest for a copy used with another cluster: a Secret (key "kubeconfig") with a credential for
   * that cluster that may create serviceaccounts/token for the account.
   */
  credentialsSecretName?: string;
}

export interface TokenSpec {
  source?: TokenSource;
  /** Required exactly when source is Secret. */
  secretName?: string;
  /** Projected only: when set (or audience is set) the probe pod declares its own token volume. */
  expirationSeconds?: number;
  /** Projected only. */
  audience?: string;
}

export interface HealSpec {
  policy?: HealPolicy;
  invalidatedLegacyToken?: InvalidatedLegacyTokenAction;
  restartWorkloads?: boolean;
  maxPerHour?: number;
}

/** A Kubernetes quantity as the CRD accepts it (int-or-string), e.g. "10m", "32Mi" or 1. */
export type Quantity = string | number;

export interface ResourceList {
  cpu?: Quantity;
  memory?: Quantity;
}

export interface ProbeResources {
  requests?: ResourceList;
  limits?: ResourceList;
}

export interface Toleration {
  key?: string;
  operator?: TolerationOperator;
  value?: string;
  effect?: TaintEffect;
  tolerationSeconds?: number;
}

export interface LocalObjectReference {
  name: string;
}

export interface ProbePodTemplate {
  image?: string;
  resources?: ProbeResources;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  priorityClassName?: string;
  imagePullSecrets?: LocalObjectReference[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface AuthProbeStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  lastProbe?: LastProbe;
  /** RFC 3339. */
  lastSuccessTime?: string;
  consecutiveFailures?: number;
  heals?: HealStatus;
  /** A heal in flight (written by the operator only; see HealIntent). */
  healIntent?: HealIntent;
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  /** RFC 3339, second precision (see toApiTime). */
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface LastProbe {
  /** RFC 3339: when the probe finished. */
  time?: string;
  /** One of the Ready condition's reasons (src/api/reasons.ts). */
  outcome?: string;
  httpStatus?: number;
  latencyMs?: number;
  pod?: string;
  /** The username the token authenticated as. */
  identity?: string;
  message?: string;
  /** The authprobe.io/probe-now value this probe answered (TokenReview checks; pods carry their own). */
  probeNow?: string;
  /** The key id (JWT `kid`) of the secret's token this probe checked; never the token. */
  tokenKeyID?: string;
  /** The issuer (JWT `iss`) of that token. */
  tokenIssuer?: string;
}

export interface HealStatus {
  count?: number;
  lastTime?: string;
  lastAction?: string;
  lastResult?: string;
  /** RFC 3339 times of the heals in the last hour, oldest first (enforces maxPerHour across restarts). */
  history?: string[];
}

/** metav1.OwnerReference. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/**
 * A heal in flight, kept in status (which only the operator writes) from just before the stale secret is
 * deleted until the heal ends, so that whichever replica leads next finishes it. Metadata only, never
 * the token; checked against the spec and the secret before anything is done with it.
 */
export interface HealIntent {
  secretName: string;
  /** The stale secret; a delete is only ever made with this uid and resourceVersion as preconditions. */
  staleUid: string;
  staleResourceVersion: string;
  serviceAccountName: string;
  /** RFC 3339. */
  startedAt: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}
