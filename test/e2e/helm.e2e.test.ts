/**
 * The Helm chart on a real cluster (issue 6): lint, the apiserver's verdict on every rendered
 * manifest, schema errors that name the value, install into a namespace that enforces the
 * `restricted` Pod Security Standard, an AuthProbe reconciled to Ready by probe pods admitted there,
 * an upgrade that rolls the Deployment, and an uninstall that keeps the CRD. The service account's
 * permissions are compared with the chart README's table in rbac-table.e2e.test.ts.
 *
 * Needs KUBECONFIG, kubectl and helm on PATH (eval "$(npm run -s cluster:env)"), and the project's
 * test cluster for the image: beforeAll runs `npm run cluster:image` (which runs `npm run build`
 * first) and installs the image reference it prints on its last line.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CHART, helmImageArgs, runCommand as run, sleep } from '../support/cluster.js';

const ALL_ON = path.join(CHART, 'ci/all-on-values.yaml');
const CRD_NAME = 'authprobes.authprobe.io';

const id = randomBytes(3).toString('hex');
const RELEASE = 'ap';
const RELEASE_NS = `ap-helm-${id}`; // the operator, cluster mode
const PROBES_NS = `ap-helm-probes-${id}`; // an AuthProbe; watched by the all-on dry run too
const OTHER_NS = `ap-helm-other-${id}`; // watched by the all-on dry run
// Rendering needs an image repository; the lint and dry-run cases that do not install use this one.
const PLACEHOLDER_REPOSITORY = ['--set', 'image.repository=registry.example.com/authprobe-operator'];

const kubectl = (...args: string[]) => run('kubectl', args).then((r) => r.stdout);
const helm = (...args: string[]) => run('helm', args);

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(2000);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** The operator's recent log lines, for failure messages (the operator never logs a token). */
async function operatorLogs(ns: string, release: string): Promise<string> {
  const r = await run(
    'kubectl',
    ['-n', ns, 'logs', `deployment/${release}-authprobe-operator`, '--tail=60'],
    {
      allowFail: true,
    },
  );
  return `---- operator log (${ns}) ----\n${r.stdout}${r.stderr}`;
}

// ---- manifests ----------------------------------------------------------------------------------

let serverVersion = '';
let image = '';
const createdMonitoringCrds: string[] = [];

/**
 * Minimal monitoring.coreos.com CRDs, so ServiceMonitor and PrometheusRule are validated
 * structurally by the apiserver instead of skipped. They declare (with the prometheus-operator's
 * field names and types) the fields the chart sets; strict field validation rejects anything else.
 */
const MONITORING_CRDS = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              required: [selector]
              properties:
                selector:
                  type: object
                  properties:
                    matchLabels: {type: object, additionalProperties: {type: string}}
                    matchExpressions: {type: array, items: {type: object, x-kubernetes-preserve-unknown-fields: true}}
                namespaceSelector:
                  type: object
                  properties:
                    any: {type: boolean}
                    matchNames: {type: array, items: {type: string}}
                endpoints:
                  type: array
                  items:
                    type: object
                    properties:
                      port: {type: string}
                      path: {type: string}
                      scheme: {type: string}
                      interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      scrapeTimeout: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      honorLabels: {type: boolean}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusrules.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: PrometheusRule, listKind: PrometheusRuleList, plural: prometheusrules, singular: prometheusrule}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              properties:
                groups:
                  type: array
                  items:
                    type: object
                    required: [name, rules]
                    properties:
                      name: {type: string, minLength: 1}
                      interval: {type: string}
                      rules:
                        type: array
                        items:
                          type: object
                          required: [expr]
                          properties:
                            alert: {type: string}
                            record: {type: string}
                            expr: {x-kubernetes-int-or-string: true}
                            for: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                            labels: {type: object, additionalProperties: {type: string}}
                            annotations: {type: object, additionalProperties: {type: string}}
