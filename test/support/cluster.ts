/**
 * Helpers for tests against the real cluster named by KUBECONFIG: kubectl, polling, throwaway
 * namespaces and operator processes started from the built CLI (dist/). Nothing here prints a token.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO = path.resolve(import.meta.dirname, '../..');
export const CLUSTER_DIR = process.env.AUTHPROBE_CLUSTER_DIR ?? '/var/lib/authprobe-cluster';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run('kubectl', args, { maxBuffer: 32 * 1024 * 1024 });
  return stdout;
}

export async function kubectlJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await kubectl(...args, '-o', 'json')) as T;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program once (no shell), with `input` on its stdin. */
function runCommandOnce(cmd: string, args: string[], input: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO, env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/**
 * Runs a program such as kubectl or helm (no shell), once; rejects on a non-zero exit unless
 * `allowFail`. Never retried: an apiserver that an earlier suite left unhealthy must fail the test
 * that meets it, not be waited out (every script that restarts the apiserver waits until it is ready).
 */
export async function runCommand(
  cmd: string,
  args: string[],
  opts: { input?: string; allowFail?: boolean } = {},
): Promise<CommandResult> {
  const result = await runCommandOnce(cmd, args, opts.input ?? '');
  if (result.code !== 0 && !opts.allowFail)
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${result.code}\n${result.stderr}\n${result.stdout.slice(-2000)}`,
    );
  return result;
}

/** The Helm chart. */
export const CHART = path.join(REPO, 'charts/authprobe-operator');

/**
 * The chart's admission policy (its binding narrowed to namespace `scope`) and aggregated ClusterRoles,
 * rendered for release `release` in `namespace` and nothing else of the chart: what tenancy tests apply.
 */
export async function renderTenancyObjects(
  release: string,
  namespace: string,
  scope: string,
): Promise<string> {
  const rendered = await runCommand('helm', [
    'template',
    release,
    CHART,
    '-n',
    namespace,
    '--kube-version',
    await serverVersion(),
    '--set',
    'image.repository=registry.example.com/authprobe-operator', // rendered, never run
    '--set-json',
    `admission.namespaceSelector={"matchLabels":{"kubernetes.io/metadata.name":"${scope}"}}`,
    '--show-only',
    'templates/admission.yaml',
    '--show-only',
    'templates/aggregate-roles.yaml',
  ]);
  return rendered.stdout;
}

/** `helm --set` arguments that make the chart run `image` (a repository:tag reference). */
export function helmImageArgs(image: string): string[] {
  const at = image.lastIndexOf(':');
  return ['--set', `image.repository=${image.slice(0, at)}`, '--set', `image.tag=${image.slice(at + 1)}`];
}

/** The apiserver's version (e.g. v1.36.3), for `helm template --kube-version`. */
export async function serverVersion(): Promise<string> {
  const version = JSON.parse(await kubectl('version', '-o', 'json')) as {
    serverVersion: { gitVersion: string };
  };
  return version.serverVersion.gitVersion;
}

/** Applies a manifest given as an object or YAML text. */
export async function apply(manifest: unknown): Promise<void> {
  const text = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('kubectl', ['apply', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`kubectl apply failed: ${stderr}`)),
    );
    child.stdin.end(text);
  });
}

/** Polls `fn` every `everyMs` until it returns a value other than undefined. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined>,
  everyMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(everyMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`,
  );
}

export async function createNamespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await apply({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'authprobe.io/test': 'true', ...labels } },
  });
  return name;
}

/** Best effort: a clean-up failure must not hide the test's own result. */
export async function deleteNamespace(name: string): Promise<void> {
  await kubectl('delete', 'namespace', name, '--wait=false', '--ignore-not-found').catch((err: Error) =>
    process.stderr.write(`could not delete namespace ${name}: ${err.message}\n`),
  );
}

