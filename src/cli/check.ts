import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeClient } from '../kube/client.js';
import { isNotFound, KubeTransportError } from '../kube/errors.js';
import { KubeconfigError, loadClusterAccess, type ClusterAccess } from '../kube/access.js';
import { runProbe } from '../probe/program.js';
import { classifyProbe } from '../checks/pod/classify.js';
import {
  secretNotFoundVerdict,
  serviceAccountNotFoundVerdict,
  type ClassifyContext,
} from '../checks/verdicts.js';
import type { Verdict } from '../api/verdict.js';
import { createLogger } from '../log/logger.js';
import { readTokenClaims } from '../probe/claims.js';
import { nameRejectionCause } from '../signals/rejection-cause.js';
import { TrustedKeys } from '../signals/trusted-keys.js';
import { parseDuration } from '../api/duration.js';
import type { ProbeResult } from '../probe/result.js';
import { LABEL_LEGACY_TOKEN_INVALID_SINCE } from '../api/labels.js';
import { secretToken, type SecretJson } from '../kube/resources.js';

/** `prog` is the name the CLI runs as: `authprobe`, or `kubectl authprobe` as a kubectl plugin. */
export const checkUsage = (prog = 'authprobe'): string =>
  `usage: ${prog} check -n NAMESPACE --service-account NAME [--secret NAME] [--path /api] [--timeout 10s] [--output text|json] [--kubeconfig FILE]

Runs the probe once from this workstation, with the token a workload of that ServiceAccount has:
the token of --secret, or (without it) a fresh projected token from the TokenRequest API.
The cluster: --kubeconfig, else $KUBECONFIG, else in-cluster, else ~/.kube/config (its current context).
Exit codes: 0 the token authenticates; 1 the token or its mount is broken; 2 undecided (apiserver
unreachable, timeout); 64 bad arguments; 69 the kubeconfig's own credential cannot do the checks.`;

export interface CheckIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: CheckIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

/** Exit code for a verdict, so scripts can branch on the outcome. */
export function exitCodeFor(verdict: Verdict): number {
  if (verdict.readyStatus === 'True') return 0;
  if (verdict.readyStatus === 'False') return 1;
  return 2;
}

