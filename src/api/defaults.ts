import { parseDuration } from './duration.js';
import { ProbeReason } from './reasons.js';
import type {
  AuthProbeSpec,
  CheckMode,
  CopyFormat,
  CopySpec,
  RenewSource,
  HealPolicy,
  InvalidatedLegacyTokenAction,
  ProbePodTemplate,
  TokenSource,
} from './types.js';

/**
 * The CRD's defaults, as values. The apiserver applies the CRD's copy; `withDefaults` applies this one
 * (objects stored before a default existed, and unit tests, never went through the apiserver's
 * defaulting). The drift test checks that the two copies are equal.
 *
 * `timeout` has no CRD default on purpose: when it is unset it follows the interval
 * (defaultTimeoutMs), so that `interval: 10s` alone is a valid spec.
 */
export const SPEC_DEFAULTS = {
  token: { source: 'Projected' },
  check: 'Pod',
  interval: '5m',
  path: '/api',
  heal: { policy: 'Auto', invalidatedLegacyToken: 'Recreate', restartWorkloads: false, maxPerHour: 3 },
  keepPods: 3,
} as const satisfies Omit<DefaultedSpec, 'serviceAccountName' | 'podTemplate' | 'token' | 'timeout'> & {
  token: Pick<DefaultedSpec['token'], 'source'>;
};
/** The timeout when spec.timeout is unset: 30s, or half the interval when that is shorter. */
export const DEFAULT_TIMEOUT_MS = 30_000;
export function defaultTimeoutMs(intervalMs: number): number {
  return Math.min(DEFAULT_TIMEOUT_MS, Math.floor(intervalMs / 2));
}
/**
 * Lifetime of an explicitly projected token when only `audience` is set. Not a CRD default on purpose:
 * an unset expirationSeconds means "rely on automount", see TokenSpec.expirationSeconds.
 */
export const DEFAULT_PROJECTED_EXPIRATION_SECONDS = 3600;

/** A copy's renewal when copy.renew is unset: a TokenRequest token that lives a day, renewed at half. */
export const COPY_RENEW_DEFAULTS = { from: 'TokenRequest', expirationSeconds: 86_400 } as const;
export const COPY_EXPIRATION_BOUNDS_S = { min: 600, max: 31_536_000 } as const;

/** Bounds the CRD's CEL rules enforce; repeated here for objects that bypassed them. */
export const INTERVAL_BOUNDS_MS = { min: 10_000, max: 24 * 3_600_000 } as const;
export const TIMEOUT_BOUNDS_MS = { min: 1_000, max: 10 * 60_000 } as const;

/** The spec with the CRD's defaults applied, still as the user wrote it (durations as text). */
export interface DefaultedSpec {
  serviceAccountName: string;
  token: {
    source: TokenSource;
    secretName?: string;
    expirationSeconds?: number;
    audience?: string;
  };
  check: CheckMode;
  interval: string;
  /** Unset: follows the interval (defaultTimeoutMs). */
  timeout?: string;
  path: string;
  heal: {
    policy: HealPolicy;
    invalidatedLegacyToken: InvalidatedLegacyTokenAction;
    restartWorkloads: boolean;
    maxPerHour: number;
  };
  podTemplate: ProbePodTemplate;
  keepPods: number;
  copy?: CopySpec;
}

/** check Copy, resolved: where the copy is and how a new token is made. */
export interface ResolvedCopy {
  secretName: string;
  format: CopyFormat;
  key?: string;
  user?: string;
  serviceAccountNamespace?: string;
  renew:
    | {
        from: Extract<RenewSource, 'TokenRequest'>;
        expirationSeconds: number;
        credentialsSecretName?: string;
      }
    | { from: Extract<RenewSource, 'Secret'>; secretName: string };
}

