import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

/** Keys whose values are credentials wherever they appear in a log object. */
const SECRET_KEYS = new Set([
  'token',
  'authorization',
  'bearer',
  'password',
  'data',
  'stringdata',
  'id_token',
  'client-key-data',
]);
/** JWTs (every service-account token is one) and `Bearer x` strings, wherever they hide. */
const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g;
const BEARER_PATTERN = /(bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi;
export const REDACTED = '[REDACTED]';

export function scrubString(text: string): string {
  return text.replace(JWT_PATTERN, REDACTED).replace(BEARER_PATTERN, `$1${REDACTED}`);
}

/**
 * Returns a copy of `value` with credentials removed: values under secret-looking keys are
 * replaced whole, and token-shaped substrings are cut out of every other string. Applied to
 * every log record, so a token handed to the logger by mistake still never reaches the output.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (value instanceof Error) {
    return {
      type: value.name,
      message: scrubString(value.message),
      stack: value.stack && scrubString(value.stack),
    };
  }
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] =
      SECRET_KEYS.has(key.toLowerCase()) && item !== undefined && item !== null
        ? REDACTED
        : scrub(item, depth + 1);
  }
  return out;
}

export interface LoggerOptions {
  level: LevelWithSilent;
  name?: string;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name ?? 'authprobe',
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => scrub(object) as Record<string, unknown>,
      },
      hooks: {
        // Messages are strings built by callers; scrub them as well as the merged object.
        logMethod(args, method) {
          const scrubbed = args.map((arg) => (typeof arg === 'string' ? scrubString(arg) : arg));
          return method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    options.destination,
  );
}

export type { Logger };
