import { parseDuration } from './duration.js';
import { ProbeReason } from './reasons.js';
import type {
  AuthProbeSpec,
  CheckMode,
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
  };
}

/** Where the token comes from, resolved: a Secret source always has a secretName. */
export type ResolvedToken =
  | { source: 'Secret'; secretName: string }
  | { source: 'Projected'; expirationSeconds?: number; audience?: string };

export interface ResolvedSpec extends Omit<DefaultedSpec, 'token' | 'timeout'> {
  token: ResolvedToken;
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
  return { ok: true, spec: { ...defaulted, token, timeout, intervalMs, timeoutMs } };
}
