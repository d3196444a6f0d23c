import type { Logger } from 'pino';
import type { ResolvedSpec } from '../../api/defaults.js';
import {
  ANNOTATION_CHECK_GENERATION,
  ANNOTATION_CHECK_PROBE_NOW,
  ANNOTATION_CHECK_TOKEN_ISSUER,
  ANNOTATION_CHECK_TOKEN_KEY_ID,
  ANNOTATION_PROBE_NOW,
  LABEL_PROBE,
} from '../../api/labels.js';
import { ProbeReason } from '../../api/reasons.js';
import type { AuthProbe } from '../../api/types.js';
import { verdict, type Verdict } from '../../api/verdict.js';
import type { KubeApi } from '../../kube/client.js';
import { errorMessage, isAlreadyExists, isNotFound, KubeApiError } from '../../kube/errors.js';
import {
  apiPaths,
  getOrUndefined,
  secretToken,
  type PodJson,
  type SecretJson,
  type ServiceAccountJson,
} from '../../kube/resources.js';
import { judgeTokenSecret } from '../provenance.js';
import { parseProbeResult } from '../../probe/result.js';
import { readTokenClaims } from '../../probe/claims.js';
import {
  markFromStatus,
  type CheckMark,
  type Observation,
  type ProbeTrigger,
  type Started,
  type TokenCheck,
} from '../check.js';
import {
  classifyContext,
  secretNotFoundVerdict,
  serviceAccountNotFoundVerdict,
  tokenNotIssuedVerdict,
} from '../verdicts.js';
import {
  classifyPodFailure,
  classifyProbe,
  podCreateFailedVerdict,
  unreadableResultVerdict,
} from './classify.js';
import { buildProbePod, newRunId, probePodOverdueAfterMs } from './probe-pod.js';
import { judgePodTemplate, type ProbePodPolicy } from './pod-policy.js';

/** What the pod check reads: the operator's own probe pods, from the informer's cache. */
export interface PodCache {
  list(): PodJson[];
}

export interface PodCheckDeps {
  client: KubeApi;
  pods: PodCache;
  logger: Logger;
  /** What a probe pod may ask for (the admin's bounds); its probeImage is the default image. */
  policy: ProbePodPolicy;
  now: () => number;
}

const POD_FINISHED = new Set(['Succeeded', 'Failed']);

/**
 * spec.check Pod: a pod that runs as the service account, mounts the token as a consumer would and
 * writes what it saw to its termination message (src/probe/program.ts); this side creates it, reads
 * its result and reaps old pods.
 */
export class PodCheck implements TokenCheck {
  constructor(private readonly deps: PodCheckDeps) {}

  observe(probe: AuthProbe, spec: ResolvedSpec): Observation {
    const latest = this.probePods(probe)[0];
    if (!latest || !this.unrecorded(probe, latest)) return { kind: 'nothing' };
    const found = this.verdictFromPod(probe, spec, latest);
    if (!found) {
      return {
        kind: 'in-flight',
        message: `Probe pod ${latest.metadata.name} is running.`,
        // The pod's own updates wake the reconciler; this is only a backstop for the deadline.
        recheckInMs: probePodOverdueAfterMs(spec.timeoutMs) + 1_000,
      };
    }
    const createdAt = Date.parse(latest.metadata.creationTimestamp ?? '');
    return {
      kind: 'verdict',
      verdict: found,
      ...(Number.isFinite(createdAt) ? { durationMs: Math.max(0, this.deps.now() - createdAt) } : {}),
    };
  }

  /**
   * The newer of the latest pod and the last recorded verdict: a verdict reached without a pod (a
   * missing account) is the last check as much as a pod is.
   */
  lastMark(probe: AuthProbe): CheckMark | undefined {
    const latest = this.probePods(probe)[0];
    const fromPod = latest && podMark(latest);
    const fromStatus = markFromStatus(probe);
    if (!fromPod || !fromStatus) return fromPod ?? fromStatus;
    return fromStatus.createdAt >= fromPod.createdAt ? fromStatus : fromPod;
  }

  async start(probe: AuthProbe, spec: ResolvedSpec, trigger: ProbeTrigger): Promise<Started> {
    const ns = probe.metadata.namespace;
    const notAllowed = judgePodTemplate(spec.podTemplate, this.deps.policy);
    if (notAllowed) return { kind: 'verdict', verdict: notAllowed, retryInMs: spec.intervalMs };
    const precheck = await this.precheck(probe, spec);
    if ('reason' in precheck) {
      const asked = probe.metadata.annotations?.[ANNOTATION_PROBE_NOW];
      return {
        kind: 'verdict',
        verdict: { ...precheck, ...(asked !== undefined ? { probeNow: asked } : {}) },
        retryInMs: spec.intervalMs,
      };
    }
    const pod = buildProbePod(probe, spec, {
      image: this.deps.policy.probeImage,
      runId: newRunId(this.deps.now()),
    });
    const probeNow = probe.metadata.annotations?.[ANNOTATION_PROBE_NOW];
    pod.metadata = {
      ...pod.metadata,
      annotations: {
        ...pod.metadata?.annotations,
        [ANNOTATION_CHECK_GENERATION]: String(probe.metadata.generation ?? 0),
        ...(probeNow !== undefined ? { [ANNOTATION_CHECK_PROBE_NOW]: probeNow } : {}),
        ...(precheck.keyID !== undefined ? { [ANNOTATION_CHECK_TOKEN_KEY_ID]: precheck.keyID } : {}),
        ...(precheck.issuer !== undefined ? { [ANNOTATION_CHECK_TOKEN_ISSUER]: precheck.issuer } : {}),
      },
    };
    try {
      await this.deps.client.post(apiPaths.pods(ns), pod, { timeoutMs: 15_000 });
    } catch (err) {
      if (isAlreadyExists(err)) return { kind: 'retry', inMs: 1_000 };
      return {
        kind: 'verdict',
        verdict: podCreateFailedVerdict(err instanceof KubeApiError ? err.status : 0, errorMessage(err)),
        retryInMs: Math.min(spec.intervalMs, 60_000),
      };
    }
    this.deps.logger.debug(
      { authprobe: `${ns}/${probe.metadata.name}`, pod: pod.metadata.name, trigger },
      'probe pod created',
    );
    return {
      kind: 'started',
      message: `Probe pod ${pod.metadata.name} started (${trigger}).`,
      recheckInMs: probePodOverdueAfterMs(spec.timeoutMs) + 1_000,
    };
  }