/** Makes sure the CRD in crds/ is installed and established. */
export async function installCrd(): Promise<void> {
  await kubectl(
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    path.join(REPO, 'crds/authprobe.io_authprobes.yaml'),
  );
  await kubectl('wait', '--for=condition=Established', '--timeout=60s', 'crd/authprobes.authprobe.io');
}

/** True when KUBECONFIG is this machine's own test cluster, whose components tests may restart. */
export function isOwnCluster(): boolean {
  const current = (process.env.KUBECONFIG ?? '').split(':')[0] ?? '';
  return (
    current !== '' &&
    path.resolve(current) === path.join(CLUSTER_DIR, 'kubeconfig') &&
    existsSync(path.join(CLUSTER_DIR, 'pids', 'kube-apiserver.pid'))
  );
}

/** Runs one of the cluster scripts (test/cluster/NAME.sh); rejects with its output on failure. */
export async function clusterScript(name: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('bash', [path.join(REPO, 'test/cluster', `${name}.sh`), ...args], {
    maxBuffer: 16 * 1024 * 1024,
    timeout: 10 * 60_000,
  });
  return stdout;
}

export interface OperatorProcess {
  child: ChildProcess;
  identity: string;
  port: number;
  logFile: string;
  logs(): string;
  metric(name: string): Promise<number | undefined>;
  get(path: string): Promise<{ status: number; body: string }>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Whether the operator process is stopped (SIGSTOP, e.g. at a `name=stop` failpoint), from /proc. */
export function processStopped(op: OperatorProcess): boolean {
  return readFileSync(`/proc/${op.child.pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] === 'T';
}

let nextPort = 18_100 + Math.floor(Math.random() * 500);

/**
 * Starts `node dist/cli/main.js operator` against KUBECONFIG, as a separate process (so it can be
 * SIGKILLed like a real crash). Its logs go to a file that the test prints when it fails.
 */
export function startOperator(
  env: Record<string, string>,
  identity = `op-${randomBytes(3).toString('hex')}`,
): OperatorProcess {
  const port = nextPort++;
  const logFile = `/tmp/authprobe-${identity}.log`;
  const out = createWriteStream(logFile);
  const child = spawn(process.execPath, [path.join(REPO, 'dist/cli/main.js'), 'operator'], {
    env: {
      ...process.env,
      AUTHPROBE_IMAGE: 'docker.io/authprobe/authprobe-operator:unset',
      AUTHPROBE_IDENTITY: identity,
      AUTHPROBE_HTTP_PORT: String(port),
      AUTHPROBE_HTTP_HOST: '127.0.0.1',
      AUTHPROBE_LOG_LEVEL: 'debug',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const get = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`);
    return { status: res.status, body: await res.text() };
  };
  return {
    child,
    identity,
    port,
    logFile,
    logs: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    get,
    async metric(name) {
      const { body } = await get('/metrics');
      const line = body.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return line ? Number(line.split(' ').pop()) : undefined;
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * The operator image, built from dist/ and imported into the cluster's containerd by
 * test/cluster/image.sh (content-addressed, so a rebuild of the same dist/ is cheap). Built per
 * test file, because `cluster:down` (the lifecycle test) clears containerd's images.
 */
export async function ensureImage(): Promise<string> {
  const out = await clusterScript('image');
  const ref = out.trim().split('\n').pop() ?? '';
  if (!/^docker\.io\/authprobe\/authprobe-operator:/.test(ref))
    throw new Error(`cluster:image printed no image reference: ${out.slice(-500)}`);
  return ref;
}

export interface ReadyCondition {
  status: string;
  reason: string;
  message: string;
}

export async function readyOf(ns: string, name: string): Promise<ReadyCondition | undefined> {
  const probe = await kubectlJson<{ status?: { conditions?: Array<ReadyCondition & { type: string }> } }>(
    'get',
    'authprobe',
    name,
    '-n',
    ns,
  );
  return probe.status?.conditions?.find((c) => c.type === 'Ready');
}

/** Waits until the AuthProbe's Ready condition has `reason` (and returns it). */
export function waitForReason(
  ns: string,
  name: string,
  reason: string | RegExp,
  timeoutMs: number,
): Promise<ReadyCondition> {
  return waitFor(`AuthProbe ${ns}/${name} to report ${String(reason)}`, timeoutMs, async () => {
    const ready = await readyOf(ns, name);
    if (!ready) return undefined;
    return (typeof reason === 'string' ? ready.reason === reason : reason.test(ready.reason))
      ? ready
      : undefined;
  });
}

export interface EventJson {
  eventTime?: string;
  reason: string;
  type: string;
  message: string;
  count?: number;
  firstTimestamp?: string;
  metadata: { name: string; creationTimestamp: string };
  involvedObject: { kind: string; name: string };
}

/** Events about one object, oldest first (by creation; names break ties within a second). */
export async function eventsFor(ns: string, kind: string, name: string): Promise<EventJson[]> {
  const list = await kubectlJson<{ items: EventJson[] }>(
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    `involvedObject.kind=${kind},involvedObject.name=${name}`,
  );
  return list.items.sort((a, b) =>
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''),
  );
}

/** A legacy token Secret for a ServiceAccount, filled by the tokens controller before it returns. */
export async function createLegacyTokenSecret(
  ns: string,
  serviceAccount: string,
  name: string,
): Promise<{ uid: string }> {
  await apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, annotations: { 'kubernetes.io/service-account.name': serviceAccount } },
    type: 'kubernetes.io/service-account-token',
  });
  return waitFor(`secret ${ns}/${name} to be filled`, 30_000, async () => {
    const secret = await kubectlJson<{ metadata: { uid: string }; data?: { token?: string } }>(
      'get',
      'secret',
      name,
      '-n',
      ns,
    );
    return secret.data?.token ? { uid: secret.metadata.uid } : undefined;
  });
}