export async function checkCommand(
  argv: string[],
  io: CheckIo = defaultIo,
  prog = 'authprobe',
): Promise<number> {
  const USAGE = checkUsage(prog);
  let values: Record<string, string | undefined>;
  let help: boolean | undefined;
  try {
    ({
      values: { help, ...values },
    } = parseArgs({
      args: argv,
      options: {
        namespace: { type: 'string', short: 'n' },
        'service-account': { type: 'string' },
        secret: { type: 'string' },
        path: { type: 'string' },
        timeout: { type: 'string' },
        output: { type: 'string', short: 'o' },
        kubeconfig: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    io.stderr(`${prog} check: ${(err as Error).message}\n${USAGE}\n`);
    return 64;
  }
  if (help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  const namespace = values.namespace ?? 'default';
  const serviceAccount = values['service-account'];
  const output = values.output ?? 'text';
  if (!serviceAccount) {
    io.stderr(`${prog} check: --service-account is required\n${USAGE}\n`);
    return 64;
  }
  if (output !== 'text' && output !== 'json') {
    io.stderr(`${prog} check: --output must be text or json, got "${output}"\n`);
    return 64;
  }
  const timeoutMs = parseDuration(values.timeout ?? '10s');
  if (timeoutMs === undefined) {
    io.stderr(`${prog} check: --timeout "${values.timeout}" is not a duration such as 10s or 500ms\n`);
    return 64;
  }
  let access: ClusterAccess;
  try {
    access = await loadClusterAccess(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {});
  } catch (err) {
    if (!(err instanceof KubeconfigError)) throw err;
    io.stderr(`authprobe check: ${err.message}\n`);
    return 64;
  }
  const client = new KubeClient(access);
  const ctx: ClassifyContext = {
    namespace,
    serviceAccountName: serviceAccount,
    tokenSource: values.secret ? 'Secret' : 'Projected',
    ...(values.secret ? { secretName: values.secret } : {}),
  };
  try {
    const material = await tokenMaterial(client, ctx);
    let verdict: Verdict;
    let result: ProbeResult | undefined;
    if ('verdict' in material) {
      verdict = material.verdict;
    } else {
      result = await probeWith(client, material, values.path ?? '/api', timeoutMs);
      verdict = classifyProbe(result, {
        ...ctx,
        ...(material.invalidSince ? { legacyTokenInvalidSince: material.invalidSince } : {}),
      });
      // A rejected secret token: is its signing key still trusted? (the same naming as the controller's)
      if (values.secret && verdict.tokenProvenInvalid) {
        const keyID = readTokenClaims(material.token).keyId;
        const keys = new TrustedKeys({
          client,
          logger: createLogger({ level: 'silent' }),
          now: Date.now,
          onChange: () => {},
        });
        await keys.refresh();
        verdict = nameRejectionCause(
          { ...verdict, ...(keyID !== undefined ? { tokenKeyID: keyID } : {}) },
          keys,
        );
      }
    }
    io.stdout(
      output === 'json'
        ? `${JSON.stringify({ verdict, result }, null, 2)}\n`
        : describe(ctx, verdict, result),
    );
    return exitCodeFor(verdict);
  } catch (err) {
    // The apiserver not reached (refused, timed out): undecided, like a probe that could not reach it.
    if (err instanceof KubeTransportError) {
      io.stderr(
        `authprobe check: undecided, the apiserver ${access.server.origin} was not reached: ${err.message}\n`,
      );
      return 2;
    }
    io.stderr(`authprobe check: ${(err as Error).message}\n`);
    return 69;
  } finally {
    client.close();
  }
}

type Material = { verdict: Verdict } | { token: string; ca: string; invalidSince?: string };

/** The token and CA a workload of the ServiceAccount would have mounted. */
async function tokenMaterial(client: KubeClient, ctx: ClassifyContext): Promise<Material> {
  const ns = encodeURIComponent(ctx.namespace);
  const sa = encodeURIComponent(ctx.serviceAccountName);
  try {
    await client.get(`/api/v1/namespaces/${ns}/serviceaccounts/${sa}`);
  } catch (err) {
    if (isNotFound(err)) return { verdict: serviceAccountNotFoundVerdict(ctx) };
    throw err;
  }
  if (ctx.secretName) {
    let secret: SecretJson;
    try {
      secret = await client.get<SecretJson>(
        `/api/v1/namespaces/${ns}/secrets/${encodeURIComponent(ctx.secretName)}`,
      );
    } catch (err) {
      if (isNotFound(err)) return { verdict: secretNotFoundVerdict(ctx) };
      throw err;
    }
    const ca = secret.data?.['ca.crt'] ? Buffer.from(secret.data['ca.crt'], 'base64').toString('utf8') : '';
    return {
      token: secretToken(secret) ?? '',
      ca,
      invalidSince: secret.metadata.labels?.[LABEL_LEGACY_TOKEN_INVALID_SINCE],
    };
  }
  const request = await client.post<{ status: { token: string } }>(
    `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 600 },
    },
  );
  const rootCa = await client.get<{ data?: Record<string, string> }>(
    `/api/v1/namespaces/${ns}/configmaps/kube-root-ca.crt`,
  );
  return { token: request.status.token, ca: rootCa.data?.['ca.crt'] ?? '' };
}

/** Lays the material out like the pod mount (a private temp dir) and runs the very probe program. */
async function probeWith(
  client: KubeClient,
  material: { token: string; ca: string },
  path: string,
  timeoutMs: number,
): Promise<ProbeResult> {
  const dir = await mkdtemp(join(tmpdir(), 'authprobe-check-'));
  try {
    if (material.token) await writeFile(join(dir, 'token'), material.token, { mode: 0o600 });
    if (material.ca) await writeFile(join(dir, 'ca.crt'), material.ca, { mode: 0o600 });
    const { result } = await runProbe({
      tokenDir: dir,
      apiserverHost: client.server.hostname,
      apiserverPort: client.server.port || '443',
      path,
      timeoutMs,
    });
    // A workstation has no namespace file; that is not something to warn about here.
    return { ...result, files: { ...result.files, namespaceFile: 'present' } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function describe(ctx: ClassifyContext, verdict: Verdict, result: ProbeResult | undefined): string {
  const lines = [
    `ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName}, token from ${ctx.secretName ? `secret ${ctx.secretName}` : 'the TokenRequest API (projected)'}`,
  ];
  if (result) {
    lines.push(`  files         token ${result.files.tokenFile}, ca.crt ${result.files.caFile}`);
    lines.push(`  without token ${stepText(result.anonymous)}`);
    lines.push(`  with token    ${stepText(result.authenticated)}`);
    const id = result.identity;
    lines.push(
      `  identity      ${id.outcome === 'identity' ? id.username : id.outcome === 'response' ? `HTTP ${id.httpStatus}` : id.outcome === 'error' ? id.error.code : id.why}`,
    );
  }
  lines.push(`verdict: ${verdict.reason} (Ready=${verdict.readyStatus})`);
  lines.push(`  ${verdict.message}`);
  return `${lines.join('\n')}\n`;
}

function stepText(step: ProbeResult['anonymous']): string {
  if (step.outcome === 'response')
    return `HTTP ${step.httpStatus}${step.reason ? ` ${step.reason}` : ''} in ${step.latencyMs} ms`;
  if (step.outcome === 'error') return `no answer: ${step.error.code}`;
  return `skipped: ${step.why}`;
}