  /** Keeps the newest `keepPods` finished pods for debugging and deletes the rest. */
  async afterRecord(probe: AuthProbe, spec: ResolvedSpec): Promise<void> {
    for (const pod of this.probePods(probe).slice(Math.max(1, spec.keepPods))) {
      try {
        await this.deps.client.delete(apiPaths.pod(pod.metadata.namespace, pod.metadata.name), undefined, {
          timeoutMs: 10_000,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  /**
   * Whether the pod's verdict still has to be recorded: it is not the pod of the last recorded verdict,
   * and no verdict was recorded after it was created (a verdict reached without a pod, such as a
   * missing ServiceAccount, must not make an older pod's verdict count again).
   */
  private unrecorded(probe: AuthProbe, pod: PodJson): boolean {
    const last = probe.status?.lastProbe;
    if (last?.pod === pod.metadata.name) return false;
    if (last?.pod !== undefined || !last?.time) return true;
    return (pod.metadata.creationTimestamp ?? '') >= last.time;
  }

  /**
   * What a pod cannot tell apart, or must not be started for: a missing ServiceAccount or Secret (said
   * by name, without a pod that could only hang), and a Secret that is not provably the account's token
   * secret (a pod would mount and send its token). Otherwise: the key id and issuer of the secret's token.
   */
  private async precheck(
    probe: AuthProbe,
    spec: ResolvedSpec,
  ): Promise<Verdict | { keyID?: string; issuer?: string }> {
    const ns = probe.metadata.namespace;
    const ctx = classifyContext(probe, spec);
    const options = { timeoutMs: 10_000 };
    const { client } = this.deps;
    const account = await getOrUndefined<ServiceAccountJson>(
      client,
      apiPaths.serviceAccount(ns, spec.serviceAccountName),
      options,
    );
    if (!account) return serviceAccountNotFoundVerdict(ctx);
    if (spec.token.source === 'Secret') {
      const secret = await getOrUndefined<SecretJson>(
        client,
        apiPaths.secret(ns, spec.token.secretName),
        options,
      );
      if (!secret) return secretNotFoundVerdict(ctx);
      const notProvable = judgeTokenSecret(secret, spec.serviceAccountName, account.metadata.uid);
      if (notProvable) return notProvable;
      // Not filled yet: a pod would mount an empty token (the tokens controller is seconds away).
      const token = secretToken(secret);
      if (token === undefined) return tokenNotIssuedVerdict(ctx);
      const claims = readTokenClaims(token);
      return {
        ...(claims.keyId !== undefined ? { keyID: claims.keyId } : {}),
        ...(claims.issuer !== undefined ? { issuer: claims.issuer } : {}),
      };
    }
    return {};
  }

  /** The verdict of a finished (or hopeless) pod, or undefined while it is still working. */
  private verdictFromPod(probe: AuthProbe, spec: ResolvedSpec, pod: PodJson): Verdict | undefined {
    const name = pod.metadata.name;
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    // What the pod answered for: the generation and the probe-now request it was started for.
    const generation = Number(pod.metadata.annotations?.[ANNOTATION_CHECK_GENERATION]);
    const asked = pod.metadata.annotations?.[ANNOTATION_CHECK_PROBE_NOW];
    const keyID = pod.metadata.annotations?.[ANNOTATION_CHECK_TOKEN_KEY_ID];
    const issuer = pod.metadata.annotations?.[ANNOTATION_CHECK_TOKEN_ISSUER];
    const mark = {
      pod: name,
      ...(Number.isInteger(generation) ? { generation } : {}),
      ...(asked !== undefined ? { probeNow: asked } : {}),
      ...(keyID !== undefined ? { tokenKeyID: keyID } : {}),
      ...(issuer !== undefined ? { tokenIssuer: issuer } : {}),
    };
    if (terminated?.message) {
      const parsed = parseProbeResult(terminated.message);
      const found = parsed.ok
        ? classifyProbe(parsed.result, classifyContext(probe, spec))
        : unreadableResultVerdict(parsed.error);
      return { ...found, ...mark };
    }
    const createdAt = Date.parse(pod.metadata.creationTimestamp ?? '') || this.deps.now();
    const overdue = this.deps.now() > createdAt + probePodOverdueAfterMs(spec.timeoutMs);
    const failure = classifyPodFailure(pod.status, { overdue });
    if (failure) return { ...failure, ...mark };
    if (pod.status?.phase && POD_FINISHED.has(pod.status.phase)) {
      return {
        ...verdict(
          ProbeReason.ProbePodFailed,
          'Unknown',
          `Probe pod ${name} ended (${pod.status.phase}) without a result.`,
        ),
        ...mark,
      };
    }
    return undefined;
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
          b.metadata.name.localeCompare(a.metadata.name),
      );
  }
}

function podMark(pod: PodJson): CheckMark {
  return {
    name: pod.metadata.name,
    createdAt: Date.parse(pod.metadata.creationTimestamp ?? '') || 0,
    annotations: pod.metadata.annotations ?? {},
  };
}