/**
 * Waits until the AuthProbe has healed at least once and is Ready=True again (its reason is
 * Healed until the next regular probe, then Authenticated).
 */
export async function waitForHeal(
  ns: string,
  name: string,
  timeoutMs: number,
): Promise<{ count: number; lastAction?: string }> {
  return waitFor(`AuthProbe ${ns}/${name} to be healed and Ready`, timeoutMs, async () => {
    const probe = await kubectlJson<{
      status?: {
        heals?: { count?: number; lastAction?: string };
        conditions?: Array<{ type: string; status: string }>;
      };
    }>('get', 'authprobe', name, '-n', ns);
    const ready = probe.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    const count = probe.status?.heals?.count ?? 0;
    return ready && count >= 1 ? { count, lastAction: probe.status?.heals?.lastAction } : undefined;
  });
}

/**
 * The secret's uid, or undefined when it does not exist. Any other failure (the apiserver away, a
 * timeout) throws: an unreadable secret must never look like a deleted one, or like an unchanged one.
 */
export async function secretUid(ns: string, name: string): Promise<string | undefined> {
  const out = await kubectl(
    'get',
    'secret',
    name,
    '-n',
    ns,
    '--ignore-not-found',
    '-o',
    'jsonpath={.metadata.uid}',
  );
  return out.trim() || undefined;
}

/**
 * Tests that run the operator as a host process need to be the only operator acting on their
 * namespaces: a cluster-wide one installed by the demo would race them. Fails with what to do.
 */
export async function assertNoClusterWideOperator(): Promise<void> {
  const list = await kubectlJson<{ items: Array<{ metadata: { name: string; namespace: string } }> }>(
    'get',
    'deployments',
    '-A',
    '-l',
    'app.kubernetes.io/name=authprobe-operator',
  );
  const found = list.items.map((d) => `${d.metadata.namespace}/${d.metadata.name}`);
  if (found.length) {
    throw new Error(
      `an authprobe operator is installed in the cluster (${found.join(', ')}) and would act on this test's AuthProbes too; remove it first (helm uninstall)`,
    );
  }
}
