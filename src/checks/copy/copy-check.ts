import type { ResolvedCopy, ResolvedSpec } from '../../api/defaults.js';
import { ProbeReason } from '../../api/reasons.js';
import type { AuthProbe } from '../../api/types.js';
import { verdict, type Verdict } from '../../api/verdict.js';
import type { KubeApi } from '../../kube/client.js';
import { errorMessage, isNotFound, KubeApiError } from '../../kube/errors.js';
import { apiPaths, type SecretJson } from '../../kube/resources.js';
import { readCopy, type ReadCopy } from '../../copies/copy-format.js';
import { readTokenClaims } from '../../probe/claims.js';
import { runProbe } from '../../probe/program.js';
import { renewAt } from '../../copies/renewal.js';
import { PodlessCheck } from '../check.js';
import { classifyProbe } from '../pod/classify.js';
import { classifyContext, quote, secretNotFoundVerdict } from '../verdicts.js';

export interface CopyCheckDeps {
  client: KubeApi;
  now: () => number;
  /** This cluster's apiserver as the operator reaches it, and its CA (for a bare token copy). */
  localServer: URL;
  localCa: () => Promise<string | undefined>;
  /** Servers a copy may be checked against besides this cluster's (origins, e.g. https://10.0.0.1:6443). */
  allowedServers: readonly string[];
  /** The requests a consumer would make (src/probe/program.ts); replaced only in unit tests. */
  run?: typeof runProbe;
}

/** What a copy check found besides its verdict: the copy itself, for the healer (never logged). */
export interface CopyFound {
  secret: SecretJson;
  copy: ReadCopy;
  server: URL;
  /** The copy is used with this cluster (only then can the operator mint a token for it). */
  local: boolean;
}

