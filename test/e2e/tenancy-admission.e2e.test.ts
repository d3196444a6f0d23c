/**
 * Tenancy at admission (issue 11): an AuthProbe makes the operator do only what its author may do.
 * The chart's ValidatingAdmissionPolicy and aggregated ClusterRoles (rendered with `helm template
 * --show-only`, nothing else of the chart) are applied with the binding narrowed to one fresh
 * namespace, so that other tests on the same cluster are not affected; users are impersonated
 * (`kubectl --as <user> --as-group system:authenticated`) with Roles granting exactly what each case
 * needs:
 * - a user bound to the built-in edit role may create AuthProbes that use every feature;
 * - without pods/create, a check-Pod AuthProbe is refused, naming pods and create;
 * - with secrets/get but not delete or create, a Secret-sourced heal-Auto AuthProbe is refused,
 *   naming secrets and delete, and accepted with heal.policy DryRun and check TokenReview;
 * - restartWorkloads without apps patch is refused, naming deployments;
 * - metadata-only updates (labels, finalizers) pass without those rights, spec changes do not;
 * - the operator's own service account is not checked.
 * Everything the test creates (the policy, its binding, the two ClusterRoles, the namespace, and the
 * CRD if it was missing) is deleted afterwards.
 *
 * Needs KUBECONFIG, kubectl and helm on PATH (eval "$(npm run -s cluster:env)"); any cluster >= 1.30.
 *
 * Run it alone with `NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects cluster
 * --runTestsByPath test/e2e/tenancy-admission.e2e.test.ts`. Without --runTestsByPath (or another flag
 * between them), --selectProjects takes the path for a second project name and runs every cluster test.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import {
  renderTenancyObjects,
  apply,
  createNamespace,
  deleteNamespace,
  installCrd,
  runCommand,
  waitFor,
} from '../support/cluster.js';

const id = randomBytes(3).toString('hex');
const RELEASE = 'ap-tenancy';
const OPERATOR_SA = `${RELEASE}-authprobe-operator`; // the chart's full name for this release
const user = (name: string) => `ap-tenancy-${name}-${id}`;

let ns = '';
let policyName = '';
let manifests = '';
let crdCreated = false;

const kubectl = (...args: string[]) => runCommand('kubectl', args).then((r) => r.stdout);

interface Spec {
  check?: 'Pod' | 'TokenReview';
  token?: {
    source: 'Projected' | 'Secret';
    secretName?: string;
    audience?: string;
    expirationSeconds?: number;
  };
  heal?: { policy?: string; restartWorkloads?: boolean; invalidatedLegacyToken?: string };
  interval?: string;
}

function authProbe(name: string, spec: Spec): string {
  return JSON.stringify({
    apiVersion: 'authprobe.io/v1alpha1',
    kind: 'AuthProbe',
    metadata: { name, namespace: ns },
    spec: { serviceAccountName: 'app', ...spec },
  });
}

/** `kubectl <args>` as an impersonated user; never throws, so refusals can be inspected. */
function as(who: string, args: string[], input?: string) {
  return runCommand('kubectl', [...args, '--as', who, '--as-group', 'system:authenticated'], {
    allowFail: true,
    ...(input === undefined ? {} : { input }),
  });
}

const create = (who: string, name: string, spec: Spec) =>
  as(who, ['create', '-f', '-'], authProbe(name, spec));

/** A Role with these rules in the test namespace, bound to `who` (a user or a service account). */
async function grant(
  who: string,
  rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[],
): Promise<void> {
  const name = who.replace(/[^a-z0-9-]/g, '-').slice(-63);
  const sa = /^system:serviceaccount:([^:]+):(.+)$/.exec(who);
  await apply({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace: ns }, rules },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [
          sa
            ? { kind: 'ServiceAccount', name: sa[2], namespace: sa[1] }
            : { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: who },
        ],
      },
    ],
  });
}

