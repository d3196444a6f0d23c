/**
 * The probe pod's verdict-free report: what the program saw, step by step, written as one JSON document
 * to the container's termination message (the kubelet keeps at most 4096 bytes of it) and to stdout.
 * The controller reads it from pod.status and hands it to classifyProbe.
 *
 * It never contains a token: only whether the file is there, and the token's public claims (issuer,
 * key id, expiry) that help tell a key rotation from a revoked secret. serializeProbeResult redacts
 * anything that looks like a JWT as a last line of defence.
 */

export const PROBE_RESULT_VERSION = 1;
/** Where a consumer finds token, ca.crt and namespace: the probe pod mounts there, the program reads there. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The kubelet truncates termination messages beyond this (4096 bytes). */
export const TERMINATION_MESSAGE_MAX_BYTES = 4096;

export const FILE_STATES = ['present', 'missing', 'empty', 'unreadable'] as const;
export type FileState = (typeof FILE_STATES)[number];

/** The seed's first step: are the files a consumer needs mounted? */
export interface MountedFiles {
  tokenFile: FileState;
  caFile: FileState;
  namespaceFile: FileState;
}

/**
 * A request that got no HTTP answer. `code` is Node's error code (ECONNREFUSED, ENOTFOUND,
 * SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID, ...) or one of ProbeErrorCode.
 */
export interface TransportError {
  code: string;
  message: string;
}

/** Codes the probe program itself assigns. */
export const ProbeErrorCode = {
  /** No TCP/TLS connection within the step's share of the deadline. */
  ConnectTimeout: 'CONNECT_TIMEOUT',
  /** Connected, but no complete answer within the step's share of the deadline. */
  ResponseTimeout: 'RESPONSE_TIMEOUT',
  /** KUBERNETES_SERVICE_HOST/PORT are not set in the pod. */
  NoApiserverAddress: 'NO_APISERVER_ADDRESS',
} as const;

export type HttpStep =
  | {
      outcome: 'response';
      httpStatus: number;
      latencyMs: number;
      /** `reason` of a Status body, e.g. Unauthorized, Forbidden. */
      reason?: string;
      /** `message` of a Status body. */
      message?: string;
      /** A few entries of a discovery body (`paths`, or `versions` for /api), proof of a real answer. */
      pathsSample?: string[];
    }
  | { outcome: 'error'; error: TransportError; latencyMs: number }
  | { outcome: 'skipped'; why: string };

export type IdentityStep =
  | { outcome: 'identity'; username: string; uid?: string; groups?: string[] }
  | { outcome: 'response'; httpStatus: number; reason?: string; message?: string }
  | { outcome: 'error'; error: TransportError }
  | { outcome: 'skipped'; why: string };

/** Public claims of the mounted token; never the token or its signature. */
export interface TokenClaims {
  /** bound: issued by the TokenRequest API (projected); legacy: a token secret's token. */
  kind: 'bound' | 'legacy' | 'unknown';
  issuer?: string;
  subject?: string;
  keyId?: string;
  /** RFC 3339. */
  issuedAt?: string;
  /** RFC 3339. */
  expiresAt?: string;
}

export interface ProbeResult {
  version: typeof PROBE_RESULT_VERSION;
  /** host:port the program called (from KUBERNETES_SERVICE_HOST/PORT), empty when unknown. */
  apiserver: string;
  path: string;
  files: MountedFiles;
  /** Content of the mounted namespace file, when present. */
  namespace?: string;
  token?: TokenClaims;
  /** The seed's "base connectivity": the same request without a token (expects 401 or 403). */
  anonymous: HttpStep;
  /** The request with `Authorization: Bearer <token>` and the mounted CA. */
  authenticated: HttpStep;
  /** Who the token really is: a SelfSubjectReview made with the token. */
  identity: IdentityStep;
  startedAt: string;
  finishedAt: string;
}

// ---- Writing ------------------------------------------------------------------------------------

/** Anything shaped like a JWT (header.payload.signature, base64url). */
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(JWT_LIKE, '[redacted]');
  for (const secret of secrets) {
    if (secret.length >= 8) out = out.split(secret).join('[redacted]');
  }
  return out;
}

function truncate(text: string | undefined, max: number): string | undefined {
  if (text === undefined || text.length <= max) return text;
  return `${text.slice(0, max - 1)}…`;
}

