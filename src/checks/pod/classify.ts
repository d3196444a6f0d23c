/**
 * The verdict on what a probe pod saw (its result, read from the termination message), or on a probe
 * pod that produced none (unschedulable, image errors, deadline, crashes).
 *
 * The rules (DESIGN.md): only a 401 proves a token invalid. A 403 proves authentication worked. Timeouts,
 * refused connections, TLS failures and 5xx say nothing about the token.
 */
import { ProbeReason } from '../../api/reasons.js';
import { provenInvalid, verdict, type Verdict } from '../../api/verdict.js';
import { serviceAccountUsername, type PodJson } from '../../kube/resources.js';
import { ProbeErrorCode, type HttpStep, type ProbeResult } from '../../probe/result.js';
import {
  capitalize,
  describeClaims,
  quote,
  SECRET_REJECTION_CAUSES,
  tokenDescription,
  type ClassifyContext,
} from '../verdicts.js';

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

// ---- The probe result ---------------------------------------------------------------------------

function tokenNotMounted(result: ProbeResult, ctx: ClassifyContext): Verdict {
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

function transportFailure(result: ProbeResult, step: Extract<HttpStep, { outcome: 'error' }>): Verdict {
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

function rejected(result: ProbeResult, ctx: ClassifyContext, httpStatus: number, latencyMs: number): Verdict {
  const evidence = { httpStatus, latencyMs };
  if (ctx.tokenSource === 'Secret' && ctx.legacyTokenInvalidSince !== undefined) {
    return provenInvalid(
      ProbeReason.TokenInvalidated,
      `The apiserver rejected the token in secret ${ctx.secretName ?? '(unnamed)'} (401): the secret ` +
        `carries kubernetes.io/legacy-token-invalid-since=${ctx.legacyTokenInvalidSince}, set by the ` +
        `legacy token cleaner because the token looked unused. It is rejected until the label is ` +
        `removed, and the secret will later be deleted. Remove the label to revalidate the token, or ` +
        `replace the secret (spec.heal.invalidatedLegacyToken).`,
      evidence,
    );
  }
  if (ctx.tokenSource === 'Secret') {
    return provenInvalid(
      ProbeReason.TokenRejected,
      `The apiserver rejected the token in secret ${ctx.secretName ?? '(unnamed)'} (401 Unauthorized)` +
        `${describeClaims(result.token)}. ${SECRET_REJECTION_CAUSES}`,
      evidence,
    );
  }
  return provenInvalid(
    ProbeReason.TokenRejected,
    `The apiserver rejected ${tokenDescription(ctx)} (401 Unauthorized)${describeClaims(result.token)}. The ` +
      `kubelet refreshes projected tokens only at 80% of their lifetime, so after a signing-key change ` +
      `running pods keep failing until then, while new pods get a valid token. Check the apiserver's ` +
      `--service-account-key-file and --service-account-signing-key-file; deleting secrets does not help.`,
    evidence,
  );
}

/** Who the token is: the SelfSubjectReview, else the user named in a 403 message. */
function authenticatedAs(result: ProbeResult): string | undefined {
  if (result.identity.outcome === 'identity') return result.identity.username;
  const step = result.authenticated;
  if (step.outcome === 'response' && step.httpStatus === 403) {
    // Only a service-account username is taken from the (untrusted) message.
    return /User "(system:serviceaccount:[a-z0-9.-]+:[a-z0-9.-]+)"/.exec(step.message ?? '')?.[1];
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
export function classifyProbe(result: ProbeResult, ctx: ClassifyContext): Verdict {
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
      `${capitalize(tokenDescription(ctx))} authenticates as ${identity}, not as ${expected}.` +
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
      `${capitalize(tokenDescription(ctx))} authenticates as ${who}, but GET ${result.path} is forbidden (403` +
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

type PodStatus = NonNullable<PodJson['status']>;

export interface PodFailureContext {
  /** The controller's own clock says the pod had its whole budget (timeout plus start-up slack). */
  overdue: boolean;
}

function waitingState(status: PodStatus): { reason?: string; message?: string } | undefined {
  return status.containerStatuses?.map((c) => c.state?.waiting).find((w) => w !== undefined);
}

function terminatedState(
  status: PodStatus,
): { reason?: string; message?: string; exitCode?: number } | undefined {
  return status.containerStatuses?.map((c) => c.state?.terminated).find((t) => t !== undefined);
}

/**
 * The verdict on a probe pod that has not produced a result, or undefined while it may still produce
 * one. Covers: unschedulable, image and container-creation errors, the deadline, evictions and crashes.
 */
export function classifyPodFailure(
  status: PodStatus | undefined,
  ctx: PodFailureContext,
): Verdict | undefined {
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
      ? `${terminated.reason ?? 'exit'} (exit code ${terminated.exitCode ?? 'unknown'})`
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
export function unreadableResultVerdict(parseError: string): Verdict {
  return verdict(
    ProbeReason.ProbePodFailed,
    'Unknown',
    `The probe pod finished but its result could not be read: ${quote(parseError)}. Is ` +
      `spec.podTemplate.image an authprobe image of the operator's version?`,
  );
}

/** The apiserver refused to create the probe pod (admission webhook, Pod Security, quota, RBAC). */
export function podCreateFailedVerdict(httpStatus: number, message: string): Verdict {
  return verdict(
    ProbeReason.ProbePodFailed,
    'Unknown',
    `The probe pod could not be created (${httpStatus}): ${quote(message)}.`,
    { httpStatus },
  );
}
