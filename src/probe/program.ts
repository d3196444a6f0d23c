/**
 * The program inside the probe pod (`authprobe probe`). It repeats the manual runbook
 * (seed/dashboard-token-auth-flow.txt) with what a consumer pod really has:
 *   1. are token, ca.crt and namespace mounted?
 *   2. base connectivity: the request without a token (expects 401/403), verified with the mounted CA;
 *   3. the request with `Authorization: Bearer <token>` and the mounted CA (never an insecure skip);
 *   4. who the token is: a SelfSubjectReview made with the token.
 * It reports what it saw (./result.ts) and leaves the verdict to classifyProbe in the controller, so
 * the pod image and the controller can evolve separately. Talks to the apiserver with node:https only.
 */
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { parseDuration } from '../api/duration.js';
import { readTokenClaims } from './claims.js';
import {
  PROBE_RESULT_VERSION,
  ProbeErrorCode,
  SERVICE_ACCOUNT_DIR,
  serializeProbeResult,
  type FileState,
  type HttpStep,
  type IdentityStep,
  type ProbeResult,
  type TransportError,
} from './result.js';

export const DEFAULT_TERMINATION_LOG = '/dev/termination-log';
export const SELF_SUBJECT_REVIEW_PATH = '/apis/authentication.k8s.io/v1/selfsubjectreviews';

/** Kept back from the deadline to write the result before the kubelet's activeDeadlineSeconds. */
const RESULT_RESERVE_MS = 250;
/** A step never gets less than this, even late: a fast apiserver still answers. */
const MIN_STEP_MS = 200;
/** Enough for any Status or discovery body; the rest of a large body is not needed. */
const MAX_BODY_BYTES = 64 * 1024;
const PATHS_SAMPLE_SIZE = 5;
const MAX_GROUPS = 10;

export interface ProbeOptions {
  /** Where token, ca.crt and namespace are mounted. */
  tokenDir: string;
  /** From KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT; undefined when the pod has none. */
  apiserverHost: string | undefined;
  apiserverPort: string | undefined;
  /** The path probed with (and without) the token. */
  path: string;
  /** Overall budget of the program, all steps included. */
  timeoutMs: number;
  /** Injected for tests. */
  now?: () => number;
  /**
   * The token, CA and namespace themselves instead of files in tokenDir (the operator checking a copied
   * token with the CA stored beside it); never written anywhere.
   */
  material?: { token: string; ca?: string; namespace?: string };
}

export interface ProbeRun {
  result: ProbeResult;
  /** The token read, only so that the caller can redact it; never written anywhere. */
  secrets: string[];
}

// ---- Files --------------------------------------------------------------------------------------

interface MountedFile {
  state: FileState;
  content?: string;
}

async function readMountedFile(path: string): Promise<MountedFile> {
  try {
    const content = (await readFile(path, 'utf8')).trim();
    return content === '' ? { state: 'empty' } : { state: 'present', content };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { state: code === 'ENOENT' ? 'missing' : 'unreadable' };
  }
}

// ---- HTTP ---------------------------------------------------------------------------------------

interface HttpRequest {
  host: string;
  port: string;
  method: 'GET' | 'POST';
  path: string;
  ca: string | undefined;
  token?: string;
  body?: string;
  budgetMs: number;
}

type HttpOutcome =
  | { kind: 'response'; status: number; body: string; latencyMs: number }
  | { kind: 'error'; error: TransportError; latencyMs: number };

/** Error messages name the problem without repeating request details (no headers, so no token). */
function transportError(err: unknown): TransportError {
  const e = err as NodeJS.ErrnoException;
  return { code: e.code ?? 'UNKNOWN', message: e.message ?? String(err) };
}

