/**
 * The Helm chart ships the very CRD file of the repository: one source of truth for the API.
 * Fix a failure with `bash scripts/sync-chart-crd.sh`, never by editing the chart's copy.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';

const repo = new URL('../../../', import.meta.url);
const CRD = 'authprobe.io_authprobes.yaml';

describe('the chart CRD', () => {
  it('is byte-identical to crds/' + CRD, () => {
    const source = readFileSync(new URL(`crds/${CRD}`, repo));
    const chartCopy = readFileSync(new URL(`charts/authprobe-operator/crds/${CRD}`, repo));
    // Compare digests-worth of bytes, but report something readable when they differ.
    expect({ equal: source.equals(chartCopy), hint: 'run: bash scripts/sync-chart-crd.sh' }).toEqual({
      equal: true,
      hint: 'run: bash scripts/sync-chart-crd.sh',
    });
  });
});
