/**
 * What the chart renders (`helm template`, no cluster): the image has no default and a digest pins
 * it; the admission policy asks the authorizer for every permission an AuthProbe borrows and skips
 * the operator's own requests and metadata-only updates; the aggregated roles extend admin, edit and
 * view without status writes; the operator gets its tenancy settings and the RBAC of the README's
 * table. The apiserver's verdict on the same manifests and the policy's effect on real users are in
 * test/e2e/helm.e2e.test.ts, rbac-table.e2e.test.ts and tenancy-admission.e2e.test.ts.
 *
 * Needs helm: on PATH, in $HELM, or the test cluster's build (`npm run cluster:env` prints its PATH).
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadAll } from 'js-yaml';

const REPO = path.resolve(import.meta.dirname, '../../..');
const CHART = path.join(REPO, 'charts/authprobe-operator');
const REPOSITORY = 'registry.example.com/authprobe-operator';
const RELEASE_NS = 'authprobe-system';
const FULLNAME = 'ap-authprobe-operator';
const SA_USER = `system:serviceaccount:${RELEASE_NS}:${FULLNAME}`;
const CANARY = `${FULLNAME}-canary`;

/** helm from $HELM, PATH, or the directory test/cluster/env.sh puts on PATH. */
function findHelm(): string {
  if (process.env.HELM) return process.env.HELM;
  if (spawnSync('helm', ['version', '--short']).status === 0) return 'helm';
  const env = spawnSync('bash', [path.join(REPO, 'test/cluster/env.sh')], { encoding: 'utf8' });
  const dir = /^export PATH=(\S+?):"\$PATH"$/m.exec(env.stdout ?? '')?.[1];
  if (dir && existsSync(path.join(dir, 'helm'))) return path.join(dir, 'helm');
  throw new Error(
    'helm not found: install it, set HELM, or build the test cluster tools (npm run cluster:up) and eval "$(npm run -s cluster:env)"',
  );
}
const HELM = findHelm();

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Validation {
  expression: string;
  message: string;
  messageExpression: string;
  reason: string;
}
interface Policy extends K8sObject {
  spec: {
    failurePolicy: string;
    matchConstraints: { resourceRules: { apiGroups: string[]; resources: string[]; operations: string[] }[] };
    matchConditions: { name: string; expression: string }[];
    variables: { name: string; expression: string }[];
    validations: Validation[];
  };
}
interface EnvVar {
  name: string;
  value?: string;
}

/** Runs `helm template` (kube v1.36 unless told otherwise); returns the result, failing or not. */
function helmTemplate(args: string[], kubeVersion = 'v1.36.0') {
  return spawnSync(
    HELM,
    ['template', 'ap', CHART, '-n', RELEASE_NS, '--kube-version', kubeVersion, ...args],
    { encoding: 'utf8' },
  );
}

/** The rendered objects, with image.repository set unless `args` set it. */
function render(args: string[] = [], kubeVersion?: string): K8sObject[] {
  const r = helmTemplate(['--set', `image.repository=${REPOSITORY}`, ...args], kubeVersion);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return (loadAll(r.stdout) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
}

const only = <T extends K8sObject>(objects: K8sObject[], kind: string): T[] =>
  objects.filter((o) => o.kind === kind) as T[];

function one<T extends K8sObject>(objects: K8sObject[], kind: string, name?: string): T {
  const found = only<T>(objects, kind).filter((o) => name === undefined || o.metadata.name === name);
  expect(found.map((o) => `${o.kind}/${o.metadata.name}`)).toHaveLength(1);
  return found[0] as T;
}

function operatorEnv(objects: K8sObject[]): Record<string, string | undefined> {
  const deployment = one<K8sObject & { spec: { template: { spec: { containers: { env: EnvVar[] }[] } } } }>(
    objects,
    'Deployment',
  );
  const env = deployment.spec.template.spec.containers[0]?.env ?? [];
  return Object.fromEntries(env.map((e) => [e.name, e.value]));
}

function operatorImage(objects: K8sObject[]): string | undefined {
  const deployment = one<K8sObject & { spec: { template: { spec: { containers: { image: string }[] } } } }>(
    objects,
    'Deployment',
  );
  return deployment.spec.template.spec.containers[0]?.image;
}

/** "group|resource|names" -> verbs, over a list of rules. */
function grants(rules: Rule[]): Record<string, string[]> {
  const out: Record<string, Set<string>> = {};
  for (const rule of rules)
    for (const group of rule.apiGroups)
      for (const resource of rule.resources) {
        const key = `${group}|${resource}|${(rule.resourceNames ?? []).join(',') || '*'}`;
        out[key] ??= new Set();
        for (const verb of rule.verbs) out[key].add(verb);
      }
  return Object.fromEntries(
    Object.entries(out)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, [...v].sort()]),
  );
}

