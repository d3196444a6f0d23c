/**
 * The AuthProbe CRD on a real apiserver: impossible specs are rejected at admission with a message that
 * names the field (OpenAPI validation and CEL rules), valid ones are accepted with the defaults filled
 * in, and the examples apply as they are. Uses dryRun, so nothing is stored except the CRD itself.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import {
  ApiextensionsV1Api,
  ApiException,
  CustomObjectsApi,
  KubeConfig,
  loadAllYaml,
  loadYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { AUTHPROBE_GROUP, AUTHPROBE_PLURAL, AUTHPROBE_VERSION } from '../../src/api/types.js';

const crdUrl = new URL('../../crds/authprobe.io_authprobes.yaml', import.meta.url);
const examplesUrl = new URL('../../examples/', import.meta.url);
const NAMESPACE = 'default';

const kc = new KubeConfig();
kc.loadFromDefault();
const extensions = kc.makeApiClient(ApiextensionsV1Api);
const objects = kc.makeApiClient(CustomObjectsApi);

/** Creates the CRD or replaces it with this file's version, then waits until it serves. */
async function installCrd(): Promise<void> {
  const crd = loadYaml<V1CustomResourceDefinition>(readFileSync(crdUrl, 'utf8'));
  const name = crd.metadata?.name ?? '';
  try {
    const existing = await extensions.readCustomResourceDefinition({ name });
    crd.metadata = { ...crd.metadata, resourceVersion: existing.metadata?.resourceVersion };
    await extensions.replaceCustomResourceDefinition({ name, body: crd });
  } catch (err) {
    if (!(err instanceof ApiException) || err.code !== 404) throw err;
    await extensions.createCustomResourceDefinition({ body: crd });
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    const current = await extensions.readCustomResourceDefinition({ name });
    const established = current.status?.conditions?.find((c) => c.type === 'Established')?.status === 'True';
    const served = current.status?.acceptedNames?.kind === 'AuthProbe';
    if (established && served) break;
    if (Date.now() > deadline) throw new Error(`CRD ${name} did not become Established`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // Discovery in the apiserver lags Established by a moment: wait until a dry-run create is understood.
  for (;;) {
    try {
      await dryRunCreate(authProbe('crd-warmup', { serviceAccountName: 'sa' }));
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

function authProbe(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: `${AUTHPROBE_GROUP}/${AUTHPROBE_VERSION}`,
    kind: 'AuthProbe',
    metadata: { name },
    spec,
  };
}

async function dryRunCreate(
  body: Record<string, unknown>,
  namespace = NAMESPACE,
): Promise<Record<string, unknown>> {
  return (await objects.createNamespacedCustomObject({
    group: AUTHPROBE_GROUP,
    version: AUTHPROBE_VERSION,
    namespace,
    plural: AUTHPROBE_PLURAL,
    body,
    dryRun: 'All',
  })) as Record<string, unknown>;
}

/** The HTTP status and the apiserver's message of a rejected request. */
async function rejection(body: Record<string, unknown>): Promise<{ code: number; message: string }> {
  try {
    await dryRunCreate(body);
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const raw: unknown = err.body;
    let message = String(err.message);
    const parsed: unknown = typeof raw === 'string' ? safeJson(raw) : raw;
    if (typeof parsed === 'object' && parsed !== null && 'message' in parsed)
      message = String(parsed.message);
    return { code: err.code, message };
  }
  throw new Error(`expected ${JSON.stringify(body)} to be rejected, but it was accepted`);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

beforeAll(installCrd, 60_000);

const valid = { serviceAccountName: 'sa' };

interface InvalidCase {
  name: string;
  body: Record<string, unknown>;
  /** Text the apiserver's message must contain: the field, and the rule's own words where there is one. */
  mentions: string[];
}

const invalid: InvalidCase[] = [
  {
    name: 'no serviceAccountName',
    body: authProbe('a', {}),
    mentions: ['spec.serviceAccountName', 'Required'],
  },
  {
    name: 'serviceAccountName not a DNS name',
    body: authProbe('a', { serviceAccountName: 'Web_App' }),
    mentions: ['spec.serviceAccountName'],
  },
  {
    name: 'unknown token source',
    body: authProbe('a', { ...valid, token: { source: 'Vault' } }),
    mentions: ['spec.token.source', 'Unsupported value'],
  },
  {
    name: 'Secret without secretName',
    body: authProbe('a', { ...valid, token: { source: 'Secret' } }),
    mentions: ['spec.token.secretName', 'secretName is required when source is Secret'],
  },
  {
    name: 'secretName with Projected',
    body: authProbe('a', { ...valid, token: { source: 'Projected', secretName: 'x' } }),
    mentions: ['spec.token.secretName', 'secretName is only allowed when source is Secret'],
  },
  {
    name: 'secretName with the default source',
    body: authProbe('a', { ...valid, token: { secretName: 'x' } }),
    mentions: ['spec.token.secretName', 'only allowed when source is Secret'],
  },
  {
    name: 'expirationSeconds with Secret',
    body: authProbe('a', { ...valid, token: { source: 'Secret', secretName: 's', expirationSeconds: 3600 } }),
    mentions: ['spec.token.expirationSeconds', 'only allowed when source is Projected'],
  },
  {
    name: 'audience with Secret',
    body: authProbe('a', { ...valid, token: { source: 'Secret', secretName: 's', audience: 'vault' } }),
    mentions: ['spec.token.audience', 'only allowed when source is Projected'],
  },
  {
    name: 'expirationSeconds below 600',
    body: authProbe('a', { ...valid, token: { expirationSeconds: 60 } }),
    mentions: ['spec.token.expirationSeconds', '600'],
  },
  {
    name: 'interval not a duration',
    body: authProbe('a', { ...valid, interval: '5 minutes' }),
    mentions: ['spec.interval'],
  },
  {
    name: 'interval too short',
    body: authProbe('a', { ...valid, interval: '5s', timeout: '1s' }),
    mentions: ['spec.interval', 'interval must be between 10s and 24h'],
  },
  {
    name: 'interval too long',
    body: authProbe('a', { ...valid, interval: '25h' }),
    mentions: ['spec.interval', 'interval must be between 10s and 24h'],
  },
  {
    name: 'timeout too short',
    body: authProbe('a', { ...valid, timeout: '500ms' }),
    mentions: ['spec.timeout', 'timeout must be between 1s and 10m'],
  },
  {
    name: 'timeout not below interval',
    body: authProbe('a', { ...valid, interval: '30s', timeout: '30s' }),
    mentions: ['spec.timeout', 'timeout must be shorter than interval'],
  },
  { name: 'relative path', body: authProbe('a', { ...valid, path: 'api' }), mentions: ['spec.path'] },
  {
    name: 'TokenReview check of a projected token',
    body: authProbe('a', { ...valid, check: 'TokenReview' }),
    mentions: ['spec.check', 'check TokenReview needs token.source Secret'],
  },
  {
    name: 'unknown check',
    body: authProbe('a', { ...valid, check: 'Ping' }),
    mentions: ['spec.check', 'Unsupported value'],
  },
  {
    name: 'unknown heal policy',
    body: authProbe('a', { ...valid, heal: { policy: 'Sometimes' } }),
    mentions: ['spec.heal.policy', 'Unsupported value'],
  },
  {
    name: 'unknown invalidatedLegacyToken action',
    body: authProbe('a', { ...valid, heal: { invalidatedLegacyToken: 'Delete' } }),
    mentions: ['spec.heal.invalidatedLegacyToken', 'Unsupported value'],
  },
  {
    name: 'maxPerHour above 60',
    body: authProbe('a', { ...valid, heal: { maxPerHour: 100 } }),
    mentions: ['spec.heal.maxPerHour'],
  },
  {
    name: 'negative keepPods',
    body: authProbe('a', { ...valid, keepPods: -1 }),
    mentions: ['spec.keepPods'],
  },
  {
    name: 'unknown toleration operator',
    body: authProbe('a', { ...valid, podTemplate: { tolerations: [{ key: 'k', operator: 'Maybe' }] } }),
    mentions: ['spec.podTemplate.tolerations[0].operator'],
  },
  {
    name: 'a cpu request that is not a quantity',
    body: authProbe('a', { ...valid, podTemplate: { resources: { requests: { cpu: 'lots' } } } }),
    mentions: ['spec.podTemplate.resources.requests.cpu'],
  },
  {
    name: 'imagePullSecrets entry without a name',
    body: authProbe('a', { ...valid, podTemplate: { imagePullSecrets: [{}] } }),
    mentions: ['spec.podTemplate.imagePullSecrets[0].name'],
  },
  {
    name: 'a name too long to be a label value',
    body: authProbe('a'.repeat(64), valid),
    mentions: ['metadata.name must be at most 63 characters'],
  },
];

describe('AuthProbe admission: invalid specs are rejected, naming the field', () => {
  it('has at least 12 cases', () => {
    expect(invalid.length).toBeGreaterThanOrEqual(12);
  });

  it.each(invalid)('$name', async ({ body, mentions }) => {
    const { code, message } = await rejection(body);
    expect(code).toBe(422);
    for (const words of mentions) expect(message).toContain(words);
  });
});

describe('AuthProbe admission: valid specs are accepted with defaults', () => {
  it('a minimal projected probe gets every default', async () => {
    const created = await dryRunCreate(authProbe('minimal', { serviceAccountName: 'web-app' }));
    expect(created['spec']).toEqual({
      serviceAccountName: 'web-app',
      token: { source: 'Projected' },
      check: 'Pod',
      interval: '5m',
      path: '/api',
      heal: { policy: 'Auto', invalidatedLegacyToken: 'Recreate', restartWorkloads: false, maxPerHour: 3 },
      keepPods: 3,
    });
  });

  it.each(['10s', '20s', '30s'])(
    'interval %s alone is accepted: the timeout follows the interval (no CRD default)',
    async (interval) => {
      const created = await dryRunCreate(authProbe('short', { serviceAccountName: 'web-app', interval }));
      expect(created['spec']).toMatchObject({ interval });
      expect(created['spec']).not.toHaveProperty('timeout');
    },
  );

  it('a secret-sourced probe keeps its values and gets the rest', async () => {
    const created = await dryRunCreate(
      authProbe('dashboard', {
        serviceAccountName: 'dashboard',
        token: { source: 'Secret', secretName: 'dashboard-token' },
        interval: '1h30m',
        timeout: '10m',
        heal: { policy: 'DryRun' },
      }),
    );
    expect(created['spec']).toMatchObject({
      token: { source: 'Secret', secretName: 'dashboard-token' },
      interval: '1h30m',
      timeout: '10m',
      heal: { policy: 'DryRun', invalidatedLegacyToken: 'Recreate', restartWorkloads: false, maxPerHour: 3 },
    });
  });

  it('a projected probe with its own token lifetime and a full podTemplate', async () => {
    const podTemplate = {
      image: 'registry.example/authprobe:1',
      resources: { requests: { cpu: 1, memory: '32Mi' }, limits: { memory: '128Mi' } },
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ops', effect: 'NoSchedule' }],
      priorityClassName: 'low',
      imagePullSecrets: [{ name: 'regcred' }],
      labels: { team: 'ops' },
      annotations: { 'example.com/owner': 'ops' },
    };
    const created = await dryRunCreate(
      authProbe('explicit', {
        serviceAccountName: 'web-app',
        token: { expirationSeconds: 600, audience: 'https://kubernetes.default.svc' },
        interval: '10s',
        timeout: '9s',
        podTemplate,
        keepPods: 0,
      }),
    );
    expect(created['spec']).toMatchObject({
      token: { source: 'Projected', expirationSeconds: 600 },
      podTemplate,
    });
  });

  it('every AuthProbe in examples/ is accepted', async () => {
    const files = readdirSync(examplesUrl).filter((f) => f.endsWith('.yaml'));
    const probes = files.flatMap((f) =>
      (loadAllYaml(readFileSync(new URL(f, examplesUrl), 'utf8')) as Array<Record<string, unknown>>).filter(
        (doc) => doc['kind'] === 'AuthProbe',
      ),
    );
    expect(probes.length).toBeGreaterThanOrEqual(3);
    for (const probe of probes) {
      // The demo namespace may not exist; the schema does not depend on it.
      const { namespace: _namespace, ...metadata } = probe['metadata'] as Record<string, unknown>;
      await dryRunCreate({ ...probe, metadata });
    }
  });
});
