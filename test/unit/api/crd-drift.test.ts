/**
 * The CRD (crds/authprobe.io_authprobes.yaml) and the TypeScript types (src/api/types.ts) describe the
 * same API twice. This test makes the two one fact: `specShape`/`statusShape` below must list every
 * field of the interfaces (the compiler checks that, including which fields are optional and their
 * enums), and the test checks that the CRD's schema has exactly the same tree: field names, required
 * lists, types, enums and defaults. Adding a field on one side only fails here.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { loadYaml, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import {
  AUTHPROBE_GROUP,
  AUTHPROBE_KIND,
  AUTHPROBE_PLURAL,
  AUTHPROBE_VERSION,
  CONDITION_STATUSES,
  CHECK_MODES,
  COPY_FORMATS,
  HEAL_POLICIES,
  RENEW_SOURCES,
  INVALIDATED_LEGACY_TOKEN_ACTIONS,
  TAINT_EFFECTS,
  TOKEN_SOURCES,
  TOLERATION_OPERATORS,
  type AuthProbeSpec,
  type AuthProbeStatus,
} from '../../../src/api/types.js';
import { COPY_RENEW_DEFAULTS, SPEC_DEFAULTS, withDefaults } from '../../../src/api/defaults.js';

// ---- The TypeScript side, type-checked against the interfaces ----------------------------------

type IsOptional<T, K extends keyof T> = object extends Pick<T, K> ? true : false;

/** What a field's type must look like in the schema, derived from its TypeScript type. */
type Kind<V> = [V] extends [boolean]
  ? { type: 'boolean' }
  : [V] extends [number]
    ? { type: 'integer' }
    : [V] extends [string]
      ? string extends V
        ? { type: 'string' }
        : { type: 'string'; enum: readonly V[] }
      : [V] extends [string | number]
        ? { type: 'int-or-string' }
        : [V] extends [readonly (infer E)[]]
          ? { type: 'array'; items: Kind<E> }
          : string extends keyof V
            ? { type: 'map' }
            : { type: 'object'; fields: Shape<V> };

type Field<V, Required extends boolean> = Kind<V> & { required: Required; default?: unknown };

/** Every key of T, each with `required` equal to "not optional in T". */
type Shape<T> = { [K in keyof T]-?: Field<NonNullable<T[K]>, IsOptional<T, K> extends true ? false : true> };

const quantity = { type: 'int-or-string', required: false } as const;
const resourceList = {
  type: 'object',
  required: false,
  fields: { cpu: quantity, memory: quantity },
} as const;
const stringMap = { type: 'map', required: false } as const;
const optionalString = { type: 'string', required: false } as const;
const optionalInteger = { type: 'integer', required: false } as const;

const specShape = {
  serviceAccountName: { type: 'string', required: true },
  token: {
    type: 'object',
    required: false,
    default: { source: SPEC_DEFAULTS.token.source },
    fields: {
      source: { type: 'string', required: false, enum: TOKEN_SOURCES, default: SPEC_DEFAULTS.token.source },
      secretName: optionalString,
      expirationSeconds: optionalInteger,
      audience: optionalString,
    },
  },
  check: { type: 'string', required: false, enum: CHECK_MODES, default: SPEC_DEFAULTS.check },
  interval: { type: 'string', required: false, default: SPEC_DEFAULTS.interval },
  timeout: { type: 'string', required: false },
  path: { type: 'string', required: false, default: SPEC_DEFAULTS.path },
  heal: {
    type: 'object',
    required: false,
    default: {},
    fields: {
      policy: { type: 'string', required: false, enum: HEAL_POLICIES, default: SPEC_DEFAULTS.heal.policy },
      invalidatedLegacyToken: {
        type: 'string',
        required: false,
        enum: INVALIDATED_LEGACY_TOKEN_ACTIONS,
        default: SPEC_DEFAULTS.heal.invalidatedLegacyToken,
      },
      restartWorkloads: { type: 'boolean', required: false, default: SPEC_DEFAULTS.heal.restartWorkloads },
      maxPerHour: { type: 'integer', required: false, default: SPEC_DEFAULTS.heal.maxPerHour },
    },
  },
  podTemplate: {
    type: 'object',
    required: false,
    fields: {
      image: optionalString,
      resources: {
        type: 'object',
        required: false,
        fields: { requests: resourceList, limits: resourceList },
      },
      nodeSelector: stringMap,
      tolerations: {
        type: 'array',
        required: false,
        items: {
          type: 'object',
          fields: {
            key: optionalString,
            operator: { type: 'string', required: false, enum: TOLERATION_OPERATORS },
            value: optionalString,
            effect: { type: 'string', required: false, enum: TAINT_EFFECTS },
            tolerationSeconds: optionalInteger,
          },
        },
      },
      priorityClassName: optionalString,
      imagePullSecrets: {
        type: 'array',
        required: false,
        items: { type: 'object', fields: { name: { type: 'string', required: true } } },
      },
      labels: stringMap,
      annotations: stringMap,
    },
  },
  keepPods: { type: 'integer', required: false, default: SPEC_DEFAULTS.keepPods },
  copy: {
    type: 'object',
    required: false,
    fields: {
      secretName: { type: 'string', required: true },
      format: { type: 'string', required: false, enum: COPY_FORMATS, default: 'Token' },
      key: optionalString,
      user: optionalString,
      serviceAccountNamespace: optionalString,
      renew: {
        type: 'object',
        required: false,
        fields: {
          from: { type: 'string', required: false, enum: RENEW_SOURCES, default: COPY_RENEW_DEFAULTS.from },
          expirationSeconds: optionalInteger,
          secretName: optionalString,
          credentialsSecretName: optionalString,
        },
      },
    },
  },
} as const satisfies Shape<AuthProbeSpec>;

