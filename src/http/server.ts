import http from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface HealthSource {
  /** Liveness: false only when the process is wedged and a restart would help. */
  live(): { ok: boolean; detail: string };
  /** Readiness: caches synced and the apiserver accepts our credential. */
  ready(): { ok: boolean; detail: string };
}

/** `/healthz`, `/readyz` and `/metrics` on one port. */
export function startHttpServer(opts: {
  host: string;
  port: number;
  registry: Registry;
  health: HealthSource;
  logger: Logger;
}): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (url.pathname === '/healthz') {
      const { ok, detail } = opts.health.live();
      return reply(ok ? 200 : 500, `${ok ? 'ok' : 'unhealthy'}: ${detail}\n`);
    }
    if (url.pathname === '/readyz') {
      const { ok, detail } = opts.health.ready();
      return reply(ok ? 200 : 503, `${ok ? 'ok' : 'not ready'}: ${detail}\n`);
    }
    if (url.pathname === '/metrics') {
      opts.registry
        .metrics()
        .then((text) => reply(200, text, opts.registry.contentType))
        .catch((err: Error) => reply(500, `metrics failed: ${err.message}\n`));
      return;
    }
    reply(404, 'not found; try /healthz, /readyz or /metrics\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      opts.logger.info({ host: opts.host, port: opts.port }, 'serving /healthz, /readyz and /metrics');
      resolve(server);
    });
  });
}
