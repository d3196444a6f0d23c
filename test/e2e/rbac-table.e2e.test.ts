/**
 * The chart README's permission tables against the real authorizer. The chart is installed twice
 * with the test image: in cluster mode (leader election on) and in watchNamespaces mode (one watched
 * namespace, rbac.restartWorkloads off). For each, `kubectl auth can-i --list` as the operator's
 * service account, in a watched namespace, an unwatched one and the release namespace, minus what
 * every service account may do, must equal the rows of the README's "What the operator may do" table
 * that apply there. Users bound to the built-in edit and view roles must get exactly the AuthProbe
 * rights of its "aggregated roles" table.
 *
 * Both releases run no operator pod (replicaCount 0: only their RBAC matters here, and a running
 * cluster-wide operator would act on other tests' AuthProbes), skip the CRD (the authorizer does not
 * need it) and leave the admission policy out (it is cluster-wide; tenancy-admission.e2e.test.ts
 * tests it, bound to its own namespace).
 *
 * Needs KUBECONFIG, kubectl and helm on PATH (eval "$(npm run -s cluster:env)"), and the project's
 * test cluster for the image (test/cluster/image.sh, which runs `npm run build` first).
 *
 * Run it alone with `NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects cluster
 * --runTestsByPath test/e2e/rbac-table.e2e.test.ts`. Without --runTestsByPath (or another flag
 * between them), --selectProjects takes the path for a second project name and runs every cluster test.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CHART,
  createNamespace,
  deleteNamespace,
  ensureImage,
  helmImageArgs,
  runCommand,
  waitFor,
} from '../support/cluster.js';

const id = randomBytes(3).toString('hex');
const CLUSTER_RELEASE = 'aprbac';
const WATCH_RELEASE = 'aprbacw';
const CLUSTER_SA = `${CLUSTER_RELEASE}-authprobe-operator`; // the chart's full name
const WATCH_SA = `${WATCH_RELEASE}-authprobe-operator`;
const EDITOR = `ap-rbac-editor-${id}`;
const VIEWER = `ap-rbac-viewer-${id}`;

let clusterNs = ''; // the cluster-mode release
let watchNs = ''; // the watchNamespaces-mode release
let probesNs = ''; // watched by both
let otherNs = ''; // watched by the cluster-mode release only

const kubectl = (...args: string[]) => runCommand('kubectl', args).then((r) => r.stdout);

// ---- the README's tables ------------------------------------------------------------------------

/** `group|resource|names` -> verbs; names are comma-separated resourceNames, or `*` for any. */
type Permissions = Map<string, Set<string>>;

function add(into: Permissions, key: string, verbs: Iterable<string>): void {
  const set = into.get(key) ?? new Set<string>();
  for (const verb of verbs) set.add(verb);
  into.set(key, set);
}

function asSortedObject(p: Permissions): Record<string, string[]> {
  return Object.fromEntries(
    [...p.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, [...v].sort()]),
  );
}

