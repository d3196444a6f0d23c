import type { Logger } from 'pino';
import { resolveSpec, type ResolvedSpec } from '../api/defaults.js';
import { LABEL_PROBE, ANNOTATION_PROBE_NOW } from '../api/labels.js';
import { ConditionType, ProbeReason } from '../api/reasons.js';
import { getCondition } from '../api/conditions.js';
import {
  AUTHPROBE_API_VERSION,
  AUTHPROBE_KIND,
  AUTHPROBE_PLURAL,
  AUTHPROBE_GROUP,
  AUTHPROBE_VERSION,
  type AuthProbe,
  type AuthProbeStatus,
} from '../api/types.js';
import {
  classifyProbe,
  classifyPodFailure,
  classifyTokenReview,
  secretNotFoundVerdict,
  serviceAccountNotFoundVerdict,
  tokenNotIssuedVerdict,
  type ClassifyContext,
  type TokenReviewCheck,
} from '../probe/classify.js';
import { readTokenClaims } from '../probe/program.js';
import { buildProbePod, newRunId, probePodOverdueAfterMs } from '../probe/pod.js';
import { parseProbeResult } from '../probe/result.js';
import { isNotFound, isAlreadyExists, KubeApiError, type KubeClient } from '../kube/client.js';
import { reviewToken, secretToken } from '../kube/token-review.js';
import { LABEL_LEGACY_TOKEN_INVALID_SINCE } from '../api/labels.js';
import type { EventRecorder } from '../events/recorder.js';
import type { OperatorMetrics } from '../metrics/metrics.js';
import type { Informer, KubeObject } from '../runtime/informer.js';
import type { Reconciler, ReconcileResult } from '../runtime/controller.js';
import { MutationCache } from '../runtime/mutation-cache.js';
import {
  ANNOTATION_POD_GENERATION,
  ANNOTATION_POD_PROBE_NOW,
  decideSchedule,
  markFromStatus,
  type PodMark,
} from './schedule.js';
import { statusAfterVerdict, statusWhileProbing, type Verdict } from './status.js';
import type { Healer } from '../heal/healer.js';

/** The parts of a Pod the controller reads, as JSON. */
export interface PodJson extends KubeObject {
  metadata: NonNullable<KubeObject['metadata']> & { name: string; namespace: string };
  spec?: { serviceAccountName?: string };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    startTime?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    containerStatuses?: Array<{
      name: string;
      state?: {
        waiting?: { reason?: string; message?: string };
        terminated?: { exitCode?: number; reason?: string; message?: string };
      };
    }>;
  };
}

export interface AuthProbeReconcilerDeps {
  client: KubeClient;
  probes: Informer<AuthProbe>;
  pods: Informer<PodJson>;
  recorder: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  /** Image for probe pods when the AuthProbe does not name one. */
  probeImage: string;
  healer?: Healer;
  now?: () => number;
}

const POD_FINISHED = new Set(['Succeeded', 'Failed']);

const probePath = (namespace: string, name?: string): string =>
  `/apis/${AUTHPROBE_GROUP}/${AUTHPROBE_VERSION}/namespaces/${encodeURIComponent(namespace)}/${AUTHPROBE_PLURAL}` +
  (name ? `/${encodeURIComponent(name)}` : '');

/**
 * Reconciles one AuthProbe: reads the verdict of a finished probe pod, records it in status,
 * Events and metrics, lets the healer act on a proven-invalid token, and starts the next probe
 * when one is due. Each visit moves one step; time enters through `requeueAfterMs`.
 */
export class AuthProbeReconciler implements Reconciler {
  private readonly written = new MutationCache<AuthProbe>();
  private readonly now: () => number;

