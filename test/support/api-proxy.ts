/**
 * A proxy on loopback between one operator process and the test cluster's apiserver. The operator
 * talks plain HTTP to 127.0.0.1 (its kubeconfig names no user); the proxy forwards each request
 * with the test's own kubeconfig credentials. It can hold every answer back (a slow apiserver) and
 * records every request (method, path, status, when), so a test can say what the operator sent.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadClusterAccess } from '../../src/kube/access.js';

export interface ProxiedRequest {
  at: number;
  method: string;
  path: string;
  status?: number;
}

export interface ApiProxy {
  kubeconfig: string;
  requests: ProxiedRequest[];
  /** Requests that change the cluster (every method but GET), from `since` (epoch ms) on. */
  writesSince(since: number): ProxiedRequest[];
  close(): Promise<void>;
}

/** Starts the proxy; `delayMs` holds every answer back that long before it is passed on. */
export async function startApiProxy(name: string, options: { delayMs?: number } = {}): Promise<ApiProxy> {
  const access = await loadClusterAccess();
  const upstream = new https.Agent({ keepAlive: true, maxSockets: 64 });
  const requests: ProxiedRequest[] = [];
  const delayMs = options.delayMs ?? 0;
  const server = http.createServer((req, res) => {
    const record: ProxiedRequest = { at: Date.now(), method: req.method ?? '', path: req.url ?? '' };
    requests.push(record);
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.authorization;
    const target = new URL(access.server.href.replace(/\/$/, '') + (req.url ?? '/'));
    const forward: https.RequestOptions = { method: req.method, headers, agent: upstream };
    void access.apply(forward).then(() => {
      const out = https.request(target, { ...forward, agent: upstream }, (answer) => {
        record.status = answer.statusCode;
        const pass = (): void => {
          if (res.destroyed) {
            answer.destroy();
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        };
        if (delayMs > 0) setTimeout(pass, delayMs);
        else pass();
      });
      out.on('error', () => res.destroy());
      res.on('close', () => out.destroy());
      req.pipe(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kubeconfig = `/tmp/authprobe-proxy-${name}-${port}.kubeconfig`;
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: proxy`,
      `  cluster: {server: "http://127.0.0.1:${port}"}`,
      'contexts:',
      '- name: proxy',
      '  context: {cluster: proxy}',
      'current-context: proxy',
      '',
    ].join('\n'),
  );
  return {
    kubeconfig,
    requests,
    writesSince: (since) => requests.filter((r) => r.at >= since && r.method !== 'GET'),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      upstream.destroy();
    },
  };
}
