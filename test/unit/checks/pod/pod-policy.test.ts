import { describe, expect, it } from '@jest/globals';
import type { ProbePodTemplate } from '../../../../src/api/types.js';
import { judgePodTemplate, type ProbePodPolicy } from '../../../../src/checks/pod/pod-policy.js';

const policy: ProbePodPolicy = {
  probeImage: 'registry.example/authprobe:1',
  allowedImages: ['registry.example/probes/*', 'mirror.example/authprobe:1'],
  allowedPriorityClasses: ['low'],
  allowedTolerationKeys: ['dedicated'],
  allowedLabelPrefixes: ['team'],
  allowedAnnotationPrefixes: ['example.com/'],
  maxCpu: 0.1,
  maxMemory: 256 * 2 ** 20,
};

describe('judgePodTemplate: the admin, not the author, bounds probe pods', () => {
  it.each<[string, ProbePodTemplate, string[]]>([
    ['nothing asked', {}, []],
    ['the operator’s own image', { image: 'registry.example/authprobe:1' }, []],
    ['an allowed prefix and exact image', { image: 'registry.example/probes/x:2' }, []],
    ['an image of the author’s choice', { image: 'evil.example/miner:latest' }, ['spec.podTemplate.image']],
    ['an allowed priority class', { priorityClassName: 'low' }, []],
    ['another priority class', { priorityClassName: 'system-cluster-critical' }, ['priorityClassName']],
    ['an allowed toleration', { tolerations: [{ key: 'dedicated', operator: 'Exists' }] }, []],
    ['tolerate every taint', { tolerations: [{ operator: 'Exists' }] }, ['tolerations: key (every taint)']],
    [
      'labels and annotations within the prefixes',
      { labels: { team: 'a' }, annotations: { 'example.com/o': 'x' } },
      [],
    ],
    [
      'a label outside them',
      { labels: { 'app.kubernetes.io/managed-by': 'x' } },
      ['labels: app.kubernetes.io/managed-by'],
    ],
    [
      'resources under the ceiling',
      { resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '256Mi' } } },
      [],
    ],
    ['cpu over the ceiling', { resources: { limits: { cpu: 2 } } }, ['resources.limits.cpu 2']],
    [
      'memory over the ceiling',
      { resources: { requests: { memory: '1Gi' } } },
      ['resources.requests.memory 1Gi'],
    ],
    ['not a quantity', { resources: { requests: { cpu: 'lots' } } }, ['resources.requests.cpu lots']],
  ])('%s', (_name, template, mentions) => {
    const found = judgePodTemplate(template, policy);
    if (!mentions.length) {
      expect(found).toBeUndefined();
      return;
    }
    expect(found?.reason).toBe('ProbePodNotAllowed');
    for (const text of mentions) expect(found?.message).toContain(text);
  });
});
