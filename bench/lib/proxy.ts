/**
 * A counting proxy: a TLS-terminating proxy on 127.0.0.1 in front of the apiserver that counts the
 * requests of the one client whose kubeconfig points at it (the operator), by verb and resource.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { promisify } from 'node:util';
import { SERVER, tlsOptions } from './apiserver.ts';
import { log } from './log.ts';
import { randomSuffix } from './names.ts';
import type { Counts } from './request-counts.ts';

export interface Proxy {
  port: number;
  counts: Counts;
  kubeconfigPath: string;
  close(): void;
}

/** Verb and resource of an apiserver request, the way the apiserver names them in its metrics. */
function classifyRequest(method: string, rawUrl: string): string {
  const url = new URL(rawUrl, 'https://x');
  const parts = url.pathname.split('/').filter(Boolean);
  let rest: string[];
  if (parts[0] === 'api') rest = parts.slice(2);
  else if (parts[0] === 'apis') rest = parts.slice(3);
  else return `${method} nonresource`;
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const resource = rest[0] ?? '';
  const named = rest.length >= 2;
  const sub = rest[2] ? `/${rest[2]}` : '';
  let verb = method;
  if (method === 'GET') {
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') verb = 'WATCH';
    else verb = named ? 'GET' : 'LIST';
  }
  return `${verb} ${resource}${sub}`;
}

/** Starts a counting proxy to the kubeconfig's apiserver, with a kubeconfig for its client. */
export async function startProxy(): Promise<Proxy> {
  const dir = `/tmp/authprobe-bench-proxy-${randomSuffix()}`;
  mkdirSync(dir, { recursive: true });
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    `${dir}/key.pem`,
    '-out',
    `${dir}/cert.pem`,
  ]);
  const cert = readFileSync(`${dir}/cert.pem`);
  const counts: Counts = new Map();
  const upstream = new https.Agent({ keepAlive: true, maxSockets: 256 });
  let upstreamErrors = 0;
  const server = https.createServer({ key: readFileSync(`${dir}/key.pem`), cert }, (req, res) => {
    const key = classifyRequest(req.method ?? 'GET', req.url ?? '/');
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.authorization;
    delete headers.connection;
    const up = https.request(
      new URL(req.url ?? '/', SERVER),
      {
        ...tlsOptions,
        method: req.method,
        headers: { ...headers, ...(tlsOptions.headers as Record<string, string> | undefined) },
        agent: upstream,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        upRes.on('error', () => res.destroy());
      },
    );
    up.on('error', (err) => {
      if (upstreamErrors++ < 5) log(`proxy: upstream ${req.method} ${req.url}: ${err.message}`);
      if (!res.headersSent) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`upstream: ${err.message}`);
      } else res.destroy();
    });
    // the client gave up (a watch it closed, a timeout): stop the upstream request too
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const kubeconfigPath = `${dir}/kubeconfig`;
  writeFileSync(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'proxy',
          cluster: {
            server: `https://127.0.0.1:${port}`,
            'certificate-authority-data': cert.toString('base64'),
          },
        },
      ],
      users: [{ name: 'proxy', user: {} }],
      contexts: [{ name: 'proxy', context: { cluster: 'proxy', user: 'proxy' } }],
      'current-context': 'proxy',
    }),
  );
  return {
    port,
    counts,
    kubeconfigPath,
    close() {
      server.closeAllConnections();
      server.close();
      upstream.destroy();
    },
  };
}
