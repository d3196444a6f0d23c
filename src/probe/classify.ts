/**
 * From what a probe saw to a verdict a person can act on: the Ready condition's status, reason and
 * message, and whether the token is proven invalid (the only thing that may ever lead to healing).
 *
 * The rules (DESIGN.md): only a 401 proves a token invalid. A 403 proves authentication worked. Timeouts,
 * refused connections, TLS failures and 5xx say nothing about the token.
 *
 * Ready's status is three-valued on purpose: True when a consumer with this mount can authenticate,
 * False when the probe proved it cannot (rejected, not mounted, wrong account, untrusted CA), Unknown
 * when the probe could not tell (apiserver unreachable or failing, pod never ran).
 *
 * Messages never contain a token: they are built from status codes, names and public claims only, and
 * texts that come from outside (apiserver messages, pod messages) pass through redactSecrets.
 */
import type { V1PodStatus } from '@kubernetes/client-node';
import { ProbeReason } from '../api/reasons.js';
import type { ConditionStatus, TokenSource } from '../api/types.js';
import {
  ProbeErrorCode,
  redactSecrets,
  type HttpStep,
  type ProbeResult,
  type TokenClaims,
} from './result.js';

export interface ClassifyContext {
  namespace: string;
  serviceAccountName: string;
  tokenSource: TokenSource;
  /** spec.token.secretName, for source Secret. */
  secretName?: string;
  /** Value of the secret's kubernetes.io/legacy-token-invalid-since label, when it has one. */
  legacyTokenInvalidSince?: string;
}

export interface ProbeVerdict {
  reason: ProbeReason;
  /** Status of the Ready condition. Not a boolean: Unknown is a real answer (see above). */
  readyStatus: ConditionStatus;
  message: string;
  /** True only for a 401 on the request with the token. Nothing else may lead to a heal. */
  tokenProvenInvalid: boolean;
  /** Evidence for status.lastProbe, when the probe got that far. */
  httpStatus?: number;
  latencyMs?: number;
  identity?: string;
}

