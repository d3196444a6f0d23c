/**
 * The apiserver client's limits, against a real HTTP server on loopback: every call has a deadline
 * (not an idle timeout: a server that drips bytes is cut off too), every answer a size limit, and a
 * fenced client sends nothing for a leadership term that has ended.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../../../src/kube/client.js';
import { NotLeaderError } from '../../../src/kube/errors.js';
import { leadershipFence, runInTerm, unelectedTerm } from '../../../src/runtime/leadership.js';
import type { LeadershipTerm } from '../../../src/runtime/leader.js';

const seen: string[] = [];
let server: http.Server;
let client: KubeClient;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url === '/drip') {
      // One byte every 100 ms, forever: never idle for long, never finished.
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: 'x'.repeat(2 * 1024 * 1024) }));
      return;
    }
    if (req.url === '/slow') {
      setTimeout(() => res.end('{}'), 2_000).unref();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  client = new KubeClient({
    server: new URL(`http://127.0.0.1:${port}`),
    source: 'test',
    apply: async () => {},
  });
});

afterAll(async () => {
  client.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function term(): LeadershipTerm & { end(): void } {
  const ended = new AbortController();
  return { ...unelectedTerm(ended.signal), end: () => ended.abort() };
}

describe('KubeClient limits', () => {
  it('a call that keeps receiving bytes is still cut off at its deadline', async () => {
    const started = performance.now();
    await expect(client.get('/drip', { timeoutMs: 500 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(2_000);
  });

  it('an answer larger than the limit is refused, not buffered', async () => {
    await expect(client.get('/big', { maxResponseBytes: 1024 * 1024 })).rejects.toMatchObject({
      code: 'ETOOLARGE',
    });
    await expect(client.get('/big')).resolves.toMatchObject({ data: expect.any(String) });
  });
});

describe('a fenced client', () => {
  const refused: string[] = [];
  const fenced = () =>
    client.fenced(leadershipFence((method, path, why) => refused.push(`${method} ${path}: ${why}`)));

  it('sends the writes of a valid term and refuses them once the term has ended; nothing reaches the server', async () => {
    const api = fenced();
    const t = term();
    await runInTerm(t, () => api.post('/apis/x/v1/things', { a: 1 }));
    expect(seen).toContain('POST /apis/x/v1/things');
    t.end();
    const before = seen.length;
    await expect(runInTerm(t, () => api.delete('/apis/x/v1/things/a'))).rejects.toBeInstanceOf(
      NotLeaderError,
    );
    await expect(runInTerm(t, () => api.get('/apis/x/v1/things/a'))).rejects.toBeInstanceOf(NotLeaderError);
    expect(seen.length).toBe(before);
    expect(refused).toContain('DELETE /apis/x/v1/things/a: made after this replica stopped leading');
  });

  it('refuses a write made outside any term, but lets a read through', async () => {
    const api = fenced();
    const before = seen.length;
    await expect(api.mergePatch('/apis/x/v1/things/b', {})).rejects.toBeInstanceOf(NotLeaderError);
    expect(seen.length).toBe(before);
    await expect(api.get('/ok')).resolves.toEqual({ ok: true });
  });

  it('aborts a request in flight when its term ends', async () => {
    const api = fenced();
    const t = term();
    const pending = runInTerm(t, () => api.post('/slow', {}));
    setTimeout(() => t.end(), 200);
    const started = performance.now();
    await expect(pending).rejects.toMatchObject({ code: 'EABORTED' });
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('the term follows the work across awaits and timers', async () => {
    const api = fenced();
    const t = term();
    const later = runInTerm(t, async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      t.end();
      return api.put('/apis/x/v1/things/c', {});
    });
    await expect(later).rejects.toBeInstanceOf(NotLeaderError);
  });

  it('leaves no listener on the term signal once its requests are done (a term lives for hours)', async () => {
    const api = fenced();
    const t = term();
    const caller = new AbortController(); // a long-lived signal of the caller's, too
    await runInTerm(t, async () => {
      for (let i = 0; i < 200; i++) await api.get('/ok', { signal: caller.signal });
      await Promise.all(Array.from({ length: 50 }, () => api.post('/apis/x/v1/things', {})));
      await expect(api.get('/big', { maxResponseBytes: 1024 })).rejects.toMatchObject({ code: 'ETOOLARGE' });
    });
    await new Promise((resolve) => setTimeout(resolve, 100)); // a refused answer's socket closes a moment later
    expect(getEventListeners(t.signal, 'abort')).toHaveLength(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});