export function withDefaults(spec: AuthProbeSpec): DefaultedSpec {
  return {
    serviceAccountName: spec.serviceAccountName,
    token: { ...spec.token, source: spec.token?.source ?? SPEC_DEFAULTS.token.source },
    check: spec.check ?? SPEC_DEFAULTS.check,
    interval: spec.interval ?? SPEC_DEFAULTS.interval,
    ...(spec.timeout !== undefined ? { timeout: spec.timeout } : {}),
    path: spec.path ?? SPEC_DEFAULTS.path,
    heal: {
      policy: spec.heal?.policy ?? SPEC_DEFAULTS.heal.policy,
      invalidatedLegacyToken: spec.heal?.invalidatedLegacyToken ?? SPEC_DEFAULTS.heal.invalidatedLegacyToken,
      restartWorkloads: spec.heal?.restartWorkloads ?? SPEC_DEFAULTS.heal.restartWorkloads,
      maxPerHour: spec.heal?.maxPerHour ?? SPEC_DEFAULTS.heal.maxPerHour,
    },
    podTemplate: spec.podTemplate ?? {},
    keepPods: spec.keepPods ?? SPEC_DEFAULTS.keepPods,
    ...(spec.copy ? { copy: spec.copy } : {}),
  };
}

/** Where the token comes from, resolved: a Secret source always has a secretName. */
export type ResolvedToken =
  | { source: 'Secret'; secretName: string }
  | { source: 'Projected'; expirationSeconds?: number; audience?: string };

export interface ResolvedSpec extends Omit<DefaultedSpec, 'token' | 'timeout' | 'copy'> {
  token: ResolvedToken;
  /** Set exactly when check is Copy. */
  copy?: ResolvedCopy;
  timeout: string;
  intervalMs: number;
  timeoutMs: number;
}

/** A resolved spec whose token is a Secret (the only kind a TokenReview check or a heal can act on). */
export type SecretSourcedSpec = ResolvedSpec & { token: Extract<ResolvedToken, { source: 'Secret' }> };

export const isSecretSourced = (spec: ResolvedSpec): spec is SecretSourcedSpec =>
  spec.token.source === 'Secret';

export type ResolveResult =
  { ok: true; spec: ResolvedSpec } | { ok: false; reason: typeof ProbeReason.InvalidSpec; message: string };

const notADuration = (field: string, text: string): string =>
  `${field}: "${text}" is not a duration; use a number and a unit (ms, s, m, h), e.g. 30s, 5m or 1h30m`;

/**
 * Defaults plus the checks the controller depends on (durations and their bounds, secretName exactly
 * for Secret). The CRD enforces all of them at admission; this catches objects that predate a rule.
 */
export function resolveSpec(spec: AuthProbeSpec): ResolveResult {
  const defaulted = withDefaults(spec);
  const invalid = (message: string): ResolveResult => ({
    ok: false,
    reason: ProbeReason.InvalidSpec,
    message,
  });

  const intervalMs = parseDuration(defaulted.interval);
  if (intervalMs === undefined) return invalid(notADuration('spec.interval', defaulted.interval));
  if (intervalMs < INTERVAL_BOUNDS_MS.min || intervalMs > INTERVAL_BOUNDS_MS.max) {
    return invalid(`spec.interval: ${defaulted.interval} is not between 10s and 24h`);
  }
  let timeoutMs = defaultTimeoutMs(intervalMs);
  let timeout = `${timeoutMs / 1000}s`;
  if (defaulted.timeout !== undefined) {
    const parsed = parseDuration(defaulted.timeout);
    if (parsed === undefined) return invalid(notADuration('spec.timeout', defaulted.timeout));
    if (parsed < TIMEOUT_BOUNDS_MS.min || parsed > TIMEOUT_BOUNDS_MS.max) {
      return invalid(`spec.timeout: ${defaulted.timeout} is not between 1s and 10m`);
    }
    if (parsed >= intervalMs) {
      return invalid(
        `spec.timeout: ${defaulted.timeout} must be shorter than spec.interval (${defaulted.interval})`,
      );
    }
    timeoutMs = parsed;
    timeout = defaulted.timeout;
  }
  const { source, secretName, expirationSeconds, audience } = defaulted.token;
  let token: ResolvedToken;
  if (source === 'Secret') {
    if (!secretName) return invalid('spec.token.secretName is required when spec.token.source is Secret');
    token = { source, secretName };
  } else {
    if (secretName !== undefined) {
      return invalid('spec.token.secretName is only allowed when spec.token.source is Secret');
    }
    token = {
      source,
      ...(expirationSeconds !== undefined ? { expirationSeconds } : {}),
      ...(audience !== undefined ? { audience } : {}),
    };
  }
  if (defaulted.check === 'TokenReview' && source !== 'Secret') {
    return invalid(
      'spec.check: TokenReview needs spec.token.source Secret (a projected token exists only inside a pod); use check: Pod',
    );
  }
  const { copy: copySpec, ...rest } = defaulted;
  if (defaulted.check !== 'Copy') {
    if (copySpec) return invalid('spec.copy is only allowed with spec.check: Copy');
    return { ok: true, spec: { ...rest, token, timeout, intervalMs, timeoutMs } };
  }
  const copy = resolveCopy(copySpec, source);
  if (typeof copy === 'string') return invalid(copy);
  return { ok: true, spec: { ...rest, token, timeout, intervalMs, timeoutMs, copy } };
}