const AUTHPROBES_CREATE_GET = {
  apiGroups: ['authprobe.io'],
  resources: ['authprobes'],
  verbs: ['create', 'get'],
};
const SECRET_GET = { apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: ['app-token'] };

/** The policy's refusal: from this policy, and naming what is missing. */
function expectRefused(r: { code: number; stderr: string }, ...words: string[]): void {
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(`ValidatingAdmissionPolicy '${policyName}'`);
  expect(r.stderr).toContain(`in namespace ${ns}`);
  for (const word of words) expect(r.stderr).toContain(word);
}

function expectAccepted(r: { code: number; stdout: string; stderr: string }, name: string): void {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.stdout).toContain(`authprobe.authprobe.io/${name} created`);
}

beforeAll(async () => {
  const crdExists =
    (await runCommand('kubectl', ['get', 'crd', 'authprobes.authprobe.io'], { allowFail: true })).code === 0;
  if (!crdExists) {
    await installCrd();
    crdCreated = true;
  }
  ns = await createNamespace('ap-tenancy');
  policyName = `${ns}-${OPERATOR_SA}`;
  manifests = await renderTenancyObjects(RELEASE, ns, ns);
  expect([...manifests.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1])).toEqual([
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
    'ClusterRole',
    'ClusterRole',
  ]);
  await runCommand('kubectl', ['apply', '-f', '-'], { input: manifests });
  // The apiserver loads new policies and kube-controller-manager aggregates new roles a moment later.
  const sentinel = user('sentinel');
  await grant(sentinel, [AUTHPROBES_CREATE_GET]);
  await waitFor('the admission policy to be in force', 30_000, async () => {
    const r = await as(sentinel, ['create', '--dry-run=server', '-f', '-'], authProbe('sentinel', {}));
    return r.stderr.includes(`ValidatingAdmissionPolicy '${policyName}'`) ? true : undefined;
  });
}, 120_000);

afterAll(async () => {
  if (manifests)
    await runCommand('kubectl', ['delete', '--ignore-not-found', '--wait=false', '-f', '-'], {
      input: manifests,
      allowFail: true,
    });
  if (ns) await deleteNamespace(ns);
  if (crdCreated) {
    // Only when nothing but this test's own AuthProbes uses it.
    const others = await runCommand(
      'kubectl',
      ['get', 'authprobes', '-A', '-o', 'jsonpath={range .items[*]}{.metadata.namespace}{"\\n"}{end}'],
      { allowFail: true },
    );
    const foreign = others.stdout.split('\n').filter((n) => n && n !== ns);
    if (others.code === 0 && foreign.length === 0)
      await runCommand('kubectl', ['delete', 'crd', 'authprobes.authprobe.io', '--wait=false'], {
        allowFail: true,
      });
  }
}, 120_000);