/** The username a service account's token authenticates as. */
export function serviceAccountUsername(namespace: string, serviceAccountName: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccountName}`;
}

/** Node's codes for "the certificate chain does not lead to a CA we were given". */
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

const MAX_QUOTED = 300;

/** Text from outside (apiserver, kubelet) shortened and redacted before it enters a message. */
function quote(text: string | undefined): string {
  if (!text) return '';
  const clean = redactSecrets(text.replace(/\s+/g, ' ').trim());
  return clean.length > MAX_QUOTED ? `${clean.slice(0, MAX_QUOTED - 1)}…` : clean;
}

function tokenDescription(ctx: ClassifyContext): string {
  return ctx.tokenSource === 'Secret'
    ? `the token in secret ${ctx.secretName ?? '(unnamed)'}`
    : `the projected token of ServiceAccount ${ctx.serviceAccountName}`;
}

function verdict(
  reason: ProbeReason,
  readyStatus: ConditionStatus,
  message: string,
  evidence: Pick<ProbeVerdict, 'httpStatus' | 'latencyMs' | 'identity'> = {},
): ProbeVerdict {
  const v: ProbeVerdict = { reason, readyStatus, message, tokenProvenInvalid: false };
  if (evidence.httpStatus !== undefined) v.httpStatus = evidence.httpStatus;
  if (evidence.latencyMs !== undefined) v.latencyMs = evidence.latencyMs;
  if (evidence.identity !== undefined) v.identity = evidence.identity;
  return v;
}

// ---- Verdicts the controller reaches without a probe result -------------------------------------

export function probingVerdict(): ProbeVerdict {
  return verdict(ProbeReason.Probing, 'Unknown', 'Waiting for the first probe to finish.');
}

export function probePendingVerdict(podName: string): ProbeVerdict {
  return verdict(ProbeReason.ProbePending, 'Unknown', `Probe pod ${podName} is running.`);
}

export function serviceAccountNotFoundVerdict(ctx: ClassifyContext): ProbeVerdict {
  return verdict(
    ProbeReason.ServiceAccountNotFound,
    'False',
    `ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName} does not exist: no pod can run as it and ` +
      `no token is issued for it. Create it, or fix spec.serviceAccountName.`,
  );
}

export function secretNotFoundVerdict(ctx: ClassifyContext): ProbeVerdict {
  return verdict(
    ProbeReason.SecretNotFound,
    'False',
    `Secret ${ctx.namespace}/${ctx.secretName ?? '(unnamed)'} does not exist, so workloads that mount it ` +
      `cannot start. On Kubernetes 1.24 and later nobody creates token secrets automatically: create a ` +
      `Secret of type kubernetes.io/service-account-token annotated ` +
      `kubernetes.io/service-account.name: ${ctx.serviceAccountName}, or fix spec.token.secretName.`,
  );
}

// ---- The probe result ---------------------------------------------------------------------------

function tokenNotMounted(result: ProbeResult, ctx: ClassifyContext): ProbeVerdict {
  const state = result.files.tokenFile;
  if (state === 'unreadable') {
    return verdict(
      ProbeReason.TokenNotMounted,
      'False',
      `The token file is mounted but the probe (user 65532) cannot read it; check the volume's defaultMode.`,
    );
  }
  if (ctx.tokenSource === 'Secret') {
    return verdict(
      ProbeReason.TokenNotMounted,
      'False',
      `Secret ${ctx.secretName ?? '(unnamed)'} has no token (the token file is ${state}). The tokens ` +
        `controller of kube-controller-manager fills it only for a Secret of type ` +
        `kubernetes.io/service-account-token annotated kubernetes.io/service-account.name: ` +
        `${ctx.serviceAccountName}, while that ServiceAccount exists; check the secret's type and ` +
        `annotation, and that kube-controller-manager runs with --service-account-private-key-file.`,
    );
  }
  return verdict(
    ProbeReason.TokenNotMounted,
    'False',
    `No token is mounted at /var/run/secrets/kubernetes.io/serviceaccount (the token file is ${state}), ` +
      `so workloads of ServiceAccount ${ctx.serviceAccountName} cannot authenticate. Either ` +
      `automountServiceAccountToken is false (on the ServiceAccount or the pod), or the apiserver does ` +
      `not run the ServiceAccount admission plugin, which adds the token volume: check the apiserver's ` +
      `--enable-admission-plugins and --disable-admission-plugins flags.`,
  );
}

function transportFailure(result: ProbeResult, step: Extract<HttpStep, { outcome: 'error' }>): ProbeVerdict {
  const { code, message } = step.error;
  const where = result.apiserver ? `the apiserver at ${result.apiserver}` : 'the apiserver';
  const detail = `${code}: ${quote(message)}`;
  const nothingAboutToken = 'This says nothing about the token.';
  if (UNTRUSTED_CERTIFICATE_CODES.has(code)) {
    const missing = result.files.caFile !== 'present';
    return verdict(
      ProbeReason.CACertMismatch,
      'False',
      missing
        ? `ca.crt is ${result.files.caFile} in the mount, so ${where} cannot be verified (${detail}); ` +
            `consumers fail the same way. The token itself was not tested.`
        : `The mounted ca.crt does not verify the certificate of ${where} (${detail}); consumers fail ` +
            `the same way. A token secret's ca.crt is written by kube-controller-manager ` +
            `(--root-ca-file); a projected mount takes it from the kube-root-ca.crt ConfigMap. The token ` +
            `itself was not tested.`,
      { latencyMs: step.latencyMs },
    );
  }
  if (code === ProbeErrorCode.ResponseTimeout) {
    return verdict(
      ProbeReason.ProbeTimedOut,
      'Unknown',
      `${where} accepted the connection but did not answer in time (${detail}). ${nothingAboutToken}`,
      { latencyMs: step.latencyMs },
    );
  }
  if (code === ProbeErrorCode.NoApiserverAddress) {
    return verdict(ProbeReason.APIServerUnreachable, 'Unknown', `${quote(message)}. ${nothingAboutToken}`);
  }
  return verdict(
    ProbeReason.APIServerUnreachable,
    'Unknown',
    `The probe pod could not reach ${where} (${detail}). Check NetworkPolicies and egress rules for the ` +
      `namespace, and the apiserver's health. ${nothingAboutToken}`,
    { latencyMs: step.latencyMs },
  );
}

