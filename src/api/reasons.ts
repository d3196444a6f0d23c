/**
 * Every condition reason and event reason, in one place. Reasons are CamelCase, stable API: users
 * alert on them and `kubectl get authprobes` prints them. Add here, never inline a string elsewhere.
 */

/** Reasons of the Ready condition: the verdict of a probe (also status.lastProbe.outcome). */
export const ProbeReason = {
  /** Before the first probe finished (Ready=Unknown). */
  Probing: 'Probing',
  /** A probe pod exists and has not finished yet. */
  ProbePending: 'ProbePending',
  /** The apiserver accepted the token. */
  Authenticated: 'Authenticated',
  /** The token authenticates but the probed path is forbidden (403): the token is fine, RBAC is not. */
  AuthenticatedForbidden: 'AuthenticatedForbidden',
  /** 401: the apiserver does not accept the token. */
  TokenRejected: 'TokenRejected',
  /** 401 and the secret carries kubernetes.io/legacy-token-invalid-since. */
  TokenInvalidated: 'TokenInvalidated',
  /** The token authenticates as another account than the one probed. */
  TokenIdentityMismatch: 'TokenIdentityMismatch',
  /** No token file in the probe pod: automount off, or the ServiceAccount admission plugin is off. */
  TokenNotMounted: 'TokenNotMounted',
  /** The token secret exists but holds no token (never filled by the tokens controller). */
  TokenNotIssued: 'TokenNotIssued',
  /** spec.token.secretName does not exist (controller-side check). */
  SecretNotFound: 'SecretNotFound',
  /** spec.serviceAccountName does not exist (controller-side check). */
  ServiceAccountNotFound: 'ServiceAccountNotFound',
  /** The mounted ca.crt does not verify the apiserver's certificate (or is missing). */
  CACertMismatch: 'CACertMismatch',
  /** The pod could not reach the apiserver (refused, unreachable, DNS, TLS failures other than trust). */
  APIServerUnreachable: 'APIServerUnreachable',
  /** The apiserver answered 429 or 5xx: it is reachable but failing; says nothing about the token. */
  APIServerError: 'APIServerError',
  /** The probe did not finish within spec.timeout. */
  ProbeTimedOut: 'ProbeTimedOut',
  /** The probe pod could not be created, scheduled, pulled or run, or produced no readable result. */
  ProbePodFailed: 'ProbePodFailed',
  /** The spec could not be interpreted (only when it bypassed the CRD's validation). */
  InvalidSpec: 'InvalidSpec',
} as const;
export type ProbeReason = (typeof ProbeReason)[keyof typeof ProbeReason];

/** Reasons of Events and heal status about healing (used by the healer). */
export const HealReason = {
  /** The token was replaced (or revalidated) and a new probe authenticates. */
  Healed: 'Healed',
  /** heal.policy is DryRun: what would have been done. */
  HealDryRun: 'HealDryRun',
  /** heal.maxPerHour or the cluster-wide budget is exhausted. */
  HealRateLimited: 'HealRateLimited',
  HealFailed: 'HealFailed',
  /** TokenReview accepts the secret's token but the pod was rejected: the mounted copy is stale. */
  StaleMountedToken: 'StaleMountedToken',
  /** A projected token was rejected: replacing secrets does not help; restart pods or fix the key flags. */
  ProjectedTokenRejected: 'ProjectedTokenRejected',
  /** Many probes across namespaces were rejected at once: likely a signing-key rotation or etcd restore. */
  SuspectedKeyRotation: 'SuspectedKeyRotation',
  /** The operator's own credential is rejected: it cannot act until the kubelet re-issues its token. */
  OperatorCredentialRejected: 'OperatorCredentialRejected',
} as const;
export type HealReason = (typeof HealReason)[keyof typeof HealReason];

/** Actions recorded in status.heals.lastAction. */
export const HealAction = {
  SecretRecreated: 'SecretRecreated',
  LabelRemoved: 'LabelRemoved',
  WorkloadsRestarted: 'WorkloadsRestarted',
} as const;
export type HealAction = (typeof HealAction)[keyof typeof HealAction];

export const ConditionType = {
  /** Summary: does the token authenticate? */
  Ready: 'Ready',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];