function shrinkHttpStep(step: HttpStep, maxMessage: number, keepSample: boolean): HttpStep {
  if (step.outcome === 'response') {
    const { pathsSample, ...rest } = step;
    return {
      ...rest,
      message: truncate(step.message, maxMessage),
      ...(keepSample && pathsSample ? { pathsSample } : {}),
    };
  }
  if (step.outcome === 'error') {
    return { ...step, error: { ...step.error, message: truncate(step.error.message, maxMessage) ?? '' } };
  }
  return step;
}

function shrinkIdentity(step: IdentityStep, maxMessage: number, keepGroups: boolean): IdentityStep {
  if (step.outcome === 'identity') {
    const { groups, ...rest } = step;
    return keepGroups && groups ? { ...rest, groups } : rest;
  }
  if (step.outcome === 'response') return { ...step, message: truncate(step.message, maxMessage) };
  if (step.outcome === 'error') {
    return { ...step, error: { ...step.error, message: truncate(step.error.message, maxMessage) ?? '' } };
  }
  return step;
}

/**
 * One line of JSON that fits the termination message: messages are shortened and samples dropped
 * until it does. `secrets` (the token) are redacted wherever they might appear.
 */
export function serializeProbeResult(result: ProbeResult, secrets: readonly string[] = []): string {
  const attempts: Array<[number, boolean]> = [
    [512, true],
    [256, true],
    [128, false],
    [48, false],
  ];
  let text = '';
  for (const [maxMessage, keepDetail] of attempts) {
    const shrunk: ProbeResult = {
      ...result,
      anonymous: shrinkHttpStep(result.anonymous, maxMessage, keepDetail),
      authenticated: shrinkHttpStep(result.authenticated, maxMessage, keepDetail),
      identity: shrinkIdentity(result.identity, maxMessage, keepDetail),
    };
    text = redactSecrets(JSON.stringify(shrunk), secrets);
    if (Buffer.byteLength(text, 'utf8') <= TERMINATION_MESSAGE_MAX_BYTES) return text;
  }
  return text;
}

// ---- Reading ------------------------------------------------------------------------------------

export type ParseResult = { ok: true; result: ProbeResult } | { ok: false; error: string };

class InvalidResult extends Error {}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, at: string): Json {
  if (!isObject(value)) throw new InvalidResult(`${at} is not an object`);
  return value;
}

/** Longest text taken from a probe pod, per field: its output is untrusted input. */
const MAX_TEXT = 1024;
/** Lists (paths sample, groups) are cut off beyond this. */
const MAX_LIST = 20;
/** A service-account username: the only identity a probe pod can truthfully report. */
const SERVICE_ACCOUNT_USER =
  /^system:serviceaccount:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$/;

function string(value: unknown, at: string, max = MAX_TEXT): string {
  if (typeof value !== 'string') throw new InvalidResult(`${at} is not a string`);
  if (value.length > max) throw new InvalidResult(`${at} is longer than ${max} characters`);
  // Control characters (terminal escapes and the like) other than tab and newline.
  for (const char of value) {
    const code = char.charCodeAt(0);
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a) || code === 0x7f) {
      throw new InvalidResult(`${at} holds control characters`);
    }
  }
  return value;
}

function httpStatus(value: unknown, at: string): number {
  const status = integer(value, at);
  if (status < 100 || status > 599) throw new InvalidResult(`${at} is not an HTTP status code`);
  return status;
}

function serviceAccountUser(value: unknown, at: string): string {
  const username = string(value, at, 512);
  if (!SERVICE_ACCOUNT_USER.test(username)) {
    throw new InvalidResult(
      `${at} is not a service-account username (system:serviceaccount:<namespace>:<name>)`,
    );
  }
  return username;
}

function optionalString(value: unknown, at: string): string | undefined {
  return value === undefined ? undefined : string(value, at);
}

