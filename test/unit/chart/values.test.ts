/**
 * The chart's values, schema and README describe the same settings. Every value in values.yaml is
 * declared in values.schema.json (which rejects unknown keys, so a misspelt value fails
 * `helm install`) and documented in the README's values table; every row of that table and every
 * schema property exists in values.yaml. Rendering and the real apiserver's verdict are in
 * test/e2e/helm.e2e.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { loadYaml } from '@kubernetes/client-node';

const chart = new URL('../../../charts/authprobe-operator/', import.meta.url);
const read = (file: string): string => readFileSync(new URL(file, chart), 'utf8');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  definitions?: Record<string, Schema>;
  $ref?: string;
  [key: string]: unknown;
}

const values = loadYaml<Record<string, Json>>(read('values.yaml'));
const schema = JSON.parse(read('values.schema.json')) as Schema;
const chartYaml = loadYaml<Record<string, Json>>(read('Chart.yaml'));

const isObject = (v: Json): v is { [key: string]: Json } =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Dotted paths of every key in values.yaml, depth first; lists and `{}` are leaves. */
function valuePaths(node: Json, prefix = ''): string[] {
  if (!isObject(node)) return [];
  return Object.entries(node).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...valuePaths(child, path)];
  });
}

function resolve(s: Schema): Schema {
  if (!s.$ref) return s;
  const name = s.$ref.replace('#/definitions/', '');
  const target = schema.definitions?.[name];
  if (!target) throw new Error(`unresolved $ref ${s.$ref}`);
  return resolve(target);
}

/** The schema node of a dotted path, or 'free-form' below an object without declared properties. */
function schemaAt(path: string): Schema | 'free-form' | undefined {
  let node: Schema = schema;
  for (const key of path.split('.')) {
    node = resolve(node);
    if (!node.properties) return 'free-form';
    const next = node.properties[key];
    if (!next) return undefined;
    node = next;
  }
  return resolve(node);
}

/** Keys of the README's values table (first column). */
function documentedKeys(): string[] {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('## Values'));
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] as string);
}

describe('Chart.yaml', () => {
  it('declares the API version, kubeVersion and appVersion the issue asks for', () => {
    expect(chartYaml).toMatchObject({
      apiVersion: 'v2',
      name: 'authprobe-operator',
      version: '0.1.0',
      appVersion: '0.1.0',
      kubeVersion: '>=1.26.0-0',
    });
  });
});

describe('values.schema.json', () => {
  it('rejects unknown keys at the top level and in every declared object', () => {
    const open: string[] = [];
    const walk = (s: Schema, path: string): void => {
      const node = resolve(s);
      if (node.properties) {
        if (node.additionalProperties !== false) open.push(path || '(top level)');
        for (const [key, child] of Object.entries(node.properties))
          walk(child, path ? `${path}.${key}` : key);
      }
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

  it('declares every key of values.yaml', () => {
    expect(valuePaths(values).filter((p) => schemaAt(p) === undefined)).toEqual([]);
  });

  it('declares nothing that values.yaml lacks (except Helm global)', () => {
    const inValues = new Set(valuePaths(values));
    const declared: string[] = [];
    const walk = (s: Schema, path: string): void => {
      const node = resolve(s);
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        const p = path ? `${path}.${key}` : key;
        declared.push(p);
        walk(child, p);
      }
    };
    walk(schema, '');
    expect(declared.filter((p) => p !== 'global' && !inValues.has(p))).toEqual([]);
  });

  it('pins the restricted security defaults in values.yaml', () => {
    expect(values['podSecurityContext']).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(values['securityContext']).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(values['tokenExpirationSeconds']).toBe(600);
  });
});

describe('README values table', () => {
  const documented = documentedKeys();
  const paths = valuePaths(values);

  it('documents every value (a row for the value itself or for an object containing it)', () => {
    const undocumented = paths.filter(
      (p) => !documented.some((row) => row === p || p.startsWith(`${row}.`) || row.startsWith(`${p}.`)),
    );
    expect(undocumented).toEqual([]);
  });

  it('documents only values that exist', () => {
    expect(documented.filter((row) => !paths.includes(row))).toEqual([]);
  });
});

describe('values.yaml comments', () => {
  // A key is documented by a comment right above it, by the comment of the block of sibling keys it
  // belongs to (no blank line in between), or by a documented parent (e.g. securityContext's fields).
  it('documents every key with a comment', () => {
    const lines = read('values.yaml').split('\n');
    const indent = (line: string): number => line.length - line.trimStart().length;
    const memo = new Map<number, boolean>();
    const documented = (i: number): boolean => {
      if (memo.has(i)) return memo.get(i) as boolean;
      const own = indent(lines[i] as string);
      let result = false;
      for (let j = i - 1; j >= 0; j--) {
        const line = lines[j] as string;
        if (line.trim() === '') break;
        if (line.trimStart().startsWith('#')) {
          if (indent(line) === own) {
            result = true;
            break;
          }
          continue;
        }
        if (indent(line) < own) {
          result = documented(j);
          break;
        }
      }
      memo.set(i, result);
      return result;
    };
    const undocumented = lines.flatMap((line, i) =>
      /^\s*[A-Za-z]\w*:/.test(line) && !documented(i) ? [`${i + 1}: ${line.trim()}`] : [],
    );
    expect(undocumented).toEqual([]);
  });
});