  constructor(private readonly deps: AuthProbeReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const cached = this.deps.probes.get(key);
    if (!cached) {
      const [namespace = '', name = ''] = key.split('/');
      this.deps.metrics.forgetProbe(namespace, name);
      this.written.forget(key);
      return {};
    }
    const probe = this.written.newest(key, cached);
    if (probe.metadata.deletionTimestamp) return {};
    const resolved = resolveSpec(probe.spec);
    if (!resolved.ok) {
      await this.recordVerdict(probe, undefined, {
        reason: resolved.reason,
        readyStatus: 'False',
        message: resolved.message,
        tokenProvenInvalid: false,
      });
      return {};
    }
    const spec = resolved.spec;
    if (spec.check === 'TokenReview') return this.reconcileTokenReview(probe, spec);
    const pods = this.probePods(probe);
    const latest = pods[0];

    if (latest && latest.metadata.name !== probe.status?.lastProbe?.pod) {
      const verdict = this.verdictFromPod(probe, spec, latest);
      if (!verdict) {
        const waiting = statusWhileProbing(
          probe,
          `Probe pod ${latest.metadata.name} is running.`,
          new Date(this.now()),
        );
        if (waiting) await this.writeStatus(probe, waiting);
        // The pod's own updates wake us; this is only a backstop for the deadline.
        return { requeueAfterMs: probePodOverdueAfterMs(spec.timeoutMs) + 1_000 };
      }
      const outcome = await this.recordVerdict(probe, spec, verdict, latest);
      await this.reapOldPods(pods, spec.keepPods);
      // A replaced token is confirmed by a real pod at once, not an interval later.
      if (outcome.probeAgainNow) return this.startProbe(outcome.probe, spec, 'AfterHeal');
      return this.scheduleNext(outcome.probe, spec, latest);
    }

    const decision = decideSchedule(probe, latest && podMark(latest), spec.intervalMs, this.now());
    if (!decision.probeNow) return { requeueAfterMs: decision.inMs };
    return this.startProbe(probe, spec, decision.trigger);
  }

  /**
   * spec.check TokenReview: no pod. When a check is due, the secret's token goes to TokenReview and
   * the answer is recorded like a pod's verdict (a rejection goes to the healer, which confirms it
   * with a review of its own). Three requests when the token is fine: GET secret, POST tokenreviews,
   * PATCH status.
   */
  private async reconcileTokenReview(probe: AuthProbe, spec: ResolvedSpec): Promise<ReconcileResult> {
    const decision = decideSchedule(probe, markFromStatus(probe), spec.intervalMs, this.now());
    if (!decision.probeNow) return { requeueAfterMs: decision.inMs };
    const probeNow = probe.metadata.annotations?.[ANNOTATION_PROBE_NOW];
    const { probe: updated, probeAgainNow } = await this.recordVerdict(probe, spec, {
      ...(await this.checkWithTokenReview(probe, spec)),
      probeNow,
    });
    let current = updated;
    if (probeAgainNow) {
      // A replaced token is confirmed at once, as a pod probe would be.
      ({ probe: current } = await this.recordVerdict(current, spec, {
        ...(await this.checkWithTokenReview(current, spec, { fresh: true })),
        probeNow,
      }));
    }
    const next = decideSchedule(current, markFromStatus(current), spec.intervalMs, this.now());
    return { requeueAfterMs: next.probeNow ? 0 : next.inMs };
  }

