/**
 * Listens for the first of several signals to abort, and can stop listening. Used instead of
 * `AbortSignal.any` for per-request signals: a leadership term's signal lives for hours, and a
 * composite signal (or a listener left on it) per request kept every request in memory until the
 * term ended (found by the benchmark's soak: about 7 KB per request).
 */
export function onFirstAbort(
  signals: ReadonlyArray<AbortSignal | undefined>,
  fn: (signal: AbortSignal) => void,
): () => void {
  const listening: Array<[AbortSignal, () => void]> = [];
  const dispose = (): void => {
    for (const [signal, listener] of listening.splice(0)) signal.removeEventListener('abort', listener);
  };
  for (const signal of signals) {
    if (!signal) continue;
    if (signal.aborted) {
      dispose();
      fn(signal);
      return () => {};
    }
    const listener = (): void => {
      dispose();
      fn(signal);
    };
    signal.addEventListener('abort', listener, { once: true });
    listening.push([signal, listener]);
  }
  return dispose;
}
