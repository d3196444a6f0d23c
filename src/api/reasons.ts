/**
 * The operator's whole vocabulary, in one place: every condition reason, every Event reason, every
 * heal action and heal result. These strings are stable API: users alert on them, `kubectl get
 * authprobes` prints them, metrics carry them as labels. Add here; never inline a string elsewhere
 * (test/unit/api/vocabulary.test.ts fails when a literal reaches the event recorder or a condition).
 */

/** Reasons of the Ready condition that a check reaches: the verdict of a probe (status.lastProbe.outcome). */
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
  /** 401 and the token's key id (`kid`) is not among the keys the apiserver publishes as trusted. */
  SigningKeyRetired: 'SigningKeyRetired',
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
  /** spec.token.secretName is not of type kubernetes.io/service-account-token: never read, sent or changed. */
  SecretNotServiceAccountToken: 'SecretNotServiceAccountToken',
  /** The secret is the token secret of another ServiceAccount than spec.serviceAccountName: never used. */
  SecretForOtherServiceAccount: 'SecretForOtherServiceAccount',
  /** The secret's kubernetes.io/service-account.uid is not the account's current uid (it was recreated). */
  SecretForRecreatedServiceAccount: 'SecretForRecreatedServiceAccount',
  /** The AuthProbe is in a namespace the operator does not probe (its own, kube-system unless allowed). */
  NamespaceExcluded: 'NamespaceExcluded',
  /** spec.podTemplate asks for more than the cluster admin allows (image, priority, tolerations, ...). */
  ProbePodNotAllowed: 'ProbePodNotAllowed',
  /** The namespace has more AuthProbes than the operator's per-namespace limit; this one is not run. */
  AuthProbeLimitExceeded: 'AuthProbeLimitExceeded',
  /** check Copy: the Secret does not hold a copy of a token in the shape spec.copy names. */
  CopyNotReadable: 'CopyNotReadable',
  /** check Copy: the copy is used with a server that is not this cluster and not allowed by the admin. */
  CopyServerNotAllowed: 'CopyServerNotAllowed',
} as const;
export type ProbeReason = (typeof ProbeReason)[keyof typeof ProbeReason];

/** Reasons of the Ready condition that the healer sets in place of the probe's verdict. */
export const HealReason = {
  /** The token was replaced (or revalidated) and a new probe authenticates. */
  Healed: 'Healed',
  /** heal.maxPerHour, the cluster-wide budget or the back-off after a failed heal holds the heal back. */
  HealRateLimited: 'HealRateLimited',
  /** A heal was attempted and did not end with a working token. */
  HealFailed: 'HealFailed',
  /** TokenReview accepts the secret's token but the pod was rejected: the mounted copy is stale. */
  StaleMountedToken: 'StaleMountedToken',
  /** A projected token was rejected: replacing secrets does not help; restart pods or fix the key flags. */
  ProjectedTokenRejected: 'ProjectedTokenRejected',
  /**
   * The heal is proven needed but a precondition does not hold (the tokens controller is not proven to
   * work, the secret has finalizers): nothing is deleted; the message says what to fix.
   */
  HealBlocked: 'HealBlocked',
} as const;
export type HealReason = (typeof HealReason)[keyof typeof HealReason];

/** Every reason the Ready condition (and status.lastProbe.outcome) can carry. */
export type ReadyReason = ProbeReason | HealReason;

/**
 * The reason of the Event a verdict writes. A 401 whose cause is named in the condition (the signing key
 * left the trusted set) keeps the Event reason TokenRejected, so one alert rule catches every rejected
 * token; the Event's message starts with the cause.
 */
export function eventReasonOf(reason: ReadyReason): ReadyReason {
  return reason === ProbeReason.SigningKeyRetired ? ProbeReason.TokenRejected : reason;
}