describe('the image', () => {
  it('has no default repository: rendering without one fails with what to set', () => {
    const r = helmTemplate([]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
      'image.repository is required: set it to the registry/repository you pushed the authprobe-operator image to (see the Dockerfile), e.g. --set image.repository=registry.example.com/authprobe-operator',
    );
    const values = readFileSync(path.join(CHART, 'values.yaml'), 'utf8');
    expect(values).toMatch(/^ {2}repository: ''$/m);
  });

  it('is repository:appVersion by default, the tag when set, and the digest when set, for the operator and its probe pods', () => {
    expect(operatorImage(render())).toBe(`${REPOSITORY}:0.1.0`);
    expect(operatorImage(render(['--set', 'image.tag=1.2.3']))).toBe(`${REPOSITORY}:1.2.3`);
    const digest = `sha256:${'ab12'.repeat(16)}`;
    const pinned = render(['--set', 'image.tag=1.2.3', '--set', `image.digest=${digest}`]);
    expect(operatorImage(pinned)).toBe(`${REPOSITORY}@${digest}`);
    expect(operatorEnv(pinned)['AUTHPROBE_IMAGE']).toBe(`${REPOSITORY}@${digest}`);
  });

  it.each([['sha256:abc'], [`sha512:${'a'.repeat(64)}`], [`${'a'.repeat(64)}`]])(
    'refuses the digest %s in the schema',
    (digest) => {
      const r = helmTemplate(['--set', `image.repository=${REPOSITORY}`, '--set', `image.digest=${digest}`]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('image/digest');
    },
  );
});

describe('the admission policy', () => {
  const objects = render();
  const policy = one<Policy>(objects, 'ValidatingAdmissionPolicy');
  const binding = one<K8sObject & { spec: Record<string, unknown> }>(
    objects,
    'ValidatingAdmissionPolicyBinding',
  );
  const expressions = policy.spec.validations.map((v) => v.expression.replace(/\s+/g, ' '));

  it('names only variables defined before it, and only defined ones (the apiserver refuses the policy otherwise)', () => {
    const defined = new Set<string>();
    for (const v of policy.spec.variables) {
      for (const [, used] of v.expression.matchAll(/variables\.(\w+)/g))
        expect({ variable: v.name, uses: used, definedBefore: defined.has(used ?? '') }).toMatchObject({
          definedBefore: true,
        });
      defined.add(v.name);
    }
    for (const e of expressions)
      for (const [, used] of e.matchAll(/variables\.(\w+)/g)) expect(defined.has(used ?? '')).toBe(true);
  });

  it('is admissionregistration.k8s.io/v1, fails closed, and its binding denies', () => {
    expect(policy.apiVersion).toBe('admissionregistration.k8s.io/v1');
    expect(binding.apiVersion).toBe('admissionregistration.k8s.io/v1');
    expect(policy.spec.failurePolicy).toBe('Fail');
    expect(policy.metadata.name).toBe(`${RELEASE_NS}-${FULLNAME}`);
    expect(binding.spec).toEqual({
      policyName: policy.metadata.name,
      validationActions: ['Deny'],
      matchResources: { namespaceSelector: {} },
    });
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      expect.objectContaining({
        apiGroups: ['authprobe.io'],
        resources: ['authprobes'],
        operations: ['CREATE', 'UPDATE'],
      }),
    ]);
  });

  it.each([
    ["group('').resource('pods')", 'create', "variables.check != 'Pod'"],
    [
      "group('').resource('secrets').namespace(request.namespace).name(variables.secretName)",
      'get',
      "variables.source != 'Secret'",
    ],
    [
      "group('').resource('secrets').namespace(request.namespace).name(variables.secretName)",
      'delete',
      '!variables.healAuto',
    ],
    ["group('').resource('secrets').namespace(request.namespace)", 'create', '!variables.healAuto'],
    [
      "group('').resource('secrets').namespace(request.namespace).name(variables.secretName)",
      'patch',
      '!variables.revalidate',
    ],
    ["group('apps').resource('deployments')", 'patch', '!variables.restartWorkloads'],
    ["group('apps').resource('statefulsets')", 'patch', '!variables.restartWorkloads'],
    ["group('apps').resource('daemonsets')", 'patch', '!variables.restartWorkloads'],
    [
      "group('').resource('serviceaccounts').subresource('token').namespace(request.namespace).name(variables.serviceAccountName)",
      'create',
      '!variables.copyMintsToken',
    ],
    [
      "group('').resource('secrets').namespace(request.namespace).name(variables.copySecretName)",
      'get',
      "variables.check != 'Copy'",
    ],
    [
      "group('').resource('secrets').namespace(request.namespace).name(variables.copySecretName)",
      'patch',
      '!variables.healAuto',
    ],
    [
      "group('').resource('secrets').namespace(request.namespace).name(variables.copyCredentialsSecretName)",
      'get',
      "variables.copyCredentialsSecretName == ''",
    ],
    [
      "group('').resource('secrets').namespace(request.namespace).name(variables.copyRenewSecretName)",
      'get',
      '!variables.copyRenewFromSecret',
    ],
  ])('checks %s %s (skipped when %s)', (resource, verb, unless) => {
    const matching = expressions.filter(
      (e) => e.includes(`authorizer.${resource}`) && e.includes(`.check('${verb}').allowed()`),
    );
    expect(matching).toHaveLength(1);
    expect(matching[0]).toContain(unless);
    expect(matching[0]).toContain('namespace(request.namespace)');
  });

  it('asks the authorizer once per expression (each check costs a fixed share of the CEL budget)', () => {
    expect(expressions).toHaveLength(13);
    for (const e of expressions) expect(e.match(/\.check\(/g)).toHaveLength(1);
  });

  it('names the missing permission and the namespace in every refusal', () => {
    for (const v of policy.spec.validations) {
      expect(v.reason).toBe('Forbidden');
      expect(v.messageExpression).toContain('request.namespace');
      expect(v.messageExpression).toMatch(/^'the requester may not \w+ [a-z/]+/);
      expect(v.messageExpression).not.toContain('authorizer'); // messages must not cost checks
      expect(v.message).toMatch(/^the requester may not /);
    }
    const pods = policy.spec.validations.find((v) => v.expression.includes("resource('pods')"));
    expect(pods?.messageExpression.replace(/\s+/g, ' ')).toBe(
      "'the requester may not create pods in namespace ' + request.namespace + ': an AuthProbe with check Pod makes the operator create a probe pod as a ServiceAccount of this namespace; grant pods/create or use check: TokenReview'",
    );
  });

  it("reads the CRD's defaults defensively: Pod check, Projected source, Auto heal when unset", () => {
    const variables = Object.fromEntries(policy.spec.variables.map((v) => [v.name, v.expression]));
    expect(variables['check']).toBe("has(object.spec.check) ? object.spec.check : 'Pod'");
    expect(variables['source']).toContain(": 'Projected'");
    expect(variables['healAuto']).toMatch(
      /^!has\(object\.spec\.heal\) \|\| !has\(object\.spec\.heal\.policy\) \|\|/,
    );
    expect(variables['restartWorkloads']).toContain('has(object.spec.heal.restartWorkloads) &&');
  });

  it("skips the operator's own requests and updates that leave spec alone", () => {
    const conditions = Object.fromEntries(policy.spec.matchConditions.map((c) => [c.name, c.expression]));
    expect(conditions['not-the-operator']).toBe(`request.userInfo.username != '${SA_USER}'`);
    expect(conditions['spec-written']).toMatch(/^request\.operation == 'CREATE' \|\|/);
    expect(conditions['spec-written']).toContain('oldObject.spec != object.spec');
  });

  it('follows serviceAccount.name and admission.namespaceSelector', () => {
    const custom = render([
      '--set',
      'serviceAccount.name=probe-operator',
      '--set-json',
      'admission.namespaceSelector={"matchLabels":{"team":"a"}}',
    ]);
    const p = one<Policy>(custom, 'ValidatingAdmissionPolicy');
    expect(p.spec.matchConditions[0]?.expression).toBe(
      `request.userInfo.username != 'system:serviceaccount:${RELEASE_NS}:probe-operator'`,
    );
    const b = one<K8sObject & { spec: { matchResources: unknown } }>(
      custom,
      'ValidatingAdmissionPolicyBinding',
    );
    expect(b.spec.matchResources).toEqual({ namespaceSelector: { matchLabels: { team: 'a' } } });
  });

  it('renders nothing with admission.enabled=false', () => {
    const off = render(['--set', 'admission.enabled=false']);
    expect(off.filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy'))).toEqual([]);
    expect(only(off, 'Deployment')).toHaveLength(1);
  });

  it('fails on Kubernetes before 1.30 unless admission is turned off', () => {
    const r = helmTemplate(['--set', `image.repository=${REPOSITORY}`], 'v1.29.4');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('admission.enabled needs Kubernetes >= 1.30');
    expect(only(render(['--set', 'admission.enabled=false'], 'v1.29.4'), 'Deployment')).toHaveLength(1);
  });

  it("matches the README's admission table, row for row", () => {
    const readme = readFileSync(path.join(CHART, 'README.md'), 'utf8');
    const table = /<!-- admission:begin -->([\s\S]*?)<!-- admission:end -->/.exec(readme)?.[1] ?? '';
    const rows = table
      .split('\n')
      .filter((l) => l.startsWith('|') && !l.startsWith('| ---') && !l.startsWith('| When'))
      .map((l) =>
        /`(\w+)` `([a-z/]+)`/
          .exec(l.split('|')[2] ?? '')
          ?.slice(1, 3)
          .join(' '),
      );
    const rendered = expressions.map((e) => {
      const resource = /resource\('(\w+)'\)(?:\.subresource\('(\w+)'\))?/.exec(e);
      const verb = /check\('(\w+)'\)/.exec(e)?.[1];
      return `${verb} ${resource?.[1]}${resource?.[2] ? `/${resource[2]}` : ''}`;
    });
    expect(rows).toEqual(rendered);
  });
});

describe('the aggregated roles', () => {
  const roles = only<K8sObject & { rules: Rule[] }>(render(), 'ClusterRole');
  const edit = roles.find((r) => r.metadata.name === `${RELEASE_NS}-${FULLNAME}-edit`);
  const view = roles.find((r) => r.metadata.name === `${RELEASE_NS}-${FULLNAME}-view`);

  it('extend admin and edit with every verb on authprobes, and no status write', () => {
    expect(edit?.metadata.labels).toMatchObject({
      'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
      'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
    });
    expect(edit?.metadata.labels).not.toHaveProperty(['rbac.authorization.k8s.io/aggregate-to-view']);
    expect(grants(edit?.rules ?? [])).toEqual({
      'authprobe.io|authprobes|*': [
        'create',
        'delete',
        'deletecollection',
        'get',
        'list',
        'patch',
        'update',
        'watch',
      ],
    });
  });

  it('extend view with reading authprobes and their status', () => {
    expect(view?.metadata.labels).toMatchObject({ 'rbac.authorization.k8s.io/aggregate-to-view': 'true' });
    expect(view?.metadata.labels).not.toHaveProperty(['rbac.authorization.k8s.io/aggregate-to-edit']);
    expect(grants(view?.rules ?? [])).toEqual({
      'authprobe.io|authprobes/status|*': ['get', 'list', 'watch'],
      'authprobe.io|authprobes|*': ['get', 'list', 'watch'],
    });
  });

  it('grant no write on authprobes/status anywhere but to the operator', () => {
    const writers = roles
      .filter((r) =>
        r.rules.some(
          (rule) =>
            rule.resources.includes('authprobes/status') &&
            rule.verbs.some((v) => !['get', 'list', 'watch'].includes(v)),
        ),
      )
      .map((r) => r.metadata.name);
    expect(writers).toEqual([`${RELEASE_NS}-${FULLNAME}`]); // the operator's own ClusterRole
  });

  it('are not rendered with aggregateRoles.enabled=false', () => {
    const names = only(render(['--set', 'aggregateRoles.enabled=false']), 'ClusterRole').map(
      (r) => r.metadata.name,
    );
    expect(names).toEqual([`${RELEASE_NS}-${FULLNAME}`]);
  });
});

describe('the operator settings', () => {
  it('passes the tenancy defaults and its own and the canary account', () => {
    expect(operatorEnv(render())).toMatchObject({
      AUTHPROBE_ALLOWED_PROBE_IMAGES: '',
      AUTHPROBE_ALLOWED_PRIORITY_CLASSES: '',
      AUTHPROBE_ALLOWED_TOLERATION_KEYS: '',
      AUTHPROBE_ALLOWED_POD_LABEL_PREFIXES: '',
      AUTHPROBE_ALLOWED_POD_ANNOTATION_PREFIXES: '',
      AUTHPROBE_MAX_PROBE_CPU: '100m',
      AUTHPROBE_MAX_PROBE_MEMORY: '256Mi',
      AUTHPROBE_EXCLUDED_NAMESPACES: 'kube-system',
      AUTHPROBE_MAX_AUTHPROBES_PER_NAMESPACE: '0',
      AUTHPROBE_OPERATOR_SERVICE_ACCOUNT: FULLNAME,
      AUTHPROBE_CANARY_SERVICE_ACCOUNT: CANARY,
    });
  });

  it("sets the operator's Node.js options: V8's young generation capped by default, none when empty", () => {
    expect(operatorEnv(render())['NODE_OPTIONS']).toBe('--max-semi-space-size=8');
    expect(operatorEnv(render(['--set', 'operator.nodeOptions=--max-old-space-size=192']))).toMatchObject({
      NODE_OPTIONS: '--max-old-space-size=192',
    });
    expect(operatorEnv(render(['--set', 'operator.nodeOptions=']))).not.toHaveProperty('NODE_OPTIONS');
  });

  it('joins lists with commas', () => {
    const env = operatorEnv(
      render([
        '--set-json',
        'operator.tenancy={"allowedProbeImages":["r.example.com/a:1","r.example.com/tools/*"],"allowedPriorityClasses":["low"],"allowedTolerationKeys":["k1","k2"],"allowedPodLabelPrefixes":["example.com/"],"allowedPodAnnotationPrefixes":["a.example.com/","b.example.com/"],"maxProbeCpu":"250m","maxProbeMemory":"1Gi","excludedNamespaces":["kube-system","kube-public"],"maxAuthProbesPerNamespace":25}',
        '--set',
        'operator.canaryServiceAccount=my-canary',
      ]),
    );
    expect(env).toMatchObject({
      AUTHPROBE_ALLOWED_PROBE_IMAGES: 'r.example.com/a:1,r.example.com/tools/*',
      AUTHPROBE_ALLOWED_PRIORITY_CLASSES: 'low',
      AUTHPROBE_ALLOWED_TOLERATION_KEYS: 'k1,k2',
      AUTHPROBE_ALLOWED_POD_LABEL_PREFIXES: 'example.com/',
      AUTHPROBE_ALLOWED_POD_ANNOTATION_PREFIXES: 'a.example.com/,b.example.com/',
      AUTHPROBE_MAX_PROBE_CPU: '250m',
      AUTHPROBE_MAX_PROBE_MEMORY: '1Gi',
      AUTHPROBE_EXCLUDED_NAMESPACES: 'kube-system,kube-public',
      AUTHPROBE_MAX_AUTHPROBES_PER_NAMESPACE: '25',
      AUTHPROBE_CANARY_SERVICE_ACCOUNT: 'my-canary',
    });
  });

  it.each([
    ['operator/tenancy/allowedProbeImages/0', ['--set-json', 'operator.tenancy.allowedProbeImages=["a,b"]']],
    ['operator/tenancy/maxProbeCpu', ['--set', 'operator.tenancy.maxProbeCpu=lots']],
    [
      'operator/tenancy/excludedNamespaces/0',
      ['--set-json', 'operator.tenancy.excludedNamespaces=["Kube_System"]'],
    ],
    [
      'operator/tenancy/maxAuthProbesPerNamespace',
      ['--set', 'operator.tenancy.maxAuthProbesPerNamespace=-1'],
    ],
    ['admission/enabled', ['--set', 'admission.enabled=yes']],
    ['operator/extraEnv/0/name', ['--set-json', 'operator.extraEnv=[{"name":"NODE_OPTIONS","value":"--x"}]']],
  ])('a wrong value fails with a message naming %s', (name, args) => {
    const r = helmTemplate(['--set', `image.repository=${REPOSITORY}`, ...args]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(name);
  });
});

describe('the RBAC', () => {
  const ownNamespace = {
    '|configmaps|*': ['create'],
    '|configmaps|authprobe-heal-ledger': ['get', 'patch', 'update'],
    '|secrets|*': ['create', 'delete', 'get'],
    [`|serviceaccounts|${CANARY}`]: ['get'],
  };
  const namespaced = {
    'apps|daemonsets|*': ['list', 'patch'],
    'apps|deployments|*': ['list', 'patch'],
    'apps|statefulsets|*': ['list', 'patch'],
    'authprobe.io|authprobes/finalizers|*': ['update'],
    'authprobe.io|authprobes/status|*': ['get', 'patch', 'update'],
    'authprobe.io|authprobes|*': ['get', 'list', 'patch', 'update', 'watch'],
    '|events|*': ['create', 'patch'],
    '|pods|*': ['create', 'delete', 'get', 'list', 'watch'],
    '|secrets|*': ['create', 'delete', 'get', 'patch'],
    '|serviceaccounts|*': ['get', 'list', 'watch'],
    '|serviceaccounts/token|*': ['create'],
  };

  it('cluster mode: a ClusterRole for every namespace and a Role in the release namespace', () => {
    const objects = render();
    const clusterRole = one<K8sObject & { rules: Rule[] }>(
      objects,
      'ClusterRole',
      `${RELEASE_NS}-${FULLNAME}`,
    );
    expect(grants(clusterRole.rules)).toEqual(
      grants([
        ...Object.entries(namespaced).map(([k, verbs]) => {
          const [group = '', resource = ''] = k.split('|');
          return { apiGroups: [group], resources: [resource], verbs };
        }),
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      ]),
    );
    const roles = only<K8sObject & { rules: Rule[] }>(objects, 'Role');
    expect(roles.map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual([
      `${RELEASE_NS}/${FULLNAME}-operator`,
    ]);
    expect(grants(roles[0]?.rules ?? [])).toEqual(ownNamespace);
  });

  it('watchNamespaces mode: a Role per watched namespace, and the release namespace Role with its Lease and Events', () => {
    const objects = render([
      '--set',
      'watchNamespaces={team-a,team-b}',
      '--set',
      'replicaCount=2',
      '--set',
      'rbac.restartWorkloads=false',
    ]);
    const roles = only<K8sObject & { rules: Rule[] }>(objects, 'Role');
    const byNamespace = Object.fromEntries(roles.map((r) => [r.metadata.namespace, grants(r.rules)]));
    const withoutApps = Object.fromEntries(
      Object.entries(namespaced).filter(([k]) => !k.startsWith('apps|')),
    );
    expect(byNamespace).toEqual({
      'team-a': withoutApps,
      'team-b': withoutApps,
      [RELEASE_NS]: {
        ...ownNamespace,
        '|events|*': ['create', 'patch'],
        'coordination.k8s.io|leases|*': ['create', 'get', 'update'],
      },
    });
    const bindings = only<K8sObject & { subjects: { name: string; namespace: string }[] }>(
      objects,
      'RoleBinding',
    );
    expect(bindings).toHaveLength(3);
    for (const b of bindings)
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: FULLNAME, namespace: RELEASE_NS }]);
  });

  it('creates the canary ServiceAccount without a token and binds no role to it', () => {
    const objects = render();
    const canary = one<K8sObject & { automountServiceAccountToken: boolean }>(
      objects,
      'ServiceAccount',
      CANARY,
    );
    expect(canary.metadata.namespace).toBe(RELEASE_NS);
    expect(canary.automountServiceAccountToken).toBe(false);
    const subjects = [...only(objects, 'RoleBinding'), ...only(objects, 'ClusterRoleBinding')].flatMap(
      (b) => (b as K8sObject & { subjects: { name: string }[] }).subjects,
    );
    expect(subjects.map((s) => s.name)).not.toContain(CANARY);
  });

  it('renders with every option on (ci/all-on-values.yaml)', () => {
    const kinds = new Set(render(['-f', path.join(CHART, 'ci/all-on-values.yaml')]).map((o) => o.kind));
    expect(kinds).toContain('ValidatingAdmissionPolicy');
    expect(kinds).toContain('ValidatingAdmissionPolicyBinding');
  });
});