const list = (cell: string): string[] =>
  cell
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** The rows of the README table between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, cells unquoted. */
function tableRows(name: string): string[][] {
  const readme = readFileSync(path.join(CHART, 'README.md'), 'utf8');
  const table = new RegExp(`<!-- ${name}:begin -->([\\s\\S]*?)<!-- ${name}:end -->`).exec(readme)?.[1];
  if (!table) throw new Error(`charts/authprobe-operator/README.md has no <!-- ${name}:begin/end --> table`);
  const [, , ...rows] = table.split('\n').filter((l) => l.startsWith('|')); // header, separator
  return rows.map((l) =>
    l
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim().replace(/`/g, '')),
  );
}

interface Situation {
  watched: boolean;
  releaseNamespace: boolean;
  leaderElection: boolean;
  restartWorkloads: boolean;
  canary: string;
}

/** What the README's operator table promises in one namespace. */
function documentedPermissions(s: Situation): Permissions {
  const rows = tableRows('permissions');
  expect(rows.length).toBeGreaterThan(10);
  const result: Permissions = new Map();
  for (const row of rows) {
    expect(row).toHaveLength(6); // the fixed format: group, resource, verbs, names, scope, when
    const [group = '', resource = '', verbs = '', names = '', scope = '', when = ''] = row;
    const inScope = { cluster: true, watched: s.watched, release: s.releaseNamespace }[scope];
    const condition = {
      always: true,
      'rbac.restartWorkloads': s.restartWorkloads,
      'leader election': s.leaderElection,
    }[when];
    if (inScope === undefined || condition === undefined)
      throw new Error(`README permissions row with an unknown scope or condition: ${row.join(' | ')}`);
    if (!inScope || !condition) continue;
    const resourceNames = names === 'any' ? '*' : list(names.replace('<canary>', s.canary)).sort().join(',');
    add(result, `${group === 'core' ? '' : group}|${resource}|${resourceNames}`, list(verbs));
  }
  return result;
}

/** What the README's aggregated-roles table promises to a user bound to one built-in role. */
function documentedForRole(role: string): Permissions {
  const result: Permissions = new Map();
  for (const [roles = '', resource = '', verbs = ''] of tableRows('aggregated-roles'))
    if (list(roles).includes(role)) add(result, `authprobe.io|${resource}|*`, list(verbs));
  return result;
}

// ---- what the authorizer says -------------------------------------------------------------------

/** Parses `kubectl auth can-i --list` (fixed-width columns) into resource permissions. */
function parseCanIList(text: string): Permissions {
  const [header = '', ...lines] = text.split('\n');
  const urlsAt = header.indexOf('Non-Resource URLs');
  const namesAt = header.indexOf('Resource Names');
  const verbsAt = header.indexOf('Verbs');
  if (urlsAt < 0 || namesAt < 0 || verbsAt < 0) throw new Error(`unexpected can-i header: ${header}`);
  const bracketed = (cell: string) =>
    cell
      .trim()
      .replace(/^\[|\]$/g, '')
      .split(/\s+/)
      .filter(Boolean);
  const result: Permissions = new Map();
  for (const line of lines) {
    const resource = line.slice(0, urlsAt).trim();
    if (!resource) continue; // non-resource URLs
    // kubectl prints resource[/subresource].group or resource.group[/subresource]
    const m = /^([^./]+)(?:\/([^.]+))?(?:\.([^/]+))?(?:\/(.+))?$/.exec(resource);
    if (!m) throw new Error(`cannot parse can-i resource "${resource}"`);
    const [, name, sub1, group = '', sub2] = m;
    const sub = sub1 ?? sub2;
    const names = bracketed(line.slice(namesAt, verbsAt)).sort().join(',') || '*';
    add(result, `${group}|${name}${sub ? `/${sub}` : ''}|${names}`, bracketed(line.slice(verbsAt)));
  }
  return result;
}

function without(granted: Permissions, baseline: Permissions): Permissions {
  for (const [key, verbs] of baseline) {
    const mine = granted.get(key);
    if (!mine) continue;
    for (const verb of verbs) mine.delete(verb);
    if (mine.size === 0) granted.delete(key);
  }
  return granted;
}

/** A user's permissions in a namespace (`kubectl auth can-i --list --as`). */
async function canIList(user: string, namespace: string, groups: string[] = []): Promise<Permissions> {
  const asGroups = groups.flatMap((g) => ['--as-group', g]);
  return parseCanIList(await kubectl('auth', 'can-i', '--list', '--as', user, ...asGroups, '-n', namespace));
}

/** The service account's permissions in a namespace minus what every service account has. */
async function grantedPermissions(sa: string, saNamespace: string, namespace: string): Promise<Permissions> {
  return without(
    await canIList(`system:serviceaccount:${saNamespace}:${sa}`, namespace),
    await canIList(`system:serviceaccount:${saNamespace}:nobody-${id}`, namespace),
  );
}

async function canI(
  verb: string,
  resource: string,
  namespace: string,
  user: string,
  ...extra: string[]
): Promise<string> {
  const args = ['auth', 'can-i', verb, resource, '-n', namespace, '--as', user, ...extra];
  const r = await runCommand('kubectl', args, { allowFail: true });
  return r.stdout.trim();
}

// ---- the installs -------------------------------------------------------------------------------

async function install(release: string, namespace: string, image: string, values: string[]): Promise<void> {
  await runCommand('helm', [
    'install',
    release,
    CHART,
    '-n',
    namespace,
    '--skip-crds',
    ...helmImageArgs(image),
    '--set',
    'replicaCount=0',
    '--set',
    'admission.enabled=false',
    ...values,
    '--wait',
    '--timeout',
    '2m',
  ]);
}

beforeAll(async () => {
  clusterNs = await createNamespace('ap-rbac');
  watchNs = await createNamespace('ap-rbac-watch');
  probesNs = await createNamespace('ap-rbac-probes');
  otherNs = await createNamespace('ap-rbac-other');
  const image = await ensureImage();
  await install(CLUSTER_RELEASE, clusterNs, image, ['--set', 'leaderElection.enabled=true']);
  await install(WATCH_RELEASE, watchNs, image, [
    '--set',
    `watchNamespaces={${probesNs}}`,
    '--set',
    'rbac.restartWorkloads=false',
  ]);
}, 600_000);

afterAll(async () => {
  for (const [release, namespace] of [
    [CLUSTER_RELEASE, clusterNs],
    [WATCH_RELEASE, watchNs],
  ] as const) {
    if (namespace)
      await runCommand('helm', ['uninstall', release, '-n', namespace, '--wait', '--timeout', '2m'], {
        allowFail: true,
      });
  }
  for (const ns of [clusterNs, watchNs, probesNs, otherNs]) if (ns) await deleteNamespace(ns);
}, 300_000);

describe("the operator's permissions are the README's table", () => {
  it('cluster mode, leader election on: in a namespace with AuthProbes and in the release namespace', async () => {
    const base = { watched: true, leaderElection: true, restartWorkloads: true };
    for (const [namespace, releaseNamespace] of [
      [probesNs, false],
      [otherNs, false],
      [clusterNs, true],
    ] as const) {
      const granted = await grantedPermissions(CLUSTER_SA, clusterNs, namespace);
      const documented = documentedPermissions({ ...base, releaseNamespace, canary: `${CLUSTER_SA}-canary` });
      expect({ namespace, permissions: asSortedObject(granted) }).toEqual({
        namespace,
        permissions: asSortedObject(documented),
      });
    }
  }, 120_000);

  it('watchNamespaces mode, restartWorkloads off: only the watched namespace, and no Secrets elsewhere', async () => {
    const base = { leaderElection: false, restartWorkloads: false, canary: `${WATCH_SA}-canary` };
    for (const c of [
      { namespace: probesNs, watched: true, releaseNamespace: false },
      { namespace: otherNs, watched: false, releaseNamespace: false },
      { namespace: watchNs, watched: false, releaseNamespace: true },
    ]) {
      const granted = await grantedPermissions(WATCH_SA, watchNs, c.namespace);
      expect({ namespace: c.namespace, permissions: asSortedObject(granted) }).toEqual({
        namespace: c.namespace,
        permissions: asSortedObject(documentedPermissions({ ...base, ...c })),
      });
    }
    const sa = `system:serviceaccount:${watchNs}:${WATCH_SA}`;
    expect(await canI('get', 'secrets', otherNs, sa)).toBe('no');
    expect(await canI('get', 'secrets', 'default', sa)).toBe('no');
    expect(await canI('get', 'secrets', probesNs, sa)).toBe('yes');
    expect(await canI('list', 'secrets', probesNs, sa)).toBe('no');
    expect(await canI('get', 'configmaps/authprobe-heal-ledger', watchNs, sa)).toBe('yes');
    expect(await canI('get', 'configmaps/kube-root-ca.crt', watchNs, sa)).toBe('no');
    expect(await canI('create', 'tokenreviews.authentication.k8s.io', otherNs, sa)).toBe('yes');
  }, 120_000);
});

describe("the aggregated roles are the README's table", () => {
  it.each([
    ['edit', EDITOR],
    ['view', VIEWER],
  ])(
    'a user bound to the built-in %s role in a namespace',
    async (role, user) => {
      await kubectl(
        'create',
        'rolebinding',
        `${user}`,
        '-n',
        probesNs,
        `--clusterrole=${role}`,
        `--user=${user}`,
      );
      const documented = asSortedObject(documentedForRole(role));
      expect(Object.keys(documented).length).toBeGreaterThan(0);
      // kube-controller-manager's aggregation controller folds the chart's roles in a moment later
      const granted = await waitFor(`${role} to include the chart's AuthProbe rules`, 30_000, async () => {
        const all = await canIList(user, probesNs, ['system:authenticated']);
        const mine = asSortedObject(new Map([...all].filter(([key]) => key.startsWith('authprobe.io|'))));
        return JSON.stringify(mine) === JSON.stringify(documented) ? mine : undefined;
      }).catch(async (err: Error) => {
        const all = await canIList(user, probesNs, ['system:authenticated']);
        return { error: err.message, granted: asSortedObject(all) };
      });
      expect(granted).toEqual(documented);
      for (const verb of ['patch', 'update'])
        expect(await canI(verb, 'authprobes.authprobe.io', probesNs, user, '--subresource=status')).toBe(
          'no',
        );
    },
    60_000,
  );
});
