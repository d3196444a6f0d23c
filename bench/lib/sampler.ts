import { metricSum, type Operator } from './operator.ts';
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
