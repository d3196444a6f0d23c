import { describe, expect, it } from '@jest/globals';
import { OperatorMetrics } from '../../../src/metrics/metrics.js';

describe('default process and Node.js metrics', () => {
  it('are exported under their standard names, without the authprobe_ prefix', async () => {
    const text = await new OperatorMetrics().registry.metrics();
    const names = new Set(
      text
        .split('\n')
        .filter((line) => line.startsWith('# TYPE '))
        .map((line) => line.split(' ')[2]),
    );
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(names).toContain(name);
    }
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).not.toContain('authprobe_process_');
    // The operator's own metrics keep their prefix.
    expect(names).toContain('authprobe_workqueue_depth');
  });

  it('are left out when not asked for', async () => {
    const text = await new OperatorMetrics(false).registry.metrics();
    expect(text).not.toMatch(/^(process|nodejs)_/m);
  });
});