const statusShape = {
  observedGeneration: optionalInteger,
  conditions: {
    type: 'array',
    required: false,
    items: {
      type: 'object',
      fields: {
        type: { type: 'string', required: true },
        status: { type: 'string', required: true, enum: CONDITION_STATUSES },
        observedGeneration: optionalInteger,
        lastTransitionTime: { type: 'string', required: true },
        reason: { type: 'string', required: true },
        message: { type: 'string', required: true },
      },
    },
  },
  lastProbe: {
    type: 'object',
    required: false,
    fields: {
      time: optionalString,
      outcome: optionalString,
      httpStatus: optionalInteger,
      latencyMs: optionalInteger,
      pod: optionalString,
      identity: optionalString,
      message: optionalString,
      probeNow: optionalString,
      tokenKeyID: optionalString,
      tokenIssuer: optionalString,
    },
  },
  lastSuccessTime: optionalString,
  consecutiveFailures: optionalInteger,
  heals: {
    type: 'object',
    required: false,
    fields: {
      count: optionalInteger,
      lastTime: optionalString,
      lastAction: optionalString,
      lastResult: optionalString,
      history: { type: 'array', required: false, items: { type: 'string' } },
    },
  },
  healIntent: {
    type: 'object',
    required: false,
    fields: {
      secretName: { type: 'string', required: true },
      staleUid: { type: 'string', required: true },
      staleResourceVersion: { type: 'string', required: true },
      serviceAccountName: { type: 'string', required: true },
      startedAt: { type: 'string', required: true },
      labels: stringMap,
      annotations: stringMap,
      ownerReferences: {
        type: 'array',
        required: false,
        items: {
          type: 'object',
          fields: {
            apiVersion: { type: 'string', required: true },
            kind: { type: 'string', required: true },
            name: { type: 'string', required: true },
            uid: { type: 'string', required: true },
            controller: { type: 'boolean', required: false },
            blockOwnerDeletion: { type: 'boolean', required: false },
          },
        },
      },
    },
  },
} as const satisfies Shape<AuthProbeStatus>;

// ---- Both sides in one comparable form ---------------------------------------------------------

interface Normalized {
  type: string;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  properties?: Record<string, Normalized>;
  items?: Normalized;
}

interface ShapeNode {
  type: string;
  required?: boolean;
  default?: unknown;
  enum?: readonly unknown[];
  fields?: Record<string, ShapeNode>;
  items?: ShapeNode;
}

function normalizeShape(node: ShapeNode): Normalized {
  const out: Normalized = { type: node.type };
  if (node.enum) out.enum = [...node.enum];
  if (node.default !== undefined) out.default = node.default;
  if (node.fields) {
    const fields = Object.entries(node.fields);
    out.required = fields
      .filter(([, f]) => f.required)
      .map(([name]) => name)
      .sort();
    out.properties = Object.fromEntries(fields.map(([name, f]) => [name, normalizeShape(f)]));
  }
  if (node.items) out.items = normalizeShape(node.items);
  return out;
}

/**
 * A schema node from the CRD. client-node's loadYaml renames some keys of typed nodes (`_default`,
 * `_enum`, `x_kubernetes_*`) but leaves `items` (typed `any`) raw, so both spellings are read.
 */
type SchemaNode = Record<string, unknown>;
const pick = (node: SchemaNode, ...keys: string[]): unknown =>
  keys.map((k) => node[k]).find((v) => v !== undefined);

function normalizeSchema(node: SchemaNode): Normalized {
  const intOrString = pick(node, 'x_kubernetes_int_or_string', 'x-kubernetes-int-or-string') === true;
  const isMap = node['additionalProperties'] !== undefined;
  const type = intOrString ? 'int-or-string' : isMap ? 'map' : String(node['type']);
  const out: Normalized = { type };
  const enumValues = pick(node, '_enum', 'enum');
  if (Array.isArray(enumValues)) out.enum = enumValues;
  const defaultValue = pick(node, '_default', 'default');
  if (defaultValue !== undefined) out.default = defaultValue;
  const properties = node['properties'] as Record<string, SchemaNode> | undefined;
  if (type === 'object') {
    out.required = [...((node['required'] as string[] | undefined) ?? [])].sort();
    out.properties = Object.fromEntries(
      Object.entries(properties ?? {}).map(([name, child]) => [name, normalizeSchema(child)]),
    );
  }
  const items = node['items'] as SchemaNode | undefined;
  if (items) out.items = normalizeSchema(items);
  return out;
}