/** The origins that mean "this cluster" wherever the operator runs (the in-cluster names and address). */
export function localOrigins(localServer: URL, env: NodeJS.ProcessEnv = process.env): Set<string> {
  const origins = new Set<string>([localServer.origin]);
  for (const host of [
    'kubernetes.default.svc',
    'kubernetes.default.svc.cluster.local',
    'kubernetes.default',
    'kubernetes',
  ])
    origins.add(`https://${host}`);
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host) {
    const port = env.KUBERNETES_SERVICE_PORT ?? '443';
    origins.add(new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`).origin);
  }
  return origins;
}

/**
 * spec.check Copy: a copy of the account's token kept in another system's Secret (a bare token, a
 * kubeconfig, an Argo CD cluster Secret) is checked where it is used: the operator makes the same two
 * requests a consumer would (the probed path, then a SelfSubjectReview) against the copy's server, with
 * the CA stored beside it. The server must be this cluster or one the admin allowed
 * (--allowed-copy-servers): an AuthProbe cannot make the operator connect anywhere else.
 */
export class CopyCheck extends PodlessCheck {
  constructor(private readonly deps: CopyCheckDeps) {
    super();
  }

  protected async verdictNow(probe: AuthProbe, spec: ResolvedSpec, fresh: boolean): Promise<Verdict> {
    return (await this.check(probe, spec, fresh)).verdict;
  }

  /** A copy due for renewal before the next interval is checked (and renewed) then. */
  protected override retryInMs(found: Verdict, spec: ResolvedSpec): number | undefined {
    const untilRenewal = found.renewAt !== undefined ? found.renewAt - this.deps.now() : undefined;
    return untilRenewal !== undefined && untilRenewal > 0 && untilRenewal < spec.intervalMs
      ? Math.max(1_000, untilRenewal)
      : undefined;
  }

  /** Reads the copy and checks it; `fresh` reads the Secret around the apiserver's watch cache. */
  async check(
    probe: AuthProbe,
    spec: ResolvedSpec,
    fresh: boolean,
  ): Promise<{ verdict: Verdict; found?: CopyFound }> {
    const copy = spec.copy as ResolvedCopy;
    const ns = probe.metadata.namespace;
    // The identity a working copy must have: the account, in its namespace on the copy's server.
    const ctx = {
      ...classifyContext(probe, spec),
      ...(copy.serviceAccountNamespace ? { namespace: copy.serviceAccountNamespace } : {}),
      tokenSource: 'Secret' as const,
      secretName: copy.secretName,
    };
    let secret: SecretJson;
    try {
      secret = await this.deps.client.get<SecretJson>(apiPaths.secret(ns, copy.secretName), {
        timeoutMs: spec.timeoutMs,
        ...(fresh ? {} : { query: { resourceVersion: '0' } }),
      });
    } catch (err) {
      if (isNotFound(err)) return { verdict: secretNotFoundVerdict(ctx) };
      return {
        verdict: verdict(
          ProbeReason.APIServerError,
          'Unknown',
          `The operator could not read secret ${copy.secretName} (${err instanceof KubeApiError ? err.status : 'no answer'}: ${quote(errorMessage(err))}); this says nothing about the token.`,
        ),
      };
    }
    const read = readCopy(secret.data, copy);
    if (!read.ok) {
      return {
        verdict: verdict(
          ProbeReason.CopyNotReadable,
          'False',
          `Secret ${copy.secretName} does not hold a ${copy.format} copy of a token: ${read.message}. Nothing is checked or changed until it does.`,
        ),
      };
    }
    const local = read.value.server === undefined;
    let server: URL;
    try {
      server = new URL(read.value.server ?? this.deps.localServer.href);
    } catch {
      return {
        verdict: verdict(
          ProbeReason.CopyNotReadable,
          'False',
          `The server of the copy in secret ${copy.secretName} (${quote(read.value.server)}) is not a URL.`,
        ),
      };
    }
    const origins = localOrigins(this.deps.localServer);
    const isLocal = local || origins.has(server.origin);
    if (server.protocol !== 'https:' || (!isLocal && !this.deps.allowedServers.includes(server.origin))) {
      return {
        verdict: verdict(
          ProbeReason.CopyServerNotAllowed,
          'False',
          `The copy in secret ${copy.secretName} is used with ${server.origin}, which is not this cluster and not ` +
            `among the servers the operator may connect to: the cluster admin allows one with the operator ` +
            `setting --allowed-copy-servers (Helm: operator.allowedCopyServers). Nothing was checked or changed.`,
        ),
      };
    }
    const ca = read.value.caPem ?? (isLocal ? await this.deps.localCa() : undefined);
    const { result } = await (this.deps.run ?? runProbe)({
      tokenDir: '',
      apiserverHost: server.hostname.replace(/^\[|\]$/g, ''),
      apiserverPort: server.port || '443',
      path: spec.path,
      timeoutMs: spec.timeoutMs,
      now: this.deps.now,
      material: { token: read.value.token, ...(ca ? { ca } : {}), namespace: ns },
    });
    const claims = readTokenClaims(read.value.token);
    const key = {
      ...(claims.keyId !== undefined ? { tokenKeyID: claims.keyId } : {}),
      ...(claims.issuer !== undefined ? { tokenIssuer: claims.issuer } : {}),
    };
    const found = classifyProbe(result, ctx);
    // Only a token the operator minted with an expiry (renew from TokenRequest) is renewed.
    const renewal = copy.renew.from === 'TokenRequest' ? renewAt(read.value.token) : undefined;
    return {
      verdict: {
        ...found,
        message: copyMessage(found, copy, read.value, server),
        ...key,
        ...(renewal !== undefined ? { renewAt: renewal } : {}),
      },
      found: { secret, copy: read.value, server, local: isLocal },
    };
  }
}

/** The verdict's message in a copy's words: which copy, where it is used. */
function copyMessage(found: Verdict, copy: ResolvedCopy, read: ReadCopy, server: URL): string {
  const which = `The copy in secret ${copy.secretName} (${read.where}, used with ${server.origin})`;
  switch (found.reason) {
    case ProbeReason.Authenticated:
    case ProbeReason.AuthenticatedForbidden:
      return `${which} authenticates as ${found.identity ?? 'the account'}${found.latencyMs !== undefined ? ` (${found.latencyMs}ms)` : ''}.`;
    case ProbeReason.TokenIdentityMismatch:
      return `${which} authenticates as ${found.identity ?? 'another user'}, not as the account this AuthProbe names: it is another account's token. It is never rewritten; fix the copy or spec.serviceAccountName.`;
    case ProbeReason.TokenRejected:
      return `${which} is rejected (401 Unauthorized): every consumer of the copy fails the same way.`;
    case ProbeReason.CACertMismatch:
      return `The CA stored with the copy in secret ${copy.secretName} (${read.where}) does not verify the certificate of ${server.origin}; its consumers fail the same way. This says nothing about the token; nothing is rewritten.`;
    case ProbeReason.APIServerUnreachable:
    case ProbeReason.ProbeTimedOut:
      return `The operator could not get an answer from ${server.origin}, the server the copy in secret ${copy.secretName} is used with (${found.message}) This says nothing about the token; nothing is rewritten.`;
    default:
      return `${which}: ${found.message}`;
  }
}