  /**
   * A scheduled check reads the secret from the apiserver's watch cache (resourceVersion 0: no
   * quorum read from etcd per check; at worst milliseconds stale, and a rejection is re-checked with
   * a fresh read by the healer before anything is touched). The check right after a heal reads
   * fresh, so it sees the replacement.
   */
  private async checkWithTokenReview(
    probe: AuthProbe,
    spec: ResolvedSpec,
    { fresh = false }: { fresh?: boolean } = {},
  ): Promise<Verdict> {
    const { client, metrics } = this.deps;
    const ns = encodeURIComponent(probe.metadata.namespace);
    const ctx = classifyContext(probe, spec);
    const failed = (err: unknown): Verdict =>
      classifyTokenReview(
        err instanceof KubeApiError
          ? { kind: 'failed', status: err.status, message: err.message }
          : { kind: 'failed', message: err instanceof Error ? err.message : String(err) },
        ctx,
      );
    // A missing account explains a missing secret or a rejected token better than either.
    const accountMissing = async (): Promise<boolean> =>
      !(await exists(
        client,
        `/api/v1/namespaces/${ns}/serviceaccounts/${encodeURIComponent(spec.serviceAccountName)}`,
      ));
    let secret: { metadata?: { labels?: Record<string, string> }; data?: Record<string, string> };
    try {
      secret = await client.get(
        `/api/v1/namespaces/${ns}/secrets/${encodeURIComponent(spec.token.secretName ?? '')}`,
        { timeoutMs: spec.timeoutMs, ...(fresh ? {} : { query: { resourceVersion: '0' } }) },
      );
    } catch (err) {
      if (!isNotFound(err)) return failed(err);
      return (await accountMissing()) ? serviceAccountNotFoundVerdict(ctx) : secretNotFoundVerdict(ctx);
    }
    const invalidSince = secret.metadata?.labels?.[LABEL_LEGACY_TOKEN_INVALID_SINCE];
    const token = secretToken(secret);
    if (!token)
      return (await accountMissing()) ? serviceAccountNotFoundVerdict(ctx) : tokenNotIssuedVerdict(ctx);
    const started = this.now();
    let check: TokenReviewCheck;
    try {
      const review = await reviewToken(client, token, spec.timeoutMs);
      const latencyMs = Math.max(0, this.now() - started);
      check = review.authenticated
        ? { kind: 'reviewed', authenticated: true, username: review.username, latencyMs }
        : {
            kind: 'reviewed',
            authenticated: false,
            latencyMs,
            ...(review.error ? { error: review.error } : {}),
            claims: readTokenClaims(token),
          };
      metrics.probeDuration.observe({ source: spec.token.source, check: spec.check }, latencyMs / 1000);
    } catch (err) {
      return failed(err);
    }
    if (!check.authenticated && (await accountMissing())) return serviceAccountNotFoundVerdict(ctx);
    return classifyTokenReview(check, {
      ...ctx,
      ...(invalidSince !== undefined ? { legacyTokenInvalidSince: invalidSince } : {}),
    });
  }

  private scheduleNext(probe: AuthProbe, spec: ResolvedSpec, latest: PodJson): ReconcileResult {
    const decision = decideSchedule(probe, podMark(latest), spec.intervalMs, this.now());
    return { requeueAfterMs: decision.probeNow ? 0 : decision.inMs };
  }

  /** Pre-checks what a pod cannot tell apart, then creates the probe pod. */
  private async startProbe(probe: AuthProbe, spec: ResolvedSpec, trigger: string): Promise<ReconcileResult> {
    const { client, logger } = this.deps;
    const ns = probe.metadata.namespace;
    const precheck = await this.precheck(probe, spec);
    if (precheck) {
      await this.recordVerdict(probe, spec, precheck);
      return { requeueAfterMs: spec.intervalMs };
    }
    const pod = buildProbePod(probe, spec, { image: this.deps.probeImage, runId: newRunId(this.now()) });
    pod.metadata = pod.metadata ?? {};
    pod.metadata.annotations = {
      ...pod.metadata.annotations,
      [ANNOTATION_POD_GENERATION]: String(probe.metadata.generation ?? 0),
      ...(probe.metadata.annotations?.[ANNOTATION_PROBE_NOW] !== undefined
        ? { [ANNOTATION_POD_PROBE_NOW]: probe.metadata.annotations[ANNOTATION_PROBE_NOW] }
        : {}),
    };
    try {
      await client.post(`/api/v1/namespaces/${encodeURIComponent(ns)}/pods`, pod, { timeoutMs: 15_000 });
    } catch (err) {
      if (isAlreadyExists(err)) return { requeueAfterMs: 1_000 };
      const message = err instanceof Error ? err.message : String(err);
      await this.recordVerdict(probe, spec, {
        reason: ProbeReason.ProbePodFailed,
        readyStatus: 'Unknown',
        message: `The probe pod could not be created: ${message}`,
        tokenProvenInvalid: false,
      });
      return { requeueAfterMs: Math.min(spec.intervalMs, 60_000) };
    }
    logger.debug(
      { authprobe: `${ns}/${probe.metadata.name}`, pod: pod.metadata.name, trigger },
      'probe pod created',
    );
    const waiting = statusWhileProbing(
      probe,
      `Probe pod ${pod.metadata.name} started (${trigger}).`,
      new Date(this.now()),
    );
    if (waiting) await this.writeStatus(probe, waiting);
    return { requeueAfterMs: probePodOverdueAfterMs(spec.timeoutMs) + 1_000 };
  }