describe('the admission policy checks the author of an AuthProbe', () => {
  it('lets a user bound to the built-in edit role create AuthProbes that use every feature', async () => {
    const editor = user('editor');
    await kubectl('create', 'rolebinding', editor, '-n', ns, '--clusterrole=edit', `--user=${editor}`);
    // edit includes the chart's aggregated AuthProbe rules once kube-controller-manager folded them in
    await waitFor('the edit role to include authprobes', 30_000, async () => {
      const r = await as(editor, ['auth', 'can-i', 'create', 'authprobes.authprobe.io', '-n', ns]);
      return r.stdout.trim() === 'yes' ? true : undefined;
    });
    expectAccepted(
      await create(editor, 'secret-pod-auto', {
        check: 'Pod',
        token: { source: 'Secret', secretName: 'app-token' },
        heal: { policy: 'Auto', invalidatedLegacyToken: 'Revalidate', restartWorkloads: true },
      }),
      'secret-pod-auto',
    );
    expectAccepted(
      await create(editor, 'projected-audience', {
        token: { source: 'Projected', audience: 'vault', expirationSeconds: 3600 },
        heal: { restartWorkloads: true },
      }),
      'projected-audience',
    );
    // written as sent, with the CRD's defaults: the policy read them the same way
    const spec = JSON.parse(await kubectl('get', 'authprobe', 'projected-audience', '-n', ns, '-o', 'json'))
      .spec as Spec;
    expect(spec).toMatchObject({ check: 'Pod', heal: { policy: 'Auto', restartWorkloads: true } });
  }, 90_000);

  it('refuses a check-Pod AuthProbe to a user who may not create pods, naming pods and create', async () => {
    const author = user('no-pods');
    await grant(author, [AUTHPROBES_CREATE_GET]);
    const r = await create(author, 'no-pods', {}); // check Pod and source Projected by default
    expectRefused(r, 'may not create pods', 'grant pods/create or use check: TokenReview');
    const left = await runCommand('kubectl', ['get', 'authprobe', 'no-pods', '-n', ns], { allowFail: true });
    expect(left.stderr).toMatch(/NotFound/);
  }, 60_000);

  it('refuses healing a secret the user may read but not delete or create; accepts DryRun with check TokenReview', async () => {
    const author = user('secret-reader');
    await grant(author, [AUTHPROBES_CREATE_GET, SECRET_GET]);
    const token = { source: 'Secret' as const, secretName: 'app-token' };
    expectRefused(
      await create(author, 'heal-auto', { check: 'TokenReview', token, heal: { policy: 'Auto' } }),
      'may not delete secrets (app-token)',
      'heal.policy: DryRun or Disabled',
    );
    // the heal policy defaults to Auto: left out, it is refused the same way
    expectRefused(await create(author, 'heal-default', { check: 'TokenReview', token }), 'delete secrets');
    // another secret than the one it may read
    expectRefused(
      await create(author, 'other-secret', {
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'other-token' },
        heal: { policy: 'DryRun' },
      }),
      'may not get secrets (other-token)',
    );
    expectAccepted(
      await create(author, 'dry-run', { check: 'TokenReview', token, heal: { policy: 'DryRun' } }),
      'dry-run',
    );
  }, 60_000);

  it('refuses restartWorkloads to a user who may not patch deployments', async () => {
    const author = user('no-apps');
    await grant(author, [AUTHPROBES_CREATE_GET, SECRET_GET]);
    expectRefused(
      await create(author, 'restart', {
        check: 'TokenReview',
        token: { source: 'Secret', secretName: 'app-token' },
        heal: { policy: 'DryRun', restartWorkloads: true },
      }),
      'may not patch deployments (apps)',
      'set restartWorkloads: false',
    );
  }, 60_000);

  it('lets metadata-only updates through without those rights, and checks spec changes', async () => {
    const editor = user('metadata');
    await grant(editor, [
      { apiGroups: ['authprobe.io'], resources: ['authprobes'], verbs: ['get', 'update', 'patch'] },
    ]);
    await runCommand('kubectl', ['create', '-f', '-'], { input: authProbe('admins', {}) }); // by the admin
    const patch = (body: unknown) =>
      as(editor, ['patch', 'authprobe', 'admins', '-n', ns, '--type=merge', '-p', JSON.stringify(body)]);
    expect((await as(editor, ['label', 'authprobe', 'admins', '-n', ns, 'team=a'])).code).toBe(0);
    expect((await patch({ metadata: { finalizers: ['example.com/hold'] } })).code).toBe(0);
    expect((await patch({ metadata: { finalizers: null } })).code).toBe(0);
    expectRefused(await patch({ spec: { interval: '10m' } }), 'may not create pods');
  }, 60_000);

  it("does not check the operator's own service account", async () => {
    const operator = `system:serviceaccount:${ns}:${OPERATOR_SA}`;
    await grant(operator, [AUTHPROBES_CREATE_GET]); // no pods: a user would be refused
    const r = await runCommand('kubectl', ['create', '--dry-run=server', '-f', '-', '--as', operator], {
      input: authProbe('by-operator', {}),
      allowFail: true,
    });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  }, 60_000);
});
