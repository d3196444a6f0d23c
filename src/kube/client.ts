import https from 'node:https';
import http from 'node:http';
import { createInterface } from 'node:readline';
import type { ClusterAccess } from './access.js';
import { onFirstAbort } from './abort.js';
import { KubeApiError, KubeTransportError, NotLeaderError } from './errors.js';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** The Accept header; JSON by default (a metadata-only list or watch asks for PartialObjectMetadata). */
  accept?: string;
  body?: unknown;
  contentType?: string;
  /**
   * Deadline for the whole call, from sending the request to the last byte of the answer (a watch:
   * the longest silence). Default DEFAULT_DEADLINE_MS.
   */
  timeoutMs?: number;
  /** Largest answer accepted (a watch: largest event); default DEFAULT_MAX_RESPONSE_BYTES. */
  maxResponseBytes?: number;
  signal?: AbortSignal;
}

/** Every call has a deadline: a slow apiserver makes the operator slower, never stuck. */
export const DEFAULT_DEADLINE_MS = 30_000;
/**
 * Every answer has a size limit. A page of a LIST is the largest answer the operator asks for
 * (500 objects); etcd refuses objects over 1.5 MiB, so 64 MiB leaves room for any honest answer.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Asked right before each request is sent (after credentials are applied, with no await between
 * the question and the send). It may refuse the request by throwing (a replica that no longer leads
 * makes no write), and may name a signal that aborts it (the end of a leadership term).
 */
export type RequestFence = (method: string, path: string) => AbortSignal | undefined;

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
  private readonly agent: http.Agent;
  readonly server: URL;

  constructor(
    readonly access: ClusterAccess,
    private readonly hooks: { onResponse?: (status: number) => void; fence?: RequestFence } = {},
    agent?: http.Agent,
  ) {
    this.server = access.server;
    // A plain-HTTP server is a loopback proxy (tests); it needs an agent of its own kind.
    this.agent =
      agent ??
      new (access.server.protocol === 'http:' ? http.Agent : https.Agent)({
        keepAlive: true,
        maxSockets: 64,
      });
  }

  /**
   * The same client (connections, credentials) with every request passed through `fence` first:
   * what the controllers use, so that no request of a leadership term that has ended is sent.
   */
  fenced(fence: RequestFence): KubeClient {
    return new KubeClient(this.access, { ...this.hooks, fence }, this.agent);
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
    const deadlineMs = options.timeoutMs ?? DEFAULT_DEADLINE_MS;
    const deadline = new AbortController();
    const timer = setTimeout(
      () =>
        deadline.abort(
          new KubeTransportError(
            'ETIMEDOUT',
            `${method} ${path.split('?')[0]} passed its ${deadlineMs} ms deadline`,
          ),
        ),
      deadlineMs,
    );
    const signals = [options.signal, deadline.signal];
    try {
      const { res, req } = await this.open(method, path, { ...options, timeoutMs: undefined }, signals);
      try {
        const text = await readBody(res, options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, signals);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
        throw apiErrorFrom(status, text);
      } finally {
        req.destroy();
      }
    } finally {
      clearTimeout(timer);
    }
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
    if (status !== 200) throw apiErrorFrom(status, await readBody(res, 1024 * 1024, [signal]));
    const maxEvent = DEFAULT_MAX_RESPONSE_BYTES / 8;
    await new Promise<void>((resolve, reject) => {
      // One event is one line; a line that outgrows the limit is never buffered whole.
      let pending = 0;
      res.on('data', (chunk: Buffer) => {
        const newline = chunk.lastIndexOf(0x0a);
        pending = newline === -1 ? pending + chunk.length : chunk.length - newline - 1;
        if (pending > maxEvent) {
          reject(
            new KubeTransportError('ETOOLARGE', `a watch event of ${path} is larger than ${maxEvent} bytes`),
          );
          req.destroy();
        }
      });
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
      // A deadline for the whole watch too: the server ends it after timeoutSeconds; one that
      // streams on past that (plus slack) is cut, and the informer watches again.
      const deadline = setTimeout(
        () => req.destroy(new KubeTransportError('ETIMEDOUT', `watch of ${path} passed its deadline`)),
        (serverTimeout + 60) * 1000,
      );
      const stopListening = onFirstAbort([signal], () => req.destroy());
      res.on('close', () => {
        clearTimeout(deadline);
        stopListening();
        resolve();
      });
    });
  }

  private async open(
    method: string,
    path: string,
    options: RequestOptions,
    /** More signals that abort the request (request() passes its deadline). */
    extraSignals: ReadonlyArray<AbortSignal | undefined> = [],
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
    // Nothing awaits between the fence's answer and the send below.
    const fenceSignal = this.hooks.fence?.(method, url.pathname);
    const signals = [fenceSignal, options.signal, ...extraSignals];
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
      // Listeners on long-lived signals (the leadership term) are removed when the request ends.
      const stopListening = onFirstAbort(signals, (signal) =>
        req.destroy(
          signal.reason instanceof KubeTransportError || signal.reason instanceof NotLeaderError
            ? signal.reason
            : new KubeTransportError('EABORTED', `${method} ${url.pathname} aborted`),
        ),
      );
      req.once('close', stopListening);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Reads an answer whole, up to `limit` bytes; past that, or when a signal aborts, the socket is dropped. */
function readBody(
  res: http.IncomingMessage,
  limit: number,
  signals: ReadonlyArray<AbortSignal | undefined> = [],
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const declared = Number(res.headers['content-length']);
    if (declared > limit) {
      res.destroy();
      return reject(
        new KubeTransportError('ETOOLARGE', `the answer (${declared} bytes) is larger than ${limit} bytes`),
      );
    }
    const stopListening = onFirstAbort(signals, (signal) => {
      res.destroy();
      reject(
        signal.reason instanceof Error
          ? transportError(signal.reason)
          : new KubeTransportError('EABORTED', 'aborted'),
      );
    });
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stopListening();
        res.destroy();
        reject(new KubeTransportError('ETOOLARGE', `the answer is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => {
      stopListening();
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.on('error', (err) => {
      stopListening();
      reject(transportError(err));
    });
    res.on('close', stopListening);
  });
}

function transportError(err: unknown): Error {
  if (err instanceof KubeTransportError || err instanceof NotLeaderError) return err;
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