`;

async function installMonitoringCrds(): Promise<void> {
  for (const name of ['servicemonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com']) {
    const exists = await run('kubectl', ['get', 'crd', name], { allowFail: true });
    if (exists.code !== 0) createdMonitoringCrds.push(name);
  }
  if (createdMonitoringCrds.length === 0) return; // a real prometheus-operator is installed: use its CRDs
  const mine = MONITORING_CRDS.split('\n---\n').filter((doc) =>
    createdMonitoringCrds.some((n) => doc.includes(`name: ${n}`)),
  );
  await run('kubectl', ['apply', '-f', '-'], { input: mine.join('\n---\n') });
  await kubectl(
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...createdMonitoringCrds.map((n) => `crd/${n}`),
  );
}

async function namespace(name: string): Promise<void> {
  await run('kubectl', ['create', 'namespace', name], { allowFail: true });
  // both the operator and the probe pods must pass the strictest Pod Security Standard
  await kubectl(
    'label',
    '--overwrite',
    'namespace',
    name,
    'pod-security.kubernetes.io/enforce=restricted',
    'pod-security.kubernetes.io/warn=restricted',
  );
}

/** helm template with the server's version, in RELEASE_NS. */
async function template(extra: string[]): Promise<string> {
  const r = await helm(
    'template',
    RELEASE,
    CHART,
    '-n',
    RELEASE_NS,
    '--kube-version',
    serverVersion,
    ...extra,
  );
  return r.stdout;
}

beforeAll(async () => {
  const version = JSON.parse(await kubectl('version', '-o', 'json')) as {
    serverVersion: { gitVersion: string };
  };
  serverVersion = version.serverVersion.gitVersion;
  await Promise.all([RELEASE_NS, PROBES_NS, OTHER_NS].map(namespace));
  await installMonitoringCrds();
  // The image build is test/cluster/image.sh; it runs `npm run build` itself and prints the reference last.
  const built = await run('npm', ['run', '-s', 'cluster:image']);
  image = built.stdout.trim().split('\n').pop() ?? '';
  expect(image).toMatch(/^[^\s:]+(:[^\s]+)$/);
}, 600_000);

afterAll(async () => {
  await run('helm', ['uninstall', RELEASE, '-n', RELEASE_NS, '--wait', '--timeout', '2m'], {
    allowFail: true,
  });
  await run('kubectl', ['delete', 'namespace', '--wait=false', RELEASE_NS, PROBES_NS, OTHER_NS], {
    allowFail: true,
  });
  if (createdMonitoringCrds.length)
    await run('kubectl', ['delete', 'crd', '--wait=false', ...createdMonitoringCrds], { allowFail: true });
}, 300_000);

describe('helm lint and template', () => {
  it.each([
    ['default values', PLACEHOLDER_REPOSITORY],
    ['every option on (ci/all-on-values.yaml)', ['-f', ALL_ON]],
  ])('helm lint --strict is clean with %s', async (_name, extra) => {
    const r = await helm('lint', '--strict', CHART, '--kube-version', serverVersion, ...(extra as string[]));
    expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  // The all-on file watches team-a/team-b; namespaced objects can only be dry-run into namespaces
  // that exist, so the test points watchNamespaces at two of its own.
  it.each([
    ['default values', PLACEHOLDER_REPOSITORY],
    ['every option on', ['-f', ALL_ON, '--set', `watchNamespaces={${PROBES_NS},${OTHER_NS}}`]],
  ])('every manifest rendered with %s passes the apiserver server-side dry run', async (_name, extra) => {
    const manifests = await template(extra as string[]);
    const kinds = [...manifests.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]);
    const r = await run('kubectl', ['apply', '--dry-run=server', '--validate=strict', '-f', '-'], {
      input: manifests,
      allowFail: true,
    });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' }); // no errors, no warnings
    const accepted = r.stdout.split('\n').filter((l) => l.includes('(server dry run)'));
    expect(accepted).toHaveLength(kinds.length);
    if ((extra as string[]).includes(ALL_ON))
      expect(new Set(kinds)).toEqual(
        new Set([
          'ServiceAccount',
          'ClusterRole',
          'ClusterRoleBinding',
          'Role',
          'RoleBinding',
          'Service',
          'Deployment',
          'PodDisruptionBudget',
          'ServiceMonitor',
          'PrometheusRule',
          'NetworkPolicy',
          'ValidatingAdmissionPolicy',
          'ValidatingAdmissionPolicyBinding',
        ]),
      );
  });

  it('renders valid objects for a release and namespace named like YAML booleans ("n", "yes")', async () => {
    // Unquoted, `app.kubernetes.io/instance: n` would be the boolean false and fail to decode.
    const manifests = (
      await helm(
        'template',
        'n',
        CHART,
        '-n',
        'yes',
        '--kube-version',
        serverVersion,
        ...PLACEHOLDER_REPOSITORY,
      )
    ).stdout;
    const r = await run('kubectl', ['create', '--dry-run=client', '-o', 'name', '-f', '-'], {
      input: manifests,
    });
    expect(r.stdout).toContain('deployment.apps/n-authprobe-operator');
  });

  it.each([
    ['replicaCount', ['--set', 'replicaCount=two']],
    ['reaplicaCount', ['--set', 'reaplicaCount=2']], // unknown top-level key (a typo)
    ['leaderElection/enabled', ['--set', 'leaderElection.enabled=yes']],
    ['watchNamespaces/0', ['--set', 'watchNamespaces[0]=Team_A']],
    ['watchNamespaces', ['--set-json', 'watchNamespaces="team-a"']],
    ['operator/logLevel', ['--set', 'operator.logLevel=loud']],
  ])('a wrong value fails helm with a message naming %s', async (name, extra) => {
    const r = await run(
      'helm',
      [
        'template',
        RELEASE,
        CHART,
        '--kube-version',
        serverVersion,
        ...PLACEHOLDER_REPOSITORY,
        ...(extra as string[]),
      ],
      {
        allowFail: true,
      },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(name);
  });
});

describe('helm install, upgrade and uninstall on the real cluster', () => {
  const deploymentName = `${RELEASE}-authprobe-operator`;

  it('installs into a restricted namespace; the operator becomes Available and Ready', async () => {
    // Helm installs crds/ only when the CRD is absent and never updates it: bring an existing one
    // up to date the way the README tells users to.
    const crdExists = (await run('kubectl', ['get', 'crd', CRD_NAME], { allowFail: true })).code === 0;
    if (crdExists)
      await kubectl('apply', '--server-side', '--force-conflicts', '-f', path.join(CHART, 'crds'));
    // leader election forced on with one replica: exercises the Lease permissions for real
    const install = await run(
      'helm',
      [
        'install',
        RELEASE,
        CHART,
        '-n',
        RELEASE_NS,
        ...helmImageArgs(image),
        '--set',
        'leaderElection.enabled=true',
        '--wait',
        '--timeout',
        '4m',
      ],
      { allowFail: true },
    );
    if (install.code !== 0)
      throw new Error(`helm install failed:\n${install.stderr}\n${await operatorLogs(RELEASE_NS, RELEASE)}`);
    await kubectl('get', 'crd', CRD_NAME);
    const deployment = JSON.parse(
      await kubectl('-n', RELEASE_NS, 'get', 'deployment', deploymentName, '-o', 'json'),
    ) as {
      status: { conditions?: { type: string; status: string }[]; readyReplicas?: number };
    };
    expect(deployment.status.conditions?.find((c) => c.type === 'Available')?.status).toBe('True');
    expect(deployment.status.readyReplicas).toBe(1);
    const pods = JSON.parse(
      await kubectl(
        '-n',
        RELEASE_NS,
        'get',
        'pods',
        '-l',
        `app.kubernetes.io/instance=${RELEASE}`,
        '-o',
        'json',
      ),
    ) as {
      items: {
        spec: { containers: { image: string }[] };
        status: { conditions?: { type: string; status: string }[] };
      }[];
    };
    expect(pods.items).toHaveLength(1);
    expect(pods.items[0]?.spec.containers[0]?.image).toBe(image);
    expect(pods.items[0]?.status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  }, 300_000);

  it('reconciles an AuthProbe to Ready with a probe pod admitted under the restricted standard', async () => {
    await run('kubectl', ['apply', '-f', '-'], {
      input: `