// ---- The CRD ------------------------------------------------------------------------------------

const crdPath = new URL('../../../crds/authprobe.io_authprobes.yaml', import.meta.url);
const crd = loadYaml<V1CustomResourceDefinition>(readFileSync(crdPath, 'utf8'));
const version = crd.spec.versions.find((v) => v.name === AUTHPROBE_VERSION);
const root = version?.schema?.openAPIV3Schema as unknown as SchemaNode;
const rootProperties = (root?.['properties'] ?? {}) as Record<string, SchemaNode>;
const specSchema = rootProperties['spec'] as SchemaNode;
const statusSchema = rootProperties['status'] as SchemaNode;

describe('CRD identity', () => {
  it('names the group, kind, plural and version the code uses', () => {
    expect(crd.spec.group).toBe(AUTHPROBE_GROUP);
    expect(crd.spec.names.kind).toBe(AUTHPROBE_KIND);
    expect(crd.spec.names.plural).toBe(AUTHPROBE_PLURAL);
    expect(crd.metadata?.name).toBe(`${AUTHPROBE_PLURAL}.${AUTHPROBE_GROUP}`);
    expect(crd.spec.scope).toBe('Namespaced');
    expect(version?.served).toBe(true);
    expect(version?.storage).toBe(true);
    expect(version?.subresources?.status).toEqual({});
  });
});

describe('CRD schema matches src/api/types.ts', () => {
  it('requires exactly spec at the root', () => {
    expect(root['required']).toEqual(['spec']);
  });

  it('spec: same fields, required lists, types, enums and defaults', () => {
    expect(normalizeSchema(specSchema)).toEqual(
      normalizeShape({ type: 'object', fields: specShape as unknown as Record<string, ShapeNode> }),
    );
  });

  it('status: same fields, required lists, types, enums and defaults', () => {
    expect(normalizeSchema(statusSchema)).toEqual(
      normalizeShape({ type: 'object', fields: statusShape as unknown as Record<string, ShapeNode> }),
    );
  });

  it('status.conditions is a map list keyed by type (server-side apply merges per condition)', () => {
    const conditions = (statusSchema['properties'] as Record<string, SchemaNode>)['conditions'] as SchemaNode;
    expect(pick(conditions, 'x_kubernetes_list_type', 'x-kubernetes-list-type')).toBe('map');
    expect(pick(conditions, 'x_kubernetes_list_map_keys', 'x-kubernetes-list-map-keys')).toEqual(['type']);
  });
});

/** Paths of schema nodes without a description, so `kubectl explain` teaches every field. */
function undescribed(node: SchemaNode, path: string): string[] {
  const own = typeof node['description'] === 'string' && node['description'].length > 0 ? [] : [path];
  const properties = (node['properties'] ?? {}) as Record<string, SchemaNode>;
  const children = Object.entries(properties).flatMap(([name, child]) =>
    undescribed(child, `${path}.${name}`),
  );
  const items = node['items'] as SchemaNode | undefined;
  return [...own, ...children, ...(items ? undescribed(items, `${path}[]`) : [])];
}

describe('CRD documentation', () => {
  it('describes every field of spec and status', () => {
    expect([...undescribed(specSchema, 'spec'), ...undescribed(statusSchema, 'status')]).toEqual([]);
  });
});

/** The apiserver's structural defaulting, reduced to what this schema uses: top-down, objects only. */
function applySchemaDefaults(schema: SchemaNode, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...value };
  const properties = (schema['properties'] ?? {}) as Record<string, SchemaNode>;
  for (const [name, child] of Object.entries(properties)) {
    const fallback = pick(child, '_default', 'default');
    if (out[name] === undefined && fallback !== undefined) out[name] = structuredClone(fallback);
    const current = out[name];
    if (child['type'] === 'object' && current && typeof current === 'object' && !Array.isArray(current)) {
      out[name] = applySchemaDefaults(child, current as Record<string, unknown>);
    }
  }
  return out;
}

describe('withDefaults', () => {
  it.each<[string, AuthProbeSpec]>([
    ['a minimal spec', { serviceAccountName: 'sa' }],
    ['a secret source', { serviceAccountName: 'sa', token: { source: 'Secret', secretName: 's' } }],
    ['a partial heal', { serviceAccountName: 'sa', heal: { policy: 'DryRun' }, interval: '1h' }],
  ])('fills in what the apiserver would for %s', (_name, spec) => {
    const { podTemplate: _podTemplate, ...defaulted } = withDefaults(spec);
    expect(defaulted).toEqual(applySchemaDefaults(specSchema, spec as unknown as Record<string, unknown>));
  });
});