function describeClaims(claims: TokenClaims | undefined): string {
  if (!claims) return '';
  const parts = [
    claims.issuer && `issuer ${claims.issuer}`,
    claims.keyId && `key id ${claims.keyId}`,
    claims.issuedAt && `issued ${claims.issuedAt}`,
    claims.expiresAt && `expires ${claims.expiresAt}`,
  ].filter(Boolean);
  return parts.length > 0 ? ` (token ${parts.join(', ')})` : '';
}

const SECRET_REJECTION_CAUSES =
  `Usual causes: the key that signed it was removed from the apiserver's --service-account-key-file, ` +
  `etcd was restored from another cluster, or the ServiceAccount was deleted and recreated. Nothing ` +
  `regenerates a token secret on current clusters; replacing the secret issues a new token.`;

function rejected(
  result: ProbeResult,
  ctx: ClassifyContext,
  httpStatus: number,
  latencyMs: number,
): ProbeVerdict {
  const evidence = { httpStatus, latencyMs };
  const proven = (v: ProbeVerdict): ProbeVerdict => ({ ...v, tokenProvenInvalid: true });
  if (ctx.tokenSource === 'Secret' && ctx.legacyTokenInvalidSince !== undefined) {
    return proven(
      verdict(
        ProbeReason.TokenInvalidated,
        'False',
        `The apiserver rejected the token in secret ${ctx.secretName ?? '(unnamed)'} (401): the secret ` +
          `carries kubernetes.io/legacy-token-invalid-since=${ctx.legacyTokenInvalidSince}, set by the ` +
          `legacy token cleaner because the token looked unused. It is rejected until the label is ` +
          `removed, and the secret will later be deleted. Remove the label to revalidate the token, or ` +
          `replace the secret (spec.heal.invalidatedLegacyToken).`,
        evidence,
      ),
    );
  }
  if (ctx.tokenSource === 'Secret') {
    return proven(
      verdict(
        ProbeReason.TokenRejected,
        'False',
        `The apiserver rejected the token in secret ${ctx.secretName ?? '(unnamed)'} (401 Unauthorized)` +
          `${describeClaims(result.token)}. ${SECRET_REJECTION_CAUSES}`,
        evidence,
      ),
    );
  }
  return proven(
    verdict(
      ProbeReason.TokenRejected,
      'False',
      `The apiserver rejected ${tokenDescription(ctx)} (401 Unauthorized)${describeClaims(result.token)}. The ` +
        `kubelet refreshes projected tokens only at 80% of their lifetime, so after a signing-key change ` +
        `running pods keep failing until then, while new pods get a valid token. Check the apiserver's ` +
        `--service-account-key-file and --service-account-signing-key-file; deleting secrets does not help.`,
      evidence,
    ),
  );
}

/** Who the token is: the SelfSubjectReview, else the user named in a 403 message. */
function authenticatedAs(result: ProbeResult): string | undefined {
  if (result.identity.outcome === 'identity') return result.identity.username;
  const step = result.authenticated;
  if (step.outcome === 'response' && step.httpStatus === 403) {
    return /User "([^"]+)"/.exec(step.message ?? '')?.[1];
  }
  return undefined;
}

