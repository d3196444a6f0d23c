/**
 * The in-pod program against a fake apiserver on 127.0.0.1 (TLS with a test CA), with the token files
 * in a temporary directory. Checks what it reports and that the token never appears in its output.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProbeReason } from '../../../src/api/reasons.js';
import { classifyProbe } from '../../../src/checks/pod/classify.js';
import { probeCommand, runProbe, type ProbeOptions } from '../../../src/probe/program.js';
import { readTokenClaims } from '../../../src/probe/claims.js';
import { parseProbeResult } from '../../../src/probe/result.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

const USER = 'system:serviceaccount:team:dashboard';
const VALID_TOKEN = `${b64({ alg: 'RS256', kid: 'key-1' })}.${b64({
  iss: 'https://kubernetes.default.svc',
  sub: USER,
  iat: 1_700_000_000,
  exp: 1_700_003_600,
  'kubernetes.io': { namespace: 'team' },
})}.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1sZWFr`;
const REVOKED_TOKEN = `${b64({ alg: 'RS256', kid: 'old-key' })}.${b64({
  iss: 'kubernetes/serviceaccount',
  sub: USER,
  'kubernetes.io/serviceaccount/secret.name': 'dashboard-token',
})}.cmV2b2tlZC1zaWduYXR1cmUtdGhhdC1tdXN0LW5vdC1sZWFr`;

const status = (code: number, reason: string, message: string): string =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

let server: Server;
let port: string;
const dirs: string[] = [];

beforeAll(async () => {
  server = createServer({ key: fixture('server.key'), cert: fixture('server.crt') }, (req, res) => {
    const auth = req.headers.authorization;
    if (req.url === '/slow') return; // never answers
    if (auth === undefined) {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      return res.end(status(403, 'Forbidden', 'forbidden: User "system:anonymous" cannot get path "/api"'));
    }
    if (auth !== `Bearer ${VALID_TOKEN}`) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      return res.end(status(401, 'Unauthorized', 'Unauthorized'));
    }
    if (req.method === 'POST' && req.url === '/apis/authentication.k8s.io/v1/selfsubjectreviews') {
      res.writeHead(201, { 'Content-Type': 'application/json' });
      return res.end(
        JSON.stringify({
          kind: 'SelfSubjectReview',
          status: {
            userInfo: {
              username: USER,
              uid: 'u-1',
              groups: ['system:serviceaccounts', 'system:authenticated'],
            },
          },
        }),
      );
    }
    if (req.url === '/api') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'APIVersions', versions: ['v1'] }));
    }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(status(404, 'NotFound', 'the server could not find the requested resource'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = String((server.address() as AddressInfo).port);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function mount(files: { token?: string; ca?: string; namespace?: string }): string {
  const dir = mkdtempSync(join(tmpdir(), 'authprobe-sa-'));
  dirs.push(dir);
  if (files.token !== undefined) writeFileSync(join(dir, 'token'), files.token);
  if (files.ca !== undefined) writeFileSync(join(dir, 'ca.crt'), files.ca);
  if (files.namespace !== undefined) writeFileSync(join(dir, 'namespace'), files.namespace);
  return dir;
}

function options(tokenDir: string, overrides: Partial<ProbeOptions> = {}): ProbeOptions {
  return {
    tokenDir,
    apiserverHost: '127.0.0.1',
    apiserverPort: port,
    path: '/api',
    timeoutMs: 5000,
    ...overrides,
  };
}

const ctx = { namespace: 'team', serviceAccountName: 'dashboard', tokenSource: 'Projected' as const };

describe('runProbe', () => {
  it('a valid token: 403 without it, 200 with it, and the identity it carries', async () => {
    const { result } = await runProbe(
      options(mount({ token: VALID_TOKEN, ca: fixture('ca.crt'), namespace: 'team' })),
    );
    expect(result.files).toEqual({ tokenFile: 'present', caFile: 'present', namespaceFile: 'present' });
    expect(result.namespace).toBe('team');
    expect(result.anonymous).toMatchObject({ outcome: 'response', httpStatus: 403, reason: 'Forbidden' });
    expect(result.authenticated).toMatchObject({ outcome: 'response', httpStatus: 200, pathsSample: ['v1'] });
    expect(result.identity).toEqual({
      outcome: 'identity',
      username: USER,
      uid: 'u-1',
      groups: ['system:serviceaccounts', 'system:authenticated'],
    });
    expect(result.token).toEqual({
      kind: 'bound',
      issuer: 'https://kubernetes.default.svc',
      subject: USER,
      keyId: 'key-1',
      issuedAt: '2023-11-14T22:13:20.000Z',
      expiresAt: '2023-11-14T23:13:20.000Z',
    });
    expect(classifyProbe(result, ctx).reason).toBe(ProbeReason.Authenticated);
  });

  it('a rejected token: 401 on the request and on the SelfSubjectReview', async () => {
    const { result } = await runProbe(
      options(mount({ token: REVOKED_TOKEN, ca: fixture('ca.crt'), namespace: 'team' })),
    );
    expect(result.authenticated).toMatchObject({
      outcome: 'response',
      httpStatus: 401,
      reason: 'Unauthorized',
    });
    expect(result.identity).toMatchObject({ outcome: 'response', httpStatus: 401 });
    expect(result.token?.kind).toBe('legacy');
    expect(classifyProbe(result, ctx)).toMatchObject({
      reason: ProbeReason.TokenRejected,
      tokenProvenInvalid: true,
    });
  });

  it('a ca.crt that does not sign the apiserver certificate is a TLS error, not a verdict on the token', async () => {
    const { result } = await runProbe(
      options(mount({ token: VALID_TOKEN, ca: fixture('other-ca.crt'), namespace: 'team' })),
    );
    expect(result.authenticated.outcome).toBe('error');
    expect(result.identity.outcome).toBe('skipped');
    expect(classifyProbe(result, ctx)).toMatchObject({
      reason: ProbeReason.CACertMismatch,
      tokenProvenInvalid: false,
    });
  });

  it('no token file: connectivity is still checked, the token steps are skipped', async () => {
    const { result } = await runProbe(options(mount({ ca: fixture('ca.crt') })));
    expect(result.files).toEqual({ tokenFile: 'missing', caFile: 'present', namespaceFile: 'missing' });
    expect(result.anonymous).toMatchObject({ outcome: 'response', httpStatus: 403 });
    expect(result.authenticated).toEqual({ outcome: 'skipped', why: 'token file is missing' });
    expect(classifyProbe(result, ctx).reason).toBe(ProbeReason.TokenNotMounted);
  });

  it('a closed port is unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = String((closed.address() as AddressInfo).port);
    await new Promise((resolve) => closed.close(resolve));
    const { result } = await runProbe(
      options(mount({ token: VALID_TOKEN, ca: fixture('ca.crt') }), { apiserverPort: closedPort }),
    );
    expect(result.authenticated).toMatchObject({ outcome: 'error', error: { code: 'ECONNREFUSED' } });
    expect(classifyProbe(result, ctx).reason).toBe(ProbeReason.APIServerUnreachable);
  });

  it('an apiserver that never answers costs at most the timeout', async () => {
    const started = Date.now();
    const { result } = await runProbe(
      options(mount({ token: VALID_TOKEN, ca: fixture('ca.crt') }), { path: '/slow', timeoutMs: 1500 }),
    );
    expect(Date.now() - started).toBeLessThan(1500);
    expect(result.authenticated).toMatchObject({ outcome: 'error', error: { code: 'RESPONSE_TIMEOUT' } });
    expect(classifyProbe(result, ctx).reason).toBe(ProbeReason.ProbeTimedOut);
  });

  it('without KUBERNETES_SERVICE_HOST it says so', async () => {
    const { result } = await runProbe(options(mount({ token: VALID_TOKEN }), { apiserverHost: undefined }));
    expect(result.authenticated).toMatchObject({ outcome: 'error', error: { code: 'NO_APISERVER_ADDRESS' } });
  });
});

describe('probeCommand', () => {
  function io(env: Record<string, string | undefined>) {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { env, stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l) } };
  }

  it('writes one JSON result to the termination log and stdout, exit 0, no token anywhere', async () => {
    const dir = mount({ token: REVOKED_TOKEN, ca: fixture('ca.crt'), namespace: 'team' });
    const log = join(dir, 'termination-log');
    const run = io({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port });
    const code = await probeCommand(
      ['--path', '/api', '--timeout', '5000', '--token-dir', dir, '--termination-log', log],
      run.io,
    );
    expect(code).toBe(0);
    const written = readFileSync(log, 'utf8');
    expect(run.out).toEqual([written]);
    expect(Buffer.byteLength(written)).toBeLessThanOrEqual(4096);
    expect(written).not.toContain(REVOKED_TOKEN);
    expect(written).not.toContain(REVOKED_TOKEN.split('.')[2]);
    const parsed = parseProbeResult(written);
    expect(parsed.ok && parsed.result.authenticated).toMatchObject({ httpStatus: 401 });
  });

  it.each([[['--bogus']], [['--path', 'api']], [['--timeout', 'soon']], [['--timeout', '0']]])(
    'rejects bad arguments %j with exit 64',
    async (argv) => {
      const run = io({});
      expect(await probeCommand(argv, run.io)).toBe(64);
      expect(run.err.join('\n')).toContain('usage: authprobe probe');
    },
  );

  it('accepts a duration for --timeout', async () => {
    const dir = mount({});
    const run = io({});
    const code = await probeCommand(
      ['--timeout', '2s', '--token-dir', dir, '--termination-log', join(dir, 'log')],
      run.io,
    );
    expect(code).toBe(0);
  });

  it('exit 70 when the termination log cannot be written (stdout still has the result)', async () => {
    const dir = mount({});
    const run = io({});
    const code = await probeCommand(
      ['--token-dir', dir, '--termination-log', join(dir, 'no', 'such', 'dir')],
      run.io,
    );
    expect(code).toBe(70);
    expect(run.out).toHaveLength(1);
  });
});

describe('readTokenClaims', () => {
  it('reads public claims only and survives garbage', () => {
    expect(readTokenClaims('not-a-jwt')).toEqual({ kind: 'unknown' });
    expect(readTokenClaims(REVOKED_TOKEN)).toEqual({
      kind: 'legacy',
      issuer: 'kubernetes/serviceaccount',
      subject: USER,
      keyId: 'old-key',
    });
  });
});
