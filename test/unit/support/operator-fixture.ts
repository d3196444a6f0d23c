/**
 * The operator's controller layer wired as src/operator/run.ts wires it, over the fake apiserver
 * (./fake-kube.ts): a reconciler with both checks, the SecretHealer, the rotation signal, Events kept
 * in order, informer caches read from the fake store, and a clock that moves only when a test says.
 */
import { ANNOTATION_CHECK_GENERATION, SECRET_TYPE_SERVICE_ACCOUNT_TOKEN } from '../../../src/api/labels.js';
import { getCondition } from '../../../src/api/conditions.js';
import { resolveSpec, type ResolvedSpec } from '../../../src/api/defaults.js';
import {
  AUTHPROBE_API_VERSION,
  AUTHPROBE_KIND,
  type AuthProbe,
  type AuthProbeSpec,
  type Condition,
} from '../../../src/api/types.js';
import type { PodCache } from '../../../src/checks/pod/pod-check.js';
import { PodCheck } from '../../../src/checks/pod/pod-check.js';
import { TokenReviewCheckKind } from '../../../src/checks/token-review/token-review-check.js';
import { CopyCheck, type CopyCheckDeps } from '../../../src/checks/copy/copy-check.js';
import { readTokenClaims } from '../../../src/probe/claims.js';
import { AuthProbeReconciler, type AuthProbeCache } from '../../../src/controller/authprobe-reconciler.js';
import type { AnyEventReason, EventSink, EventTarget, EventType } from '../../../src/events/recorder.js';
import { SecretHealer } from '../../../src/heal/secret-healer.js';
import { apiPaths, type PodJson, type SecretJson } from '../../../src/kube/resources.js';
import { OperatorMetrics } from '../../../src/metrics/metrics.js';
import { serializeProbeResult, type ProbeResult } from '../../../src/probe/result.js';
import { RotationSignal } from '../../../src/signals/rotation.js';
import type { KeyFacts } from '../../../src/signals/rejection-cause.js';
import { FakeKube, tokensController } from './fake-kube.js';
import { memoryLogger } from './logger.js';

export const NS = 'team';
export const SA = 'app';
export const SECRET = 'app-token';
export const PROBE = 'app-probe';
export const KEY = `${NS}/${PROBE}`;
export const USERNAME = `system:serviceaccount:${NS}:${SA}`;
export const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);

export const paths = {
  probe: apiPaths.authProbe(NS, PROBE),
  secret: apiPaths.secret(NS, SECRET),
  secrets: apiPaths.secrets(NS),
  pods: apiPaths.pods(NS),
  serviceAccount: apiPaths.serviceAccount(NS, SA),
  /** apiPaths has no collection path for ServiceAccounts: the operator never lists or creates them. */
  serviceAccounts: `/api/v1/namespaces/${NS}/serviceaccounts`,
  tokenReviews: apiPaths.tokenReviews(),
};

