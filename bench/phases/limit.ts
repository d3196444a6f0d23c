/**
 * 5. The limit: raw TokenReview throughput from a tight loop (bounded in time and count), then the
 * operator's own controller-side checks against the same apiserver (limit-checks.ts).
 */
import https from 'node:https';
import { apiRequest, SERVER } from '../lib/apiserver.ts';
import { log } from '../lib/log.ts';
import { controlPlaneCpu, controlPlaneCpuSince } from '../lib/proc.ts';
import { p50p95, round } from '../lib/stats.ts';
import { createTokenNamespace, readToken } from '../lib/tokens.ts';
import type { PhaseContext } from './context.ts';
import { operatorCheckThroughput } from './limit-checks.ts';

export async function phaseLimit(ctx: PhaseContext): Promise<void> {
  const { sizes } = ctx;
  const host = SERVER.hostname;
  if (!/^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|localhost$|\[::1\]$)/.test(host)) {
    throw new Error(`the apiserver ${host} is not on loopback or a private bridge: the raw loop is not run`);
  }
  const ns = await createTokenNamespace('limit', ['app-token']);
  const token = await readToken(ns, 'app-token');
  const agent = new https.Agent({ keepAlive: true, maxSockets: sizes.limitConcurrency });
  const body = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } };
  const maxRequests = 200_000;
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let issued = 0;
  const cp0 = controlPlaneCpu();
  const t0 = Date.now();
  const deadline = t0 + sizes.limitSeconds * 1000;
  await Promise.all(
    Array.from({ length: sizes.limitConcurrency }, async () => {
      while (Date.now() < deadline && issued < maxRequests) {
        issued++;
        const started = performance.now();
        try {
          const res = await apiRequest(
            'POST',
            '/apis/authentication.k8s.io/v1/tokenreviews',
            body,
            agent,
            10_000,
          );
          const authenticated = res.status === 201 && JSON.parse(res.body).status?.authenticated === true;
          if (authenticated) ok++;
          else failed++;
        } catch {
          failed++;
        }
        latencies.push(performance.now() - started);
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  const cp = controlPlaneCpuSince(cp0);
  agent.destroy();
  const limit: Record<string, unknown> = {
    what:
      'POST tokenreviews of one valid legacy token, repeated (the apiserver may answer repeats from its token ' +
      'authentication cache), admin client certificate, keep-alive connections',
    server: SERVER.host,
    concurrency: sizes.limitConcurrency,
    seconds: round(seconds, 1),
    requests: issued,
    authenticated: ok,
    failed,
    perSecond: round(ok / seconds, 1),
    latencyMs: p50p95(latencies),
    ...(cp !== undefined
      ? { controlPlaneCpuSeconds: round(cp, 2), controlPlaneCpuMsPerReview: round((cp * 1000) / issued, 3) }
      : {}),
  };
  ctx.results.limit = limit;
  log(`limit: ${ok} TokenReviews in ${round(seconds, 1)} s = ${round(ok / seconds, 1)}/s (${failed} failed)`);
  const operator = await operatorCheckThroughput(ctx);
  limit.operator = operator;
  // The figure: the operator's steady controller-side checks against the raw reviews (target >= 0.5).
  const steady = (operator.direct as { steady: { perSecond: number } }).steady.perSecond;
  limit.checksToRaw = {
    ratio: round(steady / (limit.perSecond as number), 3),
    target: 0.5,
    what: 'controller-side TokenReview checks/s (steady round) / raw TokenReviews/s',
  };
  log(
    `limit: controller-side checks / raw TokenReviews = ${round(steady / (limit.perSecond as number), 3)} (target >= 0.5)`,
  );
}