function send(request: HttpRequest, now: () => number): Promise<HttpOutcome> {
  const started = now();
  return new Promise((resolve) => {
    let settled = false;
    let connected = false;
    const finish = (outcome: HttpOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (request.token) headers['Authorization'] = `Bearer ${request.token}`;
    if (request.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(request.body));
    }
    const req = https.request(
      {
        host: request.host,
        port: request.port,
        method: request.method,
        path: request.path,
        headers,
        // Exactly the mounted CA, as a consumer would; no system trust store, never rejectUnauthorized: false.
        ...(request.ca ? { ca: request.ca } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = (): void =>
          finish({
            kind: 'response',
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            latencyMs: now() - started,
          });
        res.on('data', (chunk: Buffer) => {
          if (size >= MAX_BODY_BYTES) return;
          chunks.push(chunk);
          size += chunk.length;
          if (size >= MAX_BODY_BYTES) {
            done();
            res.destroy();
          }
        });
        res.on('end', done);
        res.on('error', done);
      },
    );
    req.on('socket', (socket) => {
      (socket as TLSSocket).once('secureConnect', () => {
        connected = true;
      });
    });
    req.on('error', (err) =>
      finish({ kind: 'error', error: transportError(err), latencyMs: now() - started }),
    );
    const timer = setTimeout(() => {
      const code = connected ? ProbeErrorCode.ResponseTimeout : ProbeErrorCode.ConnectTimeout;
      const what = connected ? 'no answer' : 'no TLS connection';
      finish({
        kind: 'error',
        error: {
          code,
          message: `${what} from https://${request.host}:${request.port} within ${request.budgetMs}ms`,
        },
        latencyMs: now() - started,
      });
      req.destroy();
    }, request.budgetMs);
    req.end(request.body);
  });
}

interface StatusBody {
  kind?: string;
  reason?: string;
  message?: string;
  paths?: string[];
  versions?: string[];
  status?: { userInfo?: { username?: string; uid?: string; groups?: string[] } };
}

function parseBody(body: string): StatusBody {
  try {
    const json: unknown = JSON.parse(body);
    return typeof json === 'object' && json !== null ? (json as StatusBody) : {};
  } catch {
    return {};
  }
}

function toHttpStep(outcome: HttpOutcome): HttpStep {
  if (outcome.kind === 'error')
    return { outcome: 'error', error: outcome.error, latencyMs: outcome.latencyMs };
  const body = parseBody(outcome.body);
  const sample = Array.isArray(body.paths)
    ? body.paths
    : Array.isArray(body.versions)
      ? body.versions
      : undefined;
  const step: HttpStep = { outcome: 'response', httpStatus: outcome.status, latencyMs: outcome.latencyMs };
  if (body.kind === 'Status' && typeof body.reason === 'string') step.reason = body.reason;
  if (body.kind === 'Status' && typeof body.message === 'string') step.message = body.message;
  if (sample) step.pathsSample = sample.filter((p) => typeof p === 'string').slice(0, PATHS_SAMPLE_SIZE);
  return step;
}

function toIdentityStep(outcome: HttpOutcome): IdentityStep {
  if (outcome.kind === 'error') return { outcome: 'error', error: outcome.error };
  const body = parseBody(outcome.body);
  const userInfo = body.status?.userInfo;
  if (outcome.status >= 200 && outcome.status < 300 && typeof userInfo?.username === 'string') {
    const step: IdentityStep = { outcome: 'identity', username: userInfo.username };
    if (typeof userInfo.uid === 'string') step.uid = userInfo.uid;
    if (Array.isArray(userInfo.groups)) step.groups = userInfo.groups.slice(0, MAX_GROUPS);
    return step;
  }
  const step: IdentityStep = { outcome: 'response', httpStatus: outcome.status };
  if (typeof body.reason === 'string') step.reason = body.reason;
  if (typeof body.message === 'string') step.message = body.message;
  return step;
}

// ---- The probe ----------------------------------------------------------------------------------

/** Runs the steps; never throws for anything the apiserver or the mount does (that is the result). */
export async function runProbe(options: ProbeOptions): Promise<ProbeRun> {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const deadline = startedAt + options.timeoutMs - RESULT_RESERVE_MS;
  /** Each remaining step gets an equal share of what is left, so one hung call cannot starve the rest. */
  const budget = (stepsLeft: number): number =>
    Math.max(MIN_STEP_MS, Math.floor((deadline - now()) / stepsLeft));

  const given = (content: string | undefined): MountedFile =>
    content === undefined || content.trim() === ''
      ? { state: 'missing' }
      : { state: 'present', content: content.trim() };
  const [token, ca, namespace] = options.material
    ? [given(options.material.token), given(options.material.ca), given(options.material.namespace)]
    : await Promise.all([
        readMountedFile(`${options.tokenDir}/token`),
        readMountedFile(`${options.tokenDir}/ca.crt`),
        readMountedFile(`${options.tokenDir}/namespace`),
      ]);
  const { apiserverHost: host, apiserverPort: port, path } = options;

  let anonymous: HttpStep;
  let authenticated: HttpStep;
  let identity: IdentityStep;
  if (!host || !port) {
    const error = {
      code: ProbeErrorCode.NoApiserverAddress,
      message: 'KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is not set in the probe pod',
    };
    anonymous = { outcome: 'error', error, latencyMs: 0 };
    authenticated = { outcome: 'error', error, latencyMs: 0 };
    identity = { outcome: 'skipped', why: 'the apiserver address is unknown' };
  } else {
    const base = { host, port, ca: ca.content };
    anonymous = toHttpStep(await send({ ...base, method: 'GET', path, budgetMs: budget(3) }, now));
    if (token.content === undefined) {
      authenticated = { outcome: 'skipped', why: `token file is ${token.state}` };
      identity = { outcome: 'skipped', why: `token file is ${token.state}` };
    } else {
      const withToken = { ...base, token: token.content };
      authenticated = toHttpStep(await send({ ...withToken, method: 'GET', path, budgetMs: budget(2) }, now));
      identity =
        authenticated.outcome === 'response'
          ? toIdentityStep(
              await send(
                {
                  ...withToken,
                  method: 'POST',
                  path: SELF_SUBJECT_REVIEW_PATH,
                  body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
                  budgetMs: budget(1),
                },
                now,
              ),
            )
          : { outcome: 'skipped', why: 'the request with the token got no answer' };
    }
  }

  const result: ProbeResult = {
    version: PROBE_RESULT_VERSION,
    apiserver: host && port ? `${host}:${port}` : '',
    path,
    files: { tokenFile: token.state, caFile: ca.state, namespaceFile: namespace.state },
    ...(namespace.content !== undefined ? { namespace: namespace.content } : {}),
    ...(token.content !== undefined ? { token: readTokenClaims(token.content) } : {}),
    anonymous,
    authenticated,
    identity,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(now()).toISOString(),
  };
  return { result, secrets: token.content !== undefined ? [token.content] : [] };
}

// ---- The CLI subcommand -------------------------------------------------------------------------

export interface ProbeCommandIo {
  env: Record<string, string | undefined>;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

export const PROBE_USAGE =
  'usage: authprobe probe [--path /api] [--timeout 30000|30s] [--token-dir DIR] [--termination-log FILE]\n\n' +
  'Runs inside a probe pod, as its ServiceAccount: prints the result as JSON and writes it to the termination log.';
const USAGE = PROBE_USAGE;

/**
 * `authprobe probe ...` (argv without the subcommand). Exit codes: 0 when a result was produced
 * (whatever it says: the verdict is in the JSON), 64 for bad arguments, 70 when the result could not be
 * written to the termination log (it is still on stdout, which the pod's FallbackToLogsOnError uses).
 */
export async function probeCommand(
  argv: string[],
  io: ProbeCommandIo = {
    env: process.env,
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  },
): Promise<number> {
  let values: { path?: string; timeout?: string; 'token-dir'?: string; 'termination-log'?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        path: { type: 'string' },
        timeout: { type: 'string' },
        'token-dir': { type: 'string' },
        'termination-log': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    io.stderr(`${(err as Error).message}\n${USAGE}`);
    return 64;
  }
  const path = values.path ?? '/api';
  if (!path.startsWith('/')) {
    io.stderr(`--path must start with "/", got "${path}"\n${USAGE}`);
    return 64;
  }
  const timeoutText = values.timeout ?? '30000';
  // A bare number is milliseconds: that is how the controller passes it (spec.timeoutMs).
  const timeoutMs = /^\d+$/.test(timeoutText) ? Number(timeoutText) : parseDuration(timeoutText);
  if (timeoutMs === undefined || timeoutMs <= 0) {
    io.stderr(
      `${timeoutMs === undefined ? `--timeout: "${timeoutText}" is not a duration such as 30s or 1500ms` : '--timeout must be positive'}\n${USAGE}`,
    );
    return 64;
  }

  const { result, secrets } = await runProbe({
    tokenDir: values['token-dir'] ?? SERVICE_ACCOUNT_DIR,
    apiserverHost: io.env['KUBERNETES_SERVICE_HOST'],
    apiserverPort: io.env['KUBERNETES_SERVICE_PORT'],
    path,
    timeoutMs,
  });
  const line = serializeProbeResult(result, secrets);
  io.stdout(line);
  try {
    await writeFile(values['termination-log'] ?? DEFAULT_TERMINATION_LOG, line);
  } catch (err) {
    io.stderr(`could not write the termination log: ${(err as Error).message}`);
    return 70;
  }
  return 0;
}