  /** Missing ServiceAccount or Secret: said by name, without starting a pod that could only hang. */
  private async precheck(probe: AuthProbe, spec: ResolvedSpec): Promise<Verdict | undefined> {
    const { client } = this.deps;
    const ns = encodeURIComponent(probe.metadata.namespace);
    const ctx = classifyContext(probe, spec);
    if (
      !(await exists(
        client,
        `/api/v1/namespaces/${ns}/serviceaccounts/${encodeURIComponent(spec.serviceAccountName)}`,
      ))
    ) {
      return serviceAccountNotFoundVerdict(ctx);
    }
    if (spec.token.source === 'Secret' && spec.token.secretName) {
      if (
        !(await exists(
          client,
          `/api/v1/namespaces/${ns}/secrets/${encodeURIComponent(spec.token.secretName)}`,
        ))
      ) {
        return secretNotFoundVerdict(ctx);
      }
    }
    return undefined;
  }

  /** The verdict of a finished (or hopeless) pod, or undefined while it is still working. */
  private verdictFromPod(probe: AuthProbe, spec: ResolvedSpec, pod: PodJson): Verdict | undefined {
    const name = pod.metadata.name;
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    if (terminated?.message) {
      const parsed = parseProbeResult(terminated.message);
      if (parsed.ok) {
        return { ...classifyProbe(parsed.result, classifyContext(probe, spec)), pod: name };
      }
      return {
        reason: ProbeReason.ProbePodFailed,
        readyStatus: 'Unknown',
        tokenProvenInvalid: false,
        pod: name,
        message: `Probe pod ${name} ended without a readable result: ${parsed.error}`,
      };
    }
    const createdAt = Date.parse(pod.metadata.creationTimestamp ?? '') || this.now();
    const overdue = this.now() > createdAt + probePodOverdueAfterMs(spec.timeoutMs);
    const failure = classifyPodFailure(pod.status as never, { overdue });
    if (failure) return { ...failure, pod: name };
    if (pod.status?.phase && POD_FINISHED.has(pod.status.phase)) {
      return {
        reason: ProbeReason.ProbePodFailed,
        readyStatus: 'Unknown',
        tokenProvenInvalid: false,
        pod: name,
        message: `Probe pod ${name} ended (${pod.status.phase}) without a result.`,
      };
    }
    return undefined;
  }