/** Reasons of Events that tell a step rather than a verdict (a verdict's Event carries its ReadyReason). */
export const EventReason = {
  /** heal.policy is DryRun: what would have been done. */
  HealDryRun: 'HealDryRun',
  /** The operator's own TokenReview of the secret's current token confirmed the probe's 401. */
  TokenRejectionConfirmed: 'TokenRejectionConfirmed',
  /** The stale token secret was deleted (with uid and resourceVersion preconditions). */
  SecretDeleted: 'SecretDeleted',
  /** The secret changed after the rejection was confirmed: it was not deleted. */
  HealAborted: 'HealAborted',
  /** The replacement secret was created; the tokens controller fills it next. */
  SecretRecreated: 'SecretRecreated',
  /** Someone else recreated the secret first; the operator uses theirs. */
  SecretAdopted: 'SecretAdopted',
  /** The replacement holds a token that TokenReview accepts as the right account. */
  TokenIssued: 'TokenIssued',
  /** check Copy: a new token was written into the copy (only the token; every other byte as it was). */
  CopyRewritten: 'CopyRewritten',
  /** check Copy: the copy's token expires and could not be renewed; it says when it expires. */
  CopyRenewalFailed: 'CopyRenewalFailed',
  /** The legacy cleaner's label was removed (heal.invalidatedLegacyToken Revalidate). */
  TokenRevalidated: 'TokenRevalidated',
  /** Workloads that consume the secret were rolled (heal.restartWorkloads). */
  WorkloadsRestarted: 'WorkloadsRestarted',
  /** A heal interrupted by a crash or a leader change is being finished. */
  HealResumed: 'HealResumed',
  /** A probe after the heal authenticated with the new token. */
  HealConfirmed: 'HealConfirmed',
  /** Many probes across namespaces were rejected at once: likely a signing-key rotation or etcd restore. */
  SuspectedKeyRotation: 'SuspectedKeyRotation',
  /** A signing key left the apiserver's trusted set; the AuthProbes whose tokens it signed are checked. */
  SigningKeyRemoved: 'SigningKeyRemoved',
  /**
   * kube-controller-manager signs new tokens with a key the apiserver does not trust (a rotation done in
   * the wrong order): every heal would mint another dead token, so heals are paused.
   */
  SigningKeyUntrusted: 'SigningKeyUntrusted',
  /** kube-controller-manager's signing key is trusted again: heals resume. */
  SigningKeyTrusted: 'SigningKeyTrusted',
  /**
   * A heal intent the operator did not write (an annotation, or a status intent that does not match the
   * spec and the secret) was ignored.
   */
  HealIntentIgnored: 'HealIntentIgnored',
} as const;
export type EventReason = (typeof EventReason)[keyof typeof EventReason];

/** What a heal does (status.heals.lastAction, the `action` label of authprobe_heals_total). */
export const HealAction = {
  /** The stale token secret is replaced by a new one of the same name. */
  SecretRecreated: 'SecretRecreated',
  /** The legacy cleaner's kubernetes.io/legacy-token-invalid-since label is removed. */
  LabelRemoved: 'LabelRemoved',
  /** check Copy: a new token is written into the copy. */
  CopyRewritten: 'CopyRewritten',
  /** Consumers were restarted after the secret was replaced (status only, joined with "+"). */
  WorkloadsRestarted: 'WorkloadsRestarted',
} as const;
export type HealAction = (typeof HealAction)[keyof typeof HealAction];
/** status.heals.lastAction of a heal after which the consuming workloads were restarted. */
export const withWorkloadsRestarted = (action: HealAction): string =>
  `${action}+${HealAction.WorkloadsRestarted}`;
/** The heal kinds a policy can choose (the workload restart only follows a replacement). */
export type HealKind =
  typeof HealAction.SecretRecreated | typeof HealAction.LabelRemoved | typeof HealAction.CopyRewritten;

/** How a heal attempt ended: the `result` label of authprobe_heals_total. */
export const HealResult = {
  Succeeded: 'succeeded',
  Failed: 'failed',
  DryRun: 'dry-run',
  RateLimited: 'rate-limited',
  /** Proven needed, but a precondition did not hold (HealBlocked): nothing was changed. */
  Blocked: 'blocked',
} as const;
export type HealResult = (typeof HealResult)[keyof typeof HealResult];

/** status.heals.lastResult: where the last heal stands. */
export const HealProgress = {
  /** Replaced; the next probe confirms the new token. */
  AwaitingProbe: 'AwaitingProbe',
  /** A probe authenticated with the new token. */
  Confirmed: 'Confirmed',
  Failed: 'Failed',
} as const;
export type HealProgress = (typeof HealProgress)[keyof typeof HealProgress];

export const ConditionType = {
  /** Summary: does the token authenticate? */
  Ready: 'Ready',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];