export const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** A clock that moves only when told (synchronously, so a fake's hook can move it mid-call). */
export class ManualClock {
  constructor(private current = T0) {}
  readonly now = (): number => this.current;
  advance(ms: number): void {
    this.current += ms;
  }
}

export interface RecordedEvent {
  object: string;
  type: EventType;
  reason: AnyEventReason;
  message: string;
}

/** An EventSink that keeps every Event in order (no folding of repeats, unlike EventRecorder). */
export class FakeEvents implements EventSink {
  readonly events: RecordedEvent[] = [];
  /** The objects whose Events the recorder was told to forget (kind/namespace/name). */
  readonly forgotten: string[] = [];

  async record(target: EventTarget, type: EventType, reason: AnyEventReason, message: string): Promise<void> {
    this.events.push({ object: `${target.kind}/${target.namespace}/${target.name}`, type, reason, message });
  }

  forget(target: Pick<EventTarget, 'kind' | 'namespace' | 'name'>): void {
    this.forgotten.push(`${target.kind}/${target.namespace}/${target.name}`);
  }

  reasons(): string[] {
    return this.events.map((e) => e.reason);
  }

  find(reason: AnyEventReason): RecordedEvent | undefined {
    return this.events.find((e) => e.reason === reason);
  }

  clear(): void {
    this.events.length = 0;
  }
}

/** The AuthProbe informer's cache, read straight from the fake store. */
export const authProbeCache = (kube: FakeKube): AuthProbeCache => ({
  get: (key) => {
    const [namespace = '', name = ''] = key.split('/');
    return kube.peek<AuthProbe>(apiPaths.authProbe(namespace, name));
  },
  list: () => kube.all<AuthProbe>('authprobes'),
});

/** The probe-pod informer's cache, read straight from the fake store. */
export const podCache = (kube: FakeKube): PodCache => ({ list: () => kube.all<PodJson>('pods') });

export interface OperatorOptions {
  /** How long the healer waits for the tokens controller (SecretHealer's fillTimeoutMs). */
  fillTimeoutMs?: number;
  healBudgetPerHour?: number;
  /** Install the fake tokens controller (default true). */
  tokensController?: boolean;
  /** What the tokens-controller canary answers (default: it works). */
  canary?: { check(): Promise<{ ok: true } | { ok: false; message: string }> };
  /** The tokens the fake tokens controller issues (default issued-token-N). */
  issue?: (n: number) => string;
  /** The apiserver's trusted signing keys, as the reconciler sees them. */
  keys?: KeyFacts;
  statusHeartbeatMs?: number;
  /** How many AuthProbes per namespace the operator runs (default 0: no limit). */
  maxPerNamespace?: number;
}

/** The reconciler and the healer over a fake apiserver, wired as buildOperator wires them. */
export function fakeOperator(options: OperatorOptions = {}) {
  const clock = new ManualClock();
  const kube = new FakeKube(clock.now);
  const events = new FakeEvents();
  const log = memoryLogger('debug');
  const metrics = new OperatorMetrics(false);
  const now = clock.now;
  if (options.tokensController ?? true) kube.onCreate(paths.secrets, tokensController(kube, options.issue));
  const copyCheck = new CopyCheck({
    client: kube,
    now,
    localServer: new URL('https://127.0.0.1:6443'),
    localCa: async () => undefined,
    allowedServers: ['https://10.0.0.9:6443'],
    run: copyServer(kube),
  });
  const healer = new SecretHealer({
    recheckCopy: (probe, spec) => copyCheck.check(probe, spec, true),
    client: kube,
    recorder: events,
    metrics,
    logger: log.logger,
    config: { healBudgetPerHour: options.healBudgetPerHour ?? 10 },
    now,
    fillTimeoutMs: options.fillTimeoutMs ?? 2_000,
    reconfirmAfterMs: 0,
    canary: options.canary ?? { check: async () => ({ ok: true }) },
  });
  const reconciler = new AuthProbeReconciler({
    client: kube,
    probes: authProbeCache(kube),
    checks: {
      Pod: new PodCheck({
        client: kube,
        pods: podCache(kube),
        logger: log.logger,
        policy: {
          probeImage: 'authprobe:test',
          allowedImages: [],
          allowedPriorityClasses: [],
          allowedTolerationKeys: [],
          allowedLabelPrefixes: [],
          allowedAnnotationPrefixes: [],
          maxCpu: 0.1,
          maxMemory: 256 * 2 ** 20,
        },
        now,
      }),
      TokenReview: new TokenReviewCheckKind({ client: kube, now }),
      Copy: copyCheck,
    },
    recorder: events,
    metrics,
    logger: log.logger,
    healer,
    scope: {
      operatorNamespace: 'authprobe-system',
      excludedNamespaces: ['kube-system'],
      maxPerNamespace: options.maxPerNamespace ?? 0,
    },
    ...(options.keys ? { keys: options.keys } : {}),
    ...(options.statusHeartbeatMs !== undefined ? { statusHeartbeatMs: options.statusHeartbeatMs } : {}),
    rotation: new RotationSignal({
      recorder: events,
      metrics,
      logger: log.logger,
      operatorNamespace: 'authprobe-system',
      namespaceThreshold: 3,
      windowMs: 120_000,
      now,
    }),
    now,
  });
  const reconcile = () => reconciler.reconcile(KEY);
  return { clock, kube, events, log, metrics, healer, reconciler, reconcile };
}

export type FakeOperator = ReturnType<typeof fakeOperator>;

// ---- The world a test starts from ------------------------------------------------------------------

/** The ServiceAccount. */
export function addServiceAccount(kube: FakeKube): void {
  kube.add(paths.serviceAccounts, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: SA },
  });
}

/** A token secret as kube-controller-manager once filled it, holding `token`. */
export function addTokenSecret(
  kube: FakeKube,
  token: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): SecretJson {
  const sa = kube.peek(paths.serviceAccount);
  return kube.add(paths.secrets, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: SECRET,
      labels: extra.labels ?? {},
      annotations: {
        'kubernetes.io/service-account.name': SA,
        'kubernetes.io/service-account.uid': sa?.metadata.uid ?? 'old-sa-uid',
        ...extra.annotations,
      },
    },
    type: SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
    data: { token: b64(token), 'ca.crt': b64('fake-ca'), namespace: b64(NS) },
  }) as SecretJson;
}

/** An AuthProbe of the secret (by default), created as kubectl would (generation 1). */
export function addAuthProbe(kube: FakeKube, spec: Partial<AuthProbeSpec> = {}): AuthProbe {
  return kube.add(apiPaths.authProbes(NS), {
    apiVersion: AUTHPROBE_API_VERSION,
    kind: AUTHPROBE_KIND,
    metadata: { name: PROBE },
    spec: { serviceAccountName: SA, token: { source: 'Secret', secretName: SECRET }, ...spec },
  }) as unknown as AuthProbe;
}

