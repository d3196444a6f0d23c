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
  /** The requests `record` chose, in the order they arrived (empty without it). */
  recorded: ProxyRecord[];
  kubeconfigPath: string;
  close(): void;
}

/** One recorded request: when it arrived (epoch ms), its key, and its path. */
export interface ProxyRecord {
  t: number;
  key: string;
  path: string;
}

export interface ProxyOptions {
  /** Which requests (by key, e.g. "PATCH authprobes/status") are also kept one by one with time and path. */
  record?: (key: string) => boolean;
}

/**
 * Verb and resource of an apiserver request, the way the apiserver names them in its metrics
 * ("PATCH authprobes/status" is a status write, "PATCH authprobes" one of the object); a non-resource
 * request is named by its path ("GET /openid/v1/jwks").
 */
export function classifyRequest(method: string, rawUrl: string): string {
  const url = new URL(rawUrl, 'https://x');
  const parts = url.pathname.split('/').filter(Boolean);
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts.length >= 4) rest = parts.slice(3);
  else return `${method} ${url.pathname}`;
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
export async function startProxy(options: ProxyOptions = {}): Promise<Proxy> {
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
  const recorded: ProxyRecord[] = [];
  const upstream = new https.Agent({ keepAlive: true, maxSockets: 256 });
  let upstreamErrors = 0;
  const server = https.createServer({ key: readFileSync(`${dir}/key.pem`), cert }, (req, res) => {
    const key = classifyRequest(req.method ?? 'GET', req.url ?? '/');
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (options.record?.(key))
      recorded.push({ t: Date.now(), key, path: new URL(req.url ?? '/', 'https://x').pathname });
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
    recorded,
    kubeconfigPath,
    close() {
      server.closeAllConnections();
      server.close();
      upstream.destroy();
    },
  };
}
