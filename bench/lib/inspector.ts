/**
 * A full garbage collection in another Node.js process, through its inspector (started with
 * --inspect=127.0.0.1:<port>): HeapProfiler.collectGarbage over the DevTools protocol. The bench uses it
 * to tell memory the process still holds (retained objects) from memory V8 has not collected yet.
 */
export async function collectGarbage(port: number): Promise<void> {
  const targets = (await (
    await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(5000) })
  ).json()) as Array<{ webSocketDebuggerUrl?: string }>;
  const url = targets.find((t) => t.webSocketDebuggerUrl)?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on 127.0.0.1:${port}`);
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the inspector did not answer in 60 s')), 60_000);
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`the inspector at ${url} failed`));
      };
      ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
      ws.onmessage = (event) => {
        const reply = JSON.parse(String(event.data)) as { id?: number; error?: { message: string } };
        if (reply.id !== 1) return;
        clearTimeout(timer);
        if (reply.error) reject(new Error(`HeapProfiler.collectGarbage: ${reply.error.message}`));
        else resolve();
      };
    });
  } finally {
    ws.close();
  }
}
