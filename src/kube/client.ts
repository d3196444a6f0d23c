import https from 'node:https';
import http from 'node:http';
import { createInterface } from 'node:readline';
import type { ClusterAccess } from './access.js';
import { KubeApiError, KubeTransportError } from './errors.js';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** The Accept header; JSON by default (a metadata-only list or watch asks for PartialObjectMetadata). */
  accept?: string;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What controllers and the healer need of the client: the verbs, nothing else (a fake records them in tests). */
export type KubeApi = Pick<KubeClient, 'get' | 'post' | 'put' | 'delete' | 'mergePatch'>;

export interface WatchEvent<T = unknown> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/**
 * A thin JSON client over node:https. Objects stay plain JSON (timestamps as strings) whether
 * they come from a GET, a LIST or a WATCH, so the controller never sees two shapes of one object.
 * Credentials are applied per request, so a rotated projected token file is picked up.
 */
export class KubeClient {
  private readonly agent: https.Agent;
  readonly server: URL;

  constructor(
    readonly access: ClusterAccess,
    private readonly hooks: { onResponse?: (status: number) => void } = {},
  ) {
    this.server = access.server;
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 64 });
  }

  get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('POST', path, { ...options, body });
  }

  put<T>(path: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('PUT', path, { ...options, body });
  }

  delete<T>(path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('DELETE', path, { ...options, body });
  }

  /** JSON merge patch (`application/merge-patch+json`). */
  mergePatch<T>(path: string, patch: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('PATCH', path, {
      ...options,
      body: patch,
      contentType: 'application/merge-patch+json',
    });
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const { res, req } = await this.open(method, path, options);
    const text = await readBody(res);
    req.destroy();
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
    throw apiErrorFrom(status, text);
  }

  /**
   * Streams a watch. Resolves when the server closes the stream, rejects on transport errors or
   * a non-200 answer (a `KubeApiError`, e.g. 410 when the resourceVersion is too old).
   */
  async watch<T>(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent<T>) => void,
    signal?: AbortSignal,
    accept?: string,
  ): Promise<void> {
    // The server ends a watch after `timeoutSeconds`; a socket that is silent for longer than
    // that (plus slack) is dead without a FIN, so it is torn down rather than waited on forever.
    const serverTimeout = Number(query.timeoutSeconds ?? 300);
    const { res, req } = await this.open('GET', path, {
      query: { ...query, watch: true },
      signal,
      ...(accept ? { accept } : {}),
      timeoutMs: (serverTimeout + 30) * 1000,
    });
    const status = res.statusCode ?? 0;
    if (status !== 200) throw apiErrorFrom(status, await readBody(res));
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      lines.on('line', (line) => {
        if (!line.trim()) return;
        let event: WatchEvent<T>;
        try {
          event = JSON.parse(line) as WatchEvent<T>;
        } catch {
          reject(new KubeTransportError('EBADWATCH', 'watch stream carried a line that is not JSON'));
          req.destroy();
          return;
        }
        onEvent(event);
      });
      // readline re-emits stream errors on the interface; unhandled, that would end the process.
      lines.on('error', (err) => reject(transportError(err)));
      res.on('error', (err) => reject(transportError(err)));
      res.on('close', () => resolve());
      signal?.addEventListener('abort', () => req.destroy(), { once: true });
    });
  }

  private async open(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
    const url = new URL(this.server.href.replace(/\/$/, '') + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const reqOptions: https.RequestOptions = {
      method,
      agent: this.agent,
      headers: {
        Accept: options.accept ?? 'application/json',
        ...(payload !== undefined
          ? {
              'Content-Type': options.contentType ?? 'application/json',
              'Content-Length': Buffer.byteLength(payload),
            }
          : {}),
      },
    };
    await this.access.apply(reqOptions);
    // A delegated (client-node) credential may attach its own agent; ours keeps connections alive.
    reqOptions.agent = this.agent;
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, reqOptions, (res) => {
        this.hooks.onResponse?.(res.statusCode ?? 0);
        resolve({ req, res });
      });
      req.on('error', (err) => reject(transportError(err)));
      if (options.timeoutMs) {
        req.setTimeout(options.timeoutMs, () =>
          req.destroy(new KubeTransportError('ETIMEDOUT', `${method} ${url.pathname} timed out`)),
        );
      }
      if (options.signal) {
        if (options.signal.aborted) req.destroy(new KubeTransportError('EABORTED', 'request aborted'));
        options.signal.addEventListener(
          'abort',
          () => req.destroy(new KubeTransportError('EABORTED', 'request aborted')),
          { once: true },
        );
      }
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (err) => reject(transportError(err)));
  });
}

function transportError(err: unknown): Error {
  if (err instanceof KubeTransportError) return err;
  const e = err as NodeJS.ErrnoException;
  return new KubeTransportError(e.code ?? 'EUNKNOWN', e.message ?? String(err));
}

/** Builds a KubeApiError from a `Status` body; never echoes a request body (it may hold a token). */
export function apiErrorFrom(status: number, text: string): KubeApiError {
  let reason = http.STATUS_CODES[status] ?? 'Unknown';
  let message = `HTTP ${status}`;
  let details: unknown;
  try {
    const body = JSON.parse(text) as { reason?: string; message?: string; details?: unknown };
    if (body.reason) reason = body.reason;
    if (body.message) message = body.message;
    details = body.details;
  } catch {
    // Not a Status object (e.g. a proxy's HTML page); the status code is all we know.
  }
  return new KubeApiError(status, reason, message, details);
}
