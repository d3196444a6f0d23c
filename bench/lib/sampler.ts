import { metricByLabel, metricSum, type Operator } from './operator.ts';
import { memory } from './proc.ts';
import { round } from './stats.ts';
import { sleep } from './wait.ts';

export interface Sample {
  t: number;
  queueDepth: number;
  rssMiB: number;
}

/** Scrapes the operator's /metrics and /proc every second until stopped. */
export function sampler(op: Operator, t0: number): { samples: Sample[]; stop(): Promise<void> } {
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      try {
        const text = await op.metrics();
        samples.push({
          t: round((Date.now() - t0) / 1000, 1),
          queueDepth: metricSum(text, 'authprobe_workqueue_depth'),
          rssMiB: memory(op.pid).rssMiB,
        });
      } catch {
        // a missed sample is not an error
      }
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/**
 * When each AuthProbe's checks finished, to `everyMs`: the operator's authprobe_probes_total by
 * authprobe, scraped every `everyMs` until stopped (a check is dated by the scrape that first shows it).
 */
export function checkTimes(
  op: Operator,
  everyMs: number,
): { times: Map<string, number[]>; stop(): Promise<void> } {
  const times = new Map<string, number[]>();
  const seen = new Map<string, number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      try {
        const now = Date.now();
        for (const [probe, count] of metricByLabel(
          await op.metrics(),
          'authprobe_probes_total',
          'authprobe',
        )) {
          const before = seen.get(probe) ?? 0;
          if (count <= before) continue;
          seen.set(probe, count);
          const list = times.get(probe) ?? [];
          for (let i = before; i < count; i++) list.push(now);
          times.set(probe, list);
        }
      } catch {
        // a missed scrape only makes the next one date more checks
      }
      await sleep(Math.max(0, everyMs - (Date.now() - started)));
    }
  })();
  return {
    times,
    async stop() {
      running = false;
      await loop;
    },
  };
}
