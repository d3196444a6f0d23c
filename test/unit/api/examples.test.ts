/**
 * The examples a user applies as they are: every AuthProbe in examples/ resolves, and uses only fields
 * the CRD knows (the apiserver would silently prune or, with strict validation, reject the others).
 * test/integration/crd-admission.test.ts submits them to a real apiserver as well.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { loadAllYaml, loadYaml, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { resolveSpec } from '../../../src/api/defaults.js';
import type { AuthProbe } from '../../../src/api/types.js';

const examplesUrl = new URL('../../../examples/', import.meta.url);
const crd = loadYaml<V1CustomResourceDefinition>(
  readFileSync(new URL('../../../crds/authprobe.io_authprobes.yaml', import.meta.url), 'utf8'),
);
const specSchema = crd.spec.versions[0]?.schema?.openAPIV3Schema?.properties?.['spec'] as unknown as Schema;

type Schema = { properties?: Record<string, Schema>; additionalProperties?: unknown; items?: Schema };

/** Paths in `value` that the schema does not declare. */
function unknownFields(schema: Schema | undefined, value: unknown, path: string): string[] {
  if (!schema || value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => unknownFields(schema.items, v, `${path}[${i}]`));
  if (schema.additionalProperties !== undefined) return [];
  return Object.entries(value).flatMap(([key, child]) =>
    schema.properties?.[key]
      ? unknownFields(schema.properties[key], child, `${path}.${key}`)
      : [`${path}.${key}`],
  );
}

const probes = readdirSync(examplesUrl)
  .filter((file) => file.endsWith('.yaml'))
  .flatMap((file) =>
    (loadAllYaml(readFileSync(new URL(file, examplesUrl), 'utf8')) as Array<{ kind?: string }>)
      .filter((doc) => doc.kind === 'AuthProbe')
      .map((doc) => [file, doc as AuthProbe] as const),
  );

describe('examples/', () => {
  it('has the documented examples', () => {
    expect([...new Set(probes.map(([file]) => file))].sort()).toEqual([
      'copy-argocd.yaml',
      'copy-kubeconfig.yaml',
      'copy-token.yaml',
      'dry-run.yaml',
      'projected.yaml',
      'secret-token.yaml',
      'token-review.yaml',
    ]);
  });

  it.each(probes)('%s: resolves and uses only CRD fields', (_file, probe) => {
    expect(resolveSpec(probe.spec)).toMatchObject({ ok: true });
    expect(unknownFields(specSchema, probe.spec, 'spec')).toEqual([]);
    expect(probe.metadata.namespace).toBeTruthy();
  });
});