function integer(value: unknown, at: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidResult(`${at} is not a non-negative integer`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], at: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidResult(`${at} is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function optionalStrings(value: unknown, at: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new InvalidResult(`${at} is not a list`);
  if (value.length > MAX_LIST) throw new InvalidResult(`${at} has more than ${MAX_LIST} entries`);
  return value.map((v, i) => string(v, `${at}[${i}]`, 256));
}

/** Drops keys whose value is undefined, so parsed values compare equal to what was written. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function transportError(value: unknown, at: string): TransportError {
  const o = object(value, at);
  return { code: string(o['code'], `${at}.code`), message: string(o['message'], `${at}.message`) };
}

function httpStep(value: unknown, at: string): HttpStep {
  const o = object(value, at);
  const outcome = oneOf(o['outcome'], ['response', 'error', 'skipped'] as const, `${at}.outcome`);
  switch (outcome) {
    case 'response':
      return compact({
        outcome,
        httpStatus: httpStatus(o['httpStatus'], `${at}.httpStatus`),
        latencyMs: integer(o['latencyMs'], `${at}.latencyMs`),
        reason: optionalString(o['reason'], `${at}.reason`),
        message: optionalString(o['message'], `${at}.message`),
        pathsSample: optionalStrings(o['pathsSample'], `${at}.pathsSample`),
      });
    case 'error':
      return {
        outcome,
        error: transportError(o['error'], `${at}.error`),
        latencyMs: integer(o['latencyMs'], `${at}.latencyMs`),
      };
    case 'skipped':
      return { outcome, why: string(o['why'], `${at}.why`) };
  }
}

function identityStep(value: unknown, at: string): IdentityStep {
  const o = object(value, at);
  const outcome = oneOf(o['outcome'], ['identity', 'response', 'error', 'skipped'] as const, `${at}.outcome`);
  switch (outcome) {
    case 'identity':
      return compact({
        outcome,
        username: serviceAccountUser(o['username'], `${at}.username`),
        uid: optionalString(o['uid'], `${at}.uid`),
        groups: optionalStrings(o['groups'], `${at}.groups`),
      });
    case 'response':
      return compact({
        outcome,
        httpStatus: httpStatus(o['httpStatus'], `${at}.httpStatus`),
        reason: optionalString(o['reason'], `${at}.reason`),
        message: optionalString(o['message'], `${at}.message`),
      });
    case 'error':
      return { outcome, error: transportError(o['error'], `${at}.error`) };
    case 'skipped':
      return { outcome, why: string(o['why'], `${at}.why`) };
  }
}

function tokenClaims(value: unknown, at: string): TokenClaims | undefined {
  if (value === undefined) return undefined;
  const o = object(value, at);
  return compact({
    kind: oneOf(o['kind'], ['bound', 'legacy', 'unknown'] as const, `${at}.kind`),
    issuer: optionalString(o['issuer'], `${at}.issuer`),
    subject: optionalString(o['subject'], `${at}.subject`),
    keyId: optionalString(o['keyId'], `${at}.keyId`),
    issuedAt: optionalString(o['issuedAt'], `${at}.issuedAt`),
    expiresAt: optionalString(o['expiresAt'], `${at}.expiresAt`),
  });
}

/**
 * Reads a termination message back into a ProbeResult. Strict: every known field is type-checked, and
 * the value is rebuilt from those fields only, so nothing unexpected travels on into status or logs.
 */
export function parseProbeResult(text: string | undefined): ParseResult {
  if (text === undefined || text.trim() === '') return { ok: false, error: 'the probe pod left no result' };
  if (text.length > TERMINATION_MESSAGE_MAX_BYTES) {
    return { ok: false, error: `the probe result is longer than ${TERMINATION_MESSAGE_MAX_BYTES} bytes` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return {
      ok: false,
      error: `the probe result is not JSON (starts with "${redactSecrets(text.slice(0, 60))}")`,
    };
  }
  try {
    const o = object(json, 'result');
    if (o['version'] !== PROBE_RESULT_VERSION) {
      return { ok: false, error: `unsupported probe result version ${JSON.stringify(o['version'])}` };
    }
    const files = object(o['files'], 'files');
    const result: ProbeResult = compact({
      version: PROBE_RESULT_VERSION,
      apiserver: string(o['apiserver'], 'apiserver'),
      path: string(o['path'], 'path'),
      files: {
        tokenFile: oneOf(files['tokenFile'], FILE_STATES, 'files.tokenFile'),
        caFile: oneOf(files['caFile'], FILE_STATES, 'files.caFile'),
        namespaceFile: oneOf(files['namespaceFile'], FILE_STATES, 'files.namespaceFile'),
      },
      namespace: optionalString(o['namespace'], 'namespace'),
      token: tokenClaims(o['token'], 'token'),
      anonymous: httpStep(o['anonymous'], 'anonymous'),
      authenticated: httpStep(o['authenticated'], 'authenticated'),
      identity: identityStep(o['identity'], 'identity'),
      startedAt: string(o['startedAt'], 'startedAt'),
      finishedAt: string(o['finishedAt'], 'finishedAt'),
    });
    return { ok: true, result };
  } catch (err) {
    if (err instanceof InvalidResult) return { ok: false, error: `invalid probe result: ${err.message}` };
    throw err;
  }
}