export function resolved(probe: AuthProbe): ResolvedSpec {
  const r = resolveSpec(probe.spec);
  if (!r.ok) throw new Error(r.message);
  return r.spec;
}

/** The AuthProbe as stored now. */
export const storedProbe = (kube: FakeKube): AuthProbe => {
  const probe = kube.peek<AuthProbe>(paths.probe);
  if (!probe) throw new Error('no AuthProbe');
  return probe;
};

export const ready = (kube: FakeKube): Condition | undefined =>
  getCondition(storedProbe(kube).status?.conditions, 'Ready');

export const storedSecret = (kube: FakeKube): SecretJson | undefined => kube.peek<SecretJson>(paths.secret);

// ---- Probe pods ---------------------------------------------------------------------------------------

/** What a probe pod reports for an answer `httpStatus` to GET /api with the token. */
export function probeResult(httpStatus: number): ProbeResult {
  const authenticated = httpStatus !== 401 && httpStatus < 500;
  return {
    version: 1,
    apiserver: '10.96.0.1:443',
    path: '/api',
    files: { tokenFile: 'present', caFile: 'present', namespaceFile: 'present' },
    namespace: NS,
    token: { kind: 'legacy', issuer: 'kubernetes/serviceaccount', subject: USERNAME },
    anonymous: { outcome: 'response', httpStatus: 401, latencyMs: 2, reason: 'Unauthorized' },
    authenticated: {
      outcome: 'response',
      httpStatus,
      latencyMs: 4,
      ...(httpStatus === 401 ? { reason: 'Unauthorized', message: 'Unauthorized' } : {}),
      ...(httpStatus === 403
        ? { reason: 'Forbidden', message: `forbidden: User "${USERNAME}" cannot get path "/api"` }
        : {}),
      ...(httpStatus >= 500 ? { reason: 'ServiceUnavailable', message: 'etcdserver: leader changed' } : {}),
    },
    identity: authenticated
      ? { outcome: 'identity', username: USERNAME }
      : { outcome: 'response', httpStatus: httpStatus === 401 ? 401 : httpStatus },
    startedAt: new Date(T0).toISOString(),
    finishedAt: new Date(T0 + 10).toISOString(),
  };
}

/** The probe pods of the AuthProbe, newest last. */
export function probePods(kube: FakeKube): PodJson[] {
  return kube
    .list<PodJson>(paths.pods)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
}

export function latestProbePod(kube: FakeKube): PodJson {
  const pod = probePods(kube).at(-1);
  if (!pod) throw new Error('no probe pod');
  return pod;
}

/** The kubelet's report of a probe container that wrote `result` to its termination message and exited. */
export function finishPod(kube: FakeKube, podName: string, result: ProbeResult): void {
  kube.update(apiPaths.pod(NS, podName), (pod) => {
    pod['status'] = {
      phase: 'Succeeded',
      containerStatuses: [
        {
          name: 'probe',
          state: { terminated: { exitCode: 0, reason: 'Completed', message: serializeProbeResult(result) } },
        },
      ],
    };
  });
}

export const podGeneration = (pod: { metadata?: { annotations?: Record<string, string> } }) =>
  pod.metadata?.annotations?.[ANNOTATION_CHECK_GENERATION];

/** A JWT-shaped token signed (in name only) by key `kid`: the operator reads its header, never checks it. */
export function jwt(kid: string, secretName = SECRET, n = 0): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return [
    part({ alg: 'RS256', kid }),
    part({
      iss: 'kubernetes/serviceaccount',
      sub: USERNAME,
      'kubernetes.io/serviceaccount/secret.name': secretName,
      n,
    }),
    'signature',
  ].join('.');
}

/** Trusted signing keys that a test sets by hand. */
export function fixedKeys(...trusted: string[]): KeyFacts & { set(...kids: string[]): void } {
  let current = new Set(trusted);
  return {
    current: () => current,
    retiredAt: () => undefined,
    set: (...kids) => {
      current = new Set(kids);
    },
  };
}

/**
 * The requests a consumer of a copy makes, answered as the fake apiserver's token table says: 200 and a
 * SelfSubjectReview naming the account for a token it accepts, 401 otherwise. Records each server asked.
 */
export function copyServer(kube: FakeKube, asked: string[] = []): NonNullable<CopyCheckDeps['run']> {
  return async (options) => {
    asked.push(`${options.apiserverHost ?? ''}:${options.apiserverPort ?? ''}`);
    const token = options.material?.token ?? '';
    const username = kube.authenticatedAs(token);
    const answer = probeResult(username ? 200 : 401);
    return {
      result: {
        ...answer,
        apiserver: `${options.apiserverHost ?? ''}:${options.apiserverPort ?? ''}`,
        token: readTokenClaims(token),
        identity: username ? { outcome: 'identity', username } : answer.identity,
      },
      secrets: [token],
    };
  };
}
