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
 */
export const SPEC_DEFAULTS = {
  token: { source: 'Projected' },
  check: 'Pod',
  interval: '5m',
  timeout: '30s',
  path: '/api',
  heal: { policy: 'Auto', invalidatedLegacyToken: 'Recreate', restartWorkloads: false, maxPerHour: 3 },
  keepPods: 3,
} as const satisfies Omit<DefaultedSpec, 'serviceAccountName' | 'podTemplate' | 'token'> & {
  token: Pick<DefaultedSpec['token'], 'source'>;
};
/**
 * Lifetime of an explicitly projected token when only `audience` is set. Not a CRD default on purpose:
 * an unset expirationSeconds means "rely on automount", see TokenSpec.expirationSeconds.
 */
export const DEFAULT_PROJECTED_EXPIRATION_SECONDS = 3600;

/** Bounds the CRD's CEL rules enforce; repeated here for objects that bypassed them. */
export const INTERVAL_BOUNDS_MS = { min: 10_000, max: 24 * 3_600_000 } as const;
export const TIMEOUT_BOUNDS_MS = { min: 1_000, max: 10 * 60_000 } as const;

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
  timeout: string;
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
    timeout: spec.timeout ?? SPEC_DEFAULTS.timeout,
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

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string };

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
/** The same grammar as the CRD's pattern: Go-style, units ms, s, m, h, e.g. "1h30m", "1.5s". */
const DURATION_PATTERN = /^(\d+(\.\d+)?(ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** Parses a Go-style duration into milliseconds; `field` names the spec field in the error. */
export function parseDuration(text: string, field: string): DurationResult {
  if (!DURATION_PATTERN.test(text)) {
    return {
      ok: false,
      message: `${field}: "${text}" is not a duration; use a number and a unit (ms, s, m, h), e.g. 30s, 5m or 1h30m`,
    };
  }
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) {
    ms += Number(amount) * (DURATION_UNITS_MS[unit ?? ''] ?? Number.NaN);
  }
  return { ok: true, ms: Math.round(ms) };
}

export interface ResolvedSpec extends DefaultedSpec {
  intervalMs: number;
  timeoutMs: number;
}

export type ResolveResult =
  { ok: true; spec: ResolvedSpec } | { ok: false; reason: typeof ProbeReason.InvalidSpec; message: string };

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

  const interval = parseDuration(defaulted.interval, 'spec.interval');
  if (!interval.ok) return invalid(interval.message);
  const timeout = parseDuration(defaulted.timeout, 'spec.timeout');
  if (!timeout.ok) return invalid(timeout.message);
  if (interval.ms < INTERVAL_BOUNDS_MS.min || interval.ms > INTERVAL_BOUNDS_MS.max) {
    return invalid(`spec.interval: ${defaulted.interval} is not between 10s and 24h`);
  }
  if (timeout.ms < TIMEOUT_BOUNDS_MS.min || timeout.ms > TIMEOUT_BOUNDS_MS.max) {
    return invalid(`spec.timeout: ${defaulted.timeout} is not between 1s and 10m`);
  }
  if (timeout.ms >= interval.ms) {
    return invalid(
      `spec.timeout: ${defaulted.timeout} must be shorter than spec.interval (${defaulted.interval})`,
    );
  }
  const { source, secretName } = defaulted.token;
  if (source === 'Secret' && !secretName) {
    return invalid('spec.token.secretName is required when spec.token.source is Secret');
  }
  if (source !== 'Secret' && secretName !== undefined) {
    return invalid('spec.token.secretName is only allowed when spec.token.source is Secret');
  }
  if (defaulted.check === 'TokenReview' && source !== 'Secret') {
    return invalid(
      'spec.check: TokenReview needs spec.token.source Secret (a projected token exists only inside a pod); use check: Pod',
    );
  }
  return { ok: true, spec: { ...defaulted, intervalMs: interval.ms, timeoutMs: timeout.ms } };
}
