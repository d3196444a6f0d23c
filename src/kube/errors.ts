/**
 * The errors the apiserver client raises, and the questions callers ask of them. In one module of
 * its own so that every layer (runtime, controller, healer, CLI) can ask them without importing the
 * client or each other.
 */
/** A failed apiserver call, carrying the HTTP status and the `Status` reason the apiserver gave. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

/** Transport-level failure: the apiserver was not reached or the connection broke. */
export class KubeTransportError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeTransportError';
  }
}

/**
 * A request refused before it was sent because this replica no longer provably leads (or the call
 * was made outside a leadership term): nothing reached the apiserver.
 */
export class NotLeaderError extends Error {
  readonly code = 'ENOTLEADER';
  constructor(message: string) {
    super(message);
    this.name = 'NotLeaderError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.status === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof KubeApiError && err.status === 409 && err.reason === 'AlreadyExists';
export const isGone = (err: unknown): boolean => err instanceof KubeApiError && err.status === 410;
export const isUnauthorized = (err: unknown): boolean => err instanceof KubeApiError && err.status === 401;

/** An error as plain, loggable data; never includes a request body (it may hold a token). */
export function describeError(err: unknown): {
  name: string;
  message: string;
  status?: number;
  code?: string;
} {
  if (err instanceof Error) {
    const e = err as Error & { status?: number; code?: string };
    return { name: e.name, message: e.message, status: e.status, code: e.code };
  }
  return { name: 'Error', message: String(err) };
}

/** The message of an error, for a condition or Event text. */
export const errorMessage = (err: unknown): string => describeError(err).message;