apiVersion: v1
kind: ServiceAccount
metadata: {name: web-app, namespace: ${PROBES_NS}}
---
apiVersion: authprobe.io/v1alpha1
kind: AuthProbe
metadata: {name: web-app, namespace: ${PROBES_NS}}
spec:
  serviceAccountName: web-app
  token: {source: Projected}
  interval: 1m
  timeout: 20s
`,
    });
    type Condition = { type: string; status: string; reason: string; message: string };
    let last: Condition | undefined;
    try {
      await waitFor('AuthProbe web-app Ready=True', 150_000, async () => {
        const probe = JSON.parse(
          await kubectl('-n', PROBES_NS, 'get', 'authprobe', 'web-app', '-o', 'json'),
        ) as {
          status?: { conditions?: Condition[] };
        };
        last = probe.status?.conditions?.find((c) => c.type === 'Ready');
        return last?.status === 'True' ? last : undefined;
      });
    } catch (err) {
      const events = await run('kubectl', ['-n', PROBES_NS, 'get', 'events', '--sort-by=.lastTimestamp'], {
        allowFail: true,
      });
      throw new Error(
        `${String(err)}\nlast Ready condition: ${JSON.stringify(last)}\n${events.stdout}\n${await operatorLogs(RELEASE_NS, RELEASE)}`,
        { cause: err },
      );
    }
    expect(last).toMatchObject({ status: 'True', reason: 'Authenticated' });
    // no probe pod was refused by Pod Security admission
    const warnings = await kubectl(
      '-n',
      PROBES_NS,
      'get',
      'events',
      '--field-selector',
      'type=Warning',
      '-o',
      'json',
    );
    expect(warnings).not.toMatch(/violates PodSecurity/);
  }, 200_000);

  it('helm upgrade with a changed value rolls the Deployment', async () => {
    const hashes = async (): Promise<string[]> =>
      (
        await kubectl(
          '-n',
          RELEASE_NS,
          'get',
          'pods',
          '-l',
          `app.kubernetes.io/instance=${RELEASE}`,
          '-o',
          'jsonpath={range .items[*]}{.metadata.labels.pod-template-hash}{"\\n"}{end}',
        )
      )
        .split('\n')
        .filter(Boolean);
    const before = await hashes();
    expect(before).toHaveLength(1);
    const upgrade = await run(
      'helm',
      [
        'upgrade',
        RELEASE,
        CHART,
        '-n',
        RELEASE_NS,
        '--reuse-values',
        '--set',
        'operator.logLevel=debug',
        '--wait',
        '--timeout',
        '4m',
      ],
      { allowFail: true },
    );
    if (upgrade.code !== 0)
      throw new Error(`helm upgrade failed:\n${upgrade.stderr}\n${await operatorLogs(RELEASE_NS, RELEASE)}`);
    await kubectl('-n', RELEASE_NS, 'rollout', 'status', `deployment/${deploymentName}`, '--timeout=180s');
    const after = await waitFor('only the new pod left', 60_000, async () => {
      const h = await hashes();
      return h.length === 1 ? h : undefined;
    });
    expect(after[0]).not.toBe(before[0]);
    const env = await kubectl(
      '-n',
      RELEASE_NS,
      'get',
      'deployment',
      deploymentName,
      '-o',
      'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="AUTHPROBE_LOG_LEVEL")].value}',
    );
    expect(env).toBe('debug');
    const revision = JSON.parse((await helm('status', RELEASE, '-n', RELEASE_NS, '-o', 'json')).stdout) as {
      version: number;
    };
    expect(revision.version).toBe(2);
  }, 300_000);

  it("helm uninstall removes everything but the CRD (and the users' AuthProbes)", async () => {
    await helm('uninstall', RELEASE, '-n', RELEASE_NS, '--wait', '--timeout', '2m');
    // Helm deletes what it created; the Deployment's ReplicaSets and pods follow through the
    // garbage collector, a moment later.
    const left = await waitFor("the release's objects to be gone", 90_000, async () => {
      const names = await kubectl(
        'get',
        'deployment,replicaset,pod,serviceaccount,service,role,rolebinding,poddisruptionbudget,networkpolicy',
        '-n',
        RELEASE_NS,
        '-l',
        `app.kubernetes.io/instance=${RELEASE}`,
        '-o',
        'name',
      );
      return names.trim() === '' ? names.trim() : undefined;
    });
    expect(left).toBe('');
    const clusterLeft = (
      await kubectl(
        'get',
        'clusterrole,clusterrolebinding,validatingadmissionpolicy,validatingadmissionpolicybinding',
        '-o',
        'name',
      )
    )
      .split('\n')
      .filter((n) => n.includes(`${RELEASE_NS}-${RELEASE}-authprobe-operator`));
    expect(clusterLeft).toEqual([]);
    // the CRD stays, and with it every AuthProbe
    await kubectl('get', 'crd', CRD_NAME);
    await kubectl('-n', PROBES_NS, 'get', 'authprobe', 'web-app');
  }, 180_000);
});