function identityNote(result: ProbeResult): string {
  const step = result.identity;
  if (step.outcome === 'identity') return '';
  if (step.outcome === 'response')
    return ` (identity not confirmed: SelfSubjectReview answered ${step.httpStatus})`;
  if (step.outcome === 'error') return ` (identity not confirmed: ${step.error.code})`;
  return ` (identity not confirmed: ${step.why})`;
}

function mountNotes(result: ProbeResult): string {
  return result.files.namespaceFile === 'present'
    ? ''
    : ` Note: the namespace file is ${result.files.namespaceFile}; clients that read it will fail.`;
}

/**
 * The verdict on a probe pod's result. `ctx` is what the controller knows about the AuthProbe and the
 * secret; the expected identity is derived from it.
 */
export function classifyProbe(result: ProbeResult, ctx: ClassifyContext): ProbeVerdict {
  if (result.files.tokenFile !== 'present') return tokenNotMounted(result, ctx);

  const step = result.authenticated;
  if (step.outcome === 'skipped') {
    return verdict(
      ProbeReason.ProbePodFailed,
      'Unknown',
      `The probe skipped the request with the token: ${quote(step.why)}.`,
    );
  }
  if (step.outcome === 'error') return transportFailure(result, step);

  const { httpStatus, latencyMs } = step;
  if (httpStatus === 401) return rejected(result, ctx, httpStatus, latencyMs);
  if (httpStatus === 429 || httpStatus >= 500) {
    return verdict(
      ProbeReason.APIServerError,
      'Unknown',
      `The apiserver answered ${httpStatus}${step.reason ? ` ${step.reason}` : ''} to GET ${result.path}` +
        `${step.message ? `: ${quote(step.message)}` : ''}. It is reachable but failing; this says nothing ` +
        `about the token.`,
      { httpStatus, latencyMs },
    );
  }

  // Anything else got past authentication: the token is accepted. Is it the account we expect?
  const expected = serviceAccountUsername(ctx.namespace, ctx.serviceAccountName);
  const identity = authenticatedAs(result);
  const evidence = { httpStatus, latencyMs, ...(identity !== undefined ? { identity } : {}) };
  if (identity !== undefined && identity !== expected) {
    return verdict(
      ProbeReason.TokenIdentityMismatch,
      'False',
      `${tokenDescription(ctx)} authenticates as ${identity}, not as ${expected}.` +
        (ctx.tokenSource === 'Secret'
          ? ` The secret holds another account's token: check its kubernetes.io/service-account.name annotation.`
          : ''),
      evidence,
    );
  }
  const who = identity ?? `an unconfirmed user${identityNote(result)}`;
  if (httpStatus === 403) {
    return verdict(
      ProbeReason.AuthenticatedForbidden,
      'True',
      `${tokenDescription(ctx)} authenticates as ${who}, but GET ${result.path} is forbidden (403` +
        `${step.message ? `: ${quote(step.message)}` : ''}). The token is fine; grant the permission with ` +
        `RBAC if the workload needs it, or probe a path every authenticated user may read, such as /api.` +
        mountNotes(result),
      evidence,
    );
  }
  const answer =
    httpStatus >= 200 && httpStatus < 300 ? `${httpStatus}` : `${httpStatus} (after authentication)`;
  return verdict(
    ProbeReason.Authenticated,
    'True',
    `${capitalize(tokenDescription(ctx))} authenticates as ${who}: GET ${result.path} answered ${answer} in ` +
      `${latencyMs}ms.${mountNotes(result)}`,
    evidence,
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---- Probe pods that produced no result ---------------------------------------------------------

/** Container waiting reasons that mean the container will not start without a change. */
const STUCK_WAITING_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'CrashLoopBackOff',
]);

export interface PodFailureContext {
  /** The controller's own clock says the pod had its whole budget (timeout plus start-up slack). */
  overdue: boolean;
}

function waitingState(status: V1PodStatus): { reason?: string; message?: string } | undefined {
  return status.containerStatuses?.map((c) => c.state?.waiting).find((w) => w !== undefined);
}

