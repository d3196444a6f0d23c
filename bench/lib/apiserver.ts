/**
 * The apiserver of the cluster in KUBECONFIG, reached with the kubeconfig's credentials over a small
 * HTTPS client. The kubeconfig is read when this module loads.
 */
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { parseRequestTotals, type Counts } from './request-counts.ts';

const kc = new KubeConfig();
kc.loadFromDefault();
const cluster = kc.getCurrentCluster();
if (!cluster) throw new Error('KUBECONFIG has no current cluster');
export const SERVER = new URL(cluster.server);
export const tlsOptions: https.RequestOptions = {};
await kc.applyToHTTPSOptions(tlsOptions);
export const apiAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });

export interface ApiResponse {
  status: number;
  body: string;
}

export function apiRequest(
  method: string,
  urlPath: string,
  body?: unknown,
  agent: https.Agent = apiAgent,
  timeoutMs = 30_000,
): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(urlPath, SERVER),
      {
        ...tlsOptions,
        method,
        agent,
        headers: {
          ...(tlsOptions.headers as Record<string, string> | undefined),
          Accept: 'application/json',
          ...(payload !== undefined
            ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export async function apiJson<T>(method: string, urlPath: string, body?: unknown): Promise<T> {
  const res = await apiRequest(method, urlPath, body);
  if (res.status >= 300)
    throw new Error(`${method} ${urlPath}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
  return JSON.parse(res.body) as T;
}

/** The apiserver's own request counters (apiserver_request_total), see parseRequestTotals. */
export async function apiserverCounts(): Promise<Counts> {
  const res = await apiRequest('GET', '/metrics', undefined, apiAgent, 60_000);
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return parseRequestTotals(res.body);
}