  /**
   * Records a verdict: status first (the source of truth), then Events and metrics. A 401 on a
   * secret-sourced token goes to the healer, which confirms it before anything is touched.
   */
  private async recordVerdict(
    probe: AuthProbe,
    spec: ResolvedSpec | undefined,
    verdictIn: Verdict,
    pod?: PodJson,
  ): Promise<{ probe: AuthProbe; probeAgainNow: boolean }> {
    const { metrics, healer } = this.deps;
    const ns = probe.metadata.namespace;
    const name = probe.metadata.name;
    let verdict = verdictIn;
    let heals = probe.status?.heals;
    let probeAgainNow = false;
    if (spec && healer) {
      const outcome = await healer.afterVerdict({ probe, spec, verdict, target: this.eventTarget(probe) });
      // The verdict stays tied to the pod it came from, so that pod is never read twice.
      verdict = {
        ...outcome.verdict,
        pod: outcome.verdict.pod ?? verdictIn.pod,
        probeNow: verdictIn.probeNow,
      };
      heals = outcome.heals ?? heals;
      probeAgainNow = outcome.probeAgainNow;
    }
    const previous = getCondition(probe.status?.conditions, ConditionType.Ready);
    const status = statusAfterVerdict(probe, verdict, new Date(this.now()), heals);
    const updated = await this.writeStatus(probe, status);

    const ready = verdict.readyStatus === 'True';
    const changed = previous?.reason !== verdict.reason || previous?.status !== verdict.readyStatus;
    if (changed || !ready) {
      // Repeats of the same failure fold into one Event with a count (see EventRecorder).
      await this.deps.recorder.record(
        this.eventTarget(probe),
        ready ? 'Normal' : 'Warning',
        verdict.reason,
        verdict.message,
      );
    }
    metrics.probes.inc({ namespace: ns, authprobe: name, reason: verdict.reason });
    metrics.authenticated.set({ namespace: ns, authprobe: name }, ready ? 1 : 0);
    if (updated.status?.lastSuccessTime) {
      metrics.lastSuccess.set(
        { namespace: ns, authprobe: name },
        Date.parse(updated.status.lastSuccessTime) / 1000,
      );
    }
    if (pod?.metadata.creationTimestamp && spec) {
      const seconds = (this.now() - Date.parse(pod.metadata.creationTimestamp)) / 1000;
      if (seconds >= 0) {
        metrics.probeDuration.observe({ source: spec.token.source, check: spec.check }, seconds);
      }
    }
    return { probe: updated, probeAgainNow };
  }

  private eventTarget(probe: AuthProbe) {
    return {
      apiVersion: AUTHPROBE_API_VERSION,
      kind: AUTHPROBE_KIND,
      name: probe.metadata.name,
      namespace: probe.metadata.namespace,
      uid: probe.metadata.uid,
    };
  }

  private async writeStatus(probe: AuthProbe, status: AuthProbeStatus): Promise<AuthProbe> {
    const updated = await this.deps.client.mergePatch<AuthProbe>(
      `${probePath(probe.metadata.namespace, probe.metadata.name)}/status`,
      { status },
      { timeoutMs: 15_000 },
    );
    this.written.remember(`${probe.metadata.namespace}/${probe.metadata.name}`, updated);
    return updated;
  }

  /** This probe's pods, newest first (owned by this very object, not a namesake deleted earlier). */
  private probePods(probe: AuthProbe): PodJson[] {
    return this.deps.pods
      .list()
      .filter(
        (pod) =>
          pod.metadata.namespace === probe.metadata.namespace &&
          pod.metadata.labels?.[LABEL_PROBE] === probe.metadata.name &&
          pod.metadata.ownerReferences?.some((ref) => ref.uid === probe.metadata.uid),
      )
      .sort(
        (a, b) =>
          (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') ||
          (b.metadata.name ?? '').localeCompare(a.metadata.name ?? ''),
      );
  }

  /** Keeps the newest `keep` finished pods for debugging and deletes the rest. */
  private async reapOldPods(pods: PodJson[], keep: number): Promise<void> {
    for (const pod of pods.slice(Math.max(1, keep))) {
      try {
        await this.deps.client.delete(
          `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/${encodeURIComponent(pod.metadata.name)}`,
          undefined,
          { timeoutMs: 10_000 },
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }
}

function classifyContext(probe: AuthProbe, spec: ResolvedSpec): ClassifyContext {
  return {
    namespace: probe.metadata.namespace,
    serviceAccountName: spec.serviceAccountName,
    tokenSource: spec.token.source,
    ...(spec.token.secretName ? { secretName: spec.token.secretName } : {}),
  };
}

async function exists(client: KubeClient, path: string): Promise<boolean> {
  try {
    await client.get(path, { timeoutMs: 10_000 });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

function podMark(pod: PodJson): PodMark {
  return {
    name: pod.metadata.name,
    createdAt: Date.parse(pod.metadata.creationTimestamp ?? '') || 0,
    annotations: pod.metadata.annotations ?? {},
  };
}