function terminatedState(
  status: V1PodStatus,
): { reason?: string; message?: string; exitCode: number } | undefined {
  return status.containerStatuses?.map((c) => c.state?.terminated).find((t) => t !== undefined);
}

/**
 * The verdict on a probe pod that has not produced a result, or undefined while it may still produce
 * one. Covers: unschedulable, image and container-creation errors, the deadline, evictions and crashes.
 */
export function classifyPodFailure(
  status: V1PodStatus | undefined,
  ctx: PodFailureContext,
): ProbeVerdict | undefined {
  const s = status ?? {};
  const waiting = waitingState(s);
  const waitingText = waiting?.reason
    ? ` Its container was waiting: ${waiting.reason}${waiting.message ? ` (${quote(waiting.message)})` : ''}.`
    : '';

  if (s.reason === 'DeadlineExceeded') {
    return verdict(
      ProbeReason.ProbeTimedOut,
      'Unknown',
      `The probe pod did not finish within its deadline (activeDeadlineSeconds).${waitingText} ` +
        `See kubectl describe pod for events such as FailedMount.`,
    );
  }
  const unschedulable = s.conditions?.find(
    (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
  );
  if (unschedulable) {
    return verdict(
      ProbeReason.ProbePodFailed,
      'Unknown',
      `The probe pod cannot be scheduled: ${quote(unschedulable.message) || 'no node fits'}. Adjust ` +
        `spec.podTemplate (nodeSelector, tolerations, resources, priorityClassName).`,
    );
  }
  if (waiting?.reason && STUCK_WAITING_REASONS.has(waiting.reason)) {
    return verdict(
      ProbeReason.ProbePodFailed,
      'Unknown',
      `The probe container cannot start: ${waiting.reason}${waiting.message ? ` (${quote(waiting.message)})` : ''}.` +
        (waiting.reason.includes('Image') ? ' Check spec.podTemplate.image and imagePullSecrets.' : ''),
    );
  }
  if (s.phase === 'Failed') {
    const terminated = terminatedState(s);
    const why = terminated
      ? `${terminated.reason ?? 'exit'} (exit code ${terminated.exitCode})`
      : `${s.reason ?? 'unknown reason'}${s.message ? `: ${quote(s.message)}` : ''}`;
    return verdict(ProbeReason.ProbePodFailed, 'Unknown', `The probe pod failed without a result: ${why}.`);
  }
  if (ctx.overdue && s.phase !== 'Succeeded') {
    return verdict(
      ProbeReason.ProbeTimedOut,
      'Unknown',
      `The probe pod did not produce a result in time (phase ${s.phase ?? 'unknown'}).${waitingText} ` +
        `See kubectl describe pod for events such as FailedMount.`,
    );
  }
  return undefined;
}

/** A pod that finished but whose termination message is not a readable probe result. */
export function unreadableResultVerdict(parseError: string): ProbeVerdict {
  return verdict(
    ProbeReason.ProbePodFailed,
    'Unknown',
    `The probe pod finished but its result could not be read: ${quote(parseError)}. Is ` +
      `spec.podTemplate.image an authprobe image of the operator's version?`,
  );
}

/** The apiserver refused to create the probe pod (admission webhook, Pod Security, quota, RBAC). */
export function podCreateFailedVerdict(httpStatus: number, message: string): ProbeVerdict {
  return verdict(
    ProbeReason.ProbePodFailed,
    'Unknown',
    `The probe pod could not be created (${httpStatus}): ${quote(message)}.`,
    { httpStatus },
  );
}

// ---- The controller-side check (spec.check TokenReview) -----------------------------------------

/** What the operator's TokenReview of a secret's token came to. */
export type TokenReviewCheck =
  | { kind: 'reviewed'; authenticated: true; username: string; latencyMs: number }
  | { kind: 'reviewed'; authenticated: false; error?: string; latencyMs: number; claims?: TokenClaims }
  /** The review could not be made: transport failure (status undefined) or an HTTP error. */
  | { kind: 'failed'; status?: number; message: string };

export function tokenNotIssuedVerdict(ctx: ClassifyContext): ProbeVerdict {
  return verdict(
    ProbeReason.TokenNotIssued,
    'False',
    `Secret ${ctx.namespace}/${ctx.secretName ?? '(unnamed)'} holds no token: the tokens controller fills only ` +
      `secrets of type kubernetes.io/service-account-token annotated kubernetes.io/service-account.name: ` +
      `${ctx.serviceAccountName}, for a ServiceAccount that exists. Check the type and the annotation.`,
  );
}

/**
 * Classifies a TokenReview of a secret's token. Only "authenticated: false" proves the token
 * invalid (the healer still confirms it with a review of its own before touching anything); a
 * review that could not be made says nothing about the token.
 */
export function classifyTokenReview(check: TokenReviewCheck, ctx: ClassifyContext): ProbeVerdict {
  const secret = `the token in secret ${ctx.secretName ?? '(unnamed)'}`;
  if (check.kind === 'failed') {
    if (check.status === undefined) {
      return verdict(
        ProbeReason.APIServerUnreachable,
        'Unknown',
        `The operator could not reach the apiserver to review ${secret}: ${quote(check.message)}. This says ` +
          `nothing about the token.`,
      );
    }
    if (check.status === 403) {
      return verdict(
        ProbeReason.APIServerError,
        'Unknown',
        `The operator may not create TokenReviews (403: ${quote(check.message)}). Grant its service account ` +
          `create on tokenreviews.authentication.k8s.io (the Helm chart does), or use check: Pod.`,
        { httpStatus: check.status },
      );
    }
    return verdict(
      ProbeReason.APIServerError,
      'Unknown',
      `The apiserver answered ${check.status} to the TokenReview of ${secret}: ${quote(check.message)}. It is ` +
        `reachable but failing; this says nothing about the token.`,
      { httpStatus: check.status },
    );
  }
  const { latencyMs } = check;
  if (!check.authenticated) {
    const why = check.error ? `: ${quote(check.error)}` : '';
    if (ctx.legacyTokenInvalidSince !== undefined) {
      return {
        ...verdict(
          ProbeReason.TokenInvalidated,
          'False',
          `TokenReview rejected ${secret}${why}: the secret carries kubernetes.io/legacy-token-invalid-since=` +
            `${ctx.legacyTokenInvalidSince}, set by the legacy token cleaner because the token looked unused. ` +
            `It is rejected until the label is removed, and the secret will later be deleted. Remove the ` +
            `label to revalidate the token, or replace the secret (spec.heal.invalidatedLegacyToken).`,
          { latencyMs },
        ),
        tokenProvenInvalid: true,
      };
    }
    return {
      ...verdict(
        ProbeReason.TokenRejected,
        'False',
        `TokenReview rejected ${secret}${why}${describeClaims(check.claims)}; a request with it gets 401 ` +
          `Unauthorized. ${SECRET_REJECTION_CAUSES}`,
        { latencyMs },
      ),
      tokenProvenInvalid: true,
    };
  }
  const expected = serviceAccountUsername(ctx.namespace, ctx.serviceAccountName);
  const evidence = { latencyMs, identity: check.username };
  if (check.username !== expected) {
    return verdict(
      ProbeReason.TokenIdentityMismatch,
      'False',
      `${capitalize(secret)} authenticates as ${check.username}, not as ${expected}. The secret holds another ` +
        `account's token: check its kubernetes.io/service-account.name annotation.`,
      evidence,
    );
  }
  return verdict(
    ProbeReason.Authenticated,
    'True',
    `${capitalize(secret)} authenticates as ${check.username} (TokenReview, ${latencyMs}ms).`,
    evidence,
  );
}