/** check Copy: the copy's location and renewal, or what is wrong with them. */
function resolveCopy(copy: CopySpec | undefined, source: TokenSource): ResolvedCopy | string {
  if (!copy?.secretName) return 'spec.copy.secretName is required with spec.check: Copy';
  if (source === 'Secret')
    return "spec.token does not apply to spec.check: Copy (the token is the copy); renew from the account's token secret with spec.copy.renew.from: Secret";
  const format = copy.format ?? 'Token';
  if (copy.user !== undefined && format !== 'Kubeconfig')
    return 'spec.copy.user is only allowed with spec.copy.format: Kubeconfig';
  if (copy.key !== undefined && format === 'ArgoCDCluster')
    return 'spec.copy.key does not apply to spec.copy.format: ArgoCDCluster (the token is in data.config)';
  const from = copy.renew?.from ?? COPY_RENEW_DEFAULTS.from;
  let renew: ResolvedCopy['renew'];
  if (from === 'Secret') {
    if (!copy.renew?.secretName)
      return 'spec.copy.renew.secretName is required with spec.copy.renew.from: Secret';
    if (copy.renew.expirationSeconds !== undefined)
      return 'spec.copy.renew.expirationSeconds only applies to spec.copy.renew.from: TokenRequest';
    if (copy.renew.credentialsSecretName !== undefined)
      return 'spec.copy.renew.credentialsSecretName only applies to spec.copy.renew.from: TokenRequest';
    renew = { from, secretName: copy.renew.secretName };
  } else {
    if (copy.renew?.secretName !== undefined)
      return 'spec.copy.renew.secretName only applies to spec.copy.renew.from: Secret';
    const expirationSeconds = copy.renew?.expirationSeconds ?? COPY_RENEW_DEFAULTS.expirationSeconds;
    if (expirationSeconds < COPY_EXPIRATION_BOUNDS_S.min || expirationSeconds > COPY_EXPIRATION_BOUNDS_S.max)
      return `spec.copy.renew.expirationSeconds: ${expirationSeconds} is not between 600 and 31536000`;
    const credentialsSecretName = copy.renew?.credentialsSecretName;
    renew = {
      from,
      expirationSeconds,
      ...(credentialsSecretName !== undefined ? { credentialsSecretName } : {}),
    };
  }
  return {
    secretName: copy.secretName,
    format,
    ...(copy.key !== undefined ? { key: copy.key } : {}),
    ...(copy.user !== undefined ? { user: copy.user } : {}),
    ...(copy.serviceAccountNamespace !== undefined
      ? { serviceAccountNamespace: copy.serviceAccountNamespace }
      : {}),
    renew,
  };
}
