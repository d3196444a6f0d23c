/**
 * Faults (issue #14): the operator runs as real processes against the real cluster, and each test
 * injects one fault that makes controllers do wrong things, then checks from the outside that
 * nothing wrong was done:
 * - the leader frozen (SIGSTOP) in the middle of a heal for longer than its lease: a standby takes
 *   over and finishes; the old leader, resumed (SIGCONT), sends no write; one delete, one create,
 *   one heal counted;
 * - every apiserver answer held back 2 s (a proxy on loopback): the right verdicts, no wrong delete;
 * - one replica's wall clock 30 s ahead, then 30 s behind (libfaketime): never two leaders;
 * - etcd restarted, and kube-controller-manager stopped, during a heal: the heal finishes, and no
 *   secret is left deleted.
 * Each operator talks to the apiserver through its own recording proxy, so "what it sent" is read
 * from the wire, not from its own logs.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { startApiProxy, type ApiProxy, type ProxiedRequest } from '../support/api-proxy.js';
import {
  apply,
  assertNoClusterWideOperator,
  clusterScript,
  createLegacyTokenSecret,
  createNamespace,
  deleteNamespace,
  eventsFor,
  installCrd,
  isOwnCluster,
  kubectl,
  kubectlJson,
  processStopped,
  sleep,
  startOperator,
  waitFor,
  waitForReason,
  type OperatorProcess,
} from '../support/cluster.js';

const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';
const operators: OperatorProcess[] = [];
const proxies: ApiProxy[] = [];
const namespaces: string[] = [];
let ns: string; // where the AuthProbes and their secrets live

interface Replica {
  op: OperatorProcess;
  proxy: ApiProxy;
}

/** A measured figure, printed for the README's reliability section. */
function figure(what: string, value: number | string, unit = 's'): void {
  process.stderr.write(`[faults] ${what}: ${value}${unit ? ` ${unit}` : ''}\n`);
}
const secondsSince = (t: number): string => ((Date.now() - t) / 1000).toFixed(1);

/** The operators' own namespace for one test (Lease, canary, heal ledger). */
async function operatorNamespace(): Promise<string> {
  const opNs = await createNamespace('faults-op');
  namespaces.push(opNs);
  return opNs;
}

/** An operator process whose every request goes through a recording proxy of its own. */
async function replica(
  name: string,
  opNs: string,
  options: { delayMs?: number; env?: Record<string, string> } = {},
): Promise<Replica> {
  const proxy = await startApiProxy(name, { delayMs: options.delayMs ?? 0 });
  proxies.push(proxy);
  const op = startOperator(
    {
      KUBECONFIG: proxy.kubeconfig,
      AUTHPROBE_OPERATOR_NAMESPACE: opNs,
      AUTHPROBE_WATCH_NAMESPACES: ns,
      AUTHPROBE_LEADER_ELECTION: 'true',
      ...options.env,
    },
    `${name}-${opNs}`,
  );
  operators.push(op);
  return { op, proxy };
}

const probe = (name: string, secretName: string, serviceAccountName = 'app') => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace: ns },
  spec: {
    serviceAccountName,
    check: 'TokenReview',
    token: { source: 'Secret', secretName },
    interval: '10s',
  },
});

/** The legacy cleaner's label makes the apiserver reject the token (401): a real proven-invalid token. */
const invalidate = (secret: string) =>
  kubectl('label', 'secret', secret, '-n', ns, 'kubernetes.io/legacy-token-invalid-since=2026-11-01');

async function leads(op: OperatorProcess): Promise<boolean> {
  return (await op.metric('authprobe_leader').catch(() => undefined)) === 1;
}

async function waitLeader(op: OperatorProcess, timeoutMs = 60_000): Promise<void> {
  await waitFor(`${op.identity} to lead`, timeoutMs, async () => ((await leads(op)) ? true : undefined), 250);
}

/** The sum of a counter over all its label sets, from the process's /metrics. */
async function metricSum(op: OperatorProcess, name: string): Promise<number> {
  const { body } = await op.get('/metrics');
  return body
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

const waitStopped = (op: OperatorProcess, timeoutMs: number) =>
  waitFor(`${op.identity} to stop itself at its failpoint`, timeoutMs, async () =>
    processStopped(op) ? true : undefined,
  );

const secretPath = (name: string) => `/api/v1/namespaces/${ns}/secrets/${name}`;
const deletesOf = (requests: ProxiedRequest[], name: string) =>
  requests.filter((r) => r.method === 'DELETE' && r.path.split('?')[0] === secretPath(name));
const createsIn = (requests: ProxiedRequest[]) =>
  requests.filter((r) => r.method === 'POST' && r.path.split('?')[0] === `/api/v1/namespaces/${ns}/secrets`);

interface ProbeStatus {
  status?: {
    heals?: { count?: number };
    conditions?: Array<{ type: string; status: string; reason: string }>;
  };
}

async function healedOnce(
  name: string,
  secret: string,
  staleUid: string,
  timeoutMs: number,
): Promise<string> {
  return waitFor(`${name} healed, its secret replaced and filled`, timeoutMs, async () => {
    const p = await kubectlJson<ProbeStatus>('get', 'authprobe', name, '-n', ns);
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True' || (p.status?.heals?.count ?? 0) < 1) return undefined;
    const s = await kubectlJson<{ metadata: { uid: string }; data?: { token?: string } }>(
      'get',
      'secret',
      secret,
      '-n',
      ns,
    );
    return s.metadata.uid !== staleUid && s.data?.token ? s.metadata.uid : undefined;
  });
}

const healCount = async (name: string): Promise<number> =>
  (await kubectlJson<ProbeStatus>('get', 'authprobe', name, '-n', ns)).status?.heals?.count ?? 0;

/** How many times an Event with this reason was recorded for the AuthProbe (an Event's count included). */
async function eventCount(name: string, reason: string): Promise<number> {
  const events = await eventsFor(ns, 'AuthProbe', name);
  return events
    .filter((e) => e.reason === reason)
    .reduce((n, e) => n + ((e as { count?: number }).count ?? 1), 0);
}

beforeAll(async () => {
  if (!isOwnCluster())
    throw new Error(
      'the fault suite restarts etcd and stops kube-controller-manager: point KUBECONFIG at the test cluster (npm run cluster:env)',
    );
  await assertNoClusterWideOperator();
  await installCrd();
}, 120_000);

/** Each test has namespaces of its own: nothing an earlier test left behind is acted on. */
beforeEach(async () => {
  ns = await createNamespace('faults');
  namespaces.push(ns);
  await apply({
    apiVersion: 'v1',
    kind: 'List',
    items: ['app', 'other'].map((name) => ({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace: ns },
    })),
  });
}, 60_000);

/** Every operator a test started ends with it, also when the test fails (a frozen one is thawed first). */
afterEach(async () => {
  const running = operators.splice(0);
  await Promise.all(
    running.map(async (op) => {
      op.child.kill('SIGCONT');
      const stopped = op.stop('SIGTERM');
      const timer = setTimeout(() => op.child.kill('SIGKILL'), 20_000);
      await stopped;
      clearTimeout(timer);
    }),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(namespaces.map(deleteNamespace));
}, 60_000);

describe('a leader frozen in the middle of a heal', () => {
  it('the standby finishes the heal; the old leader, resumed, sends no write; one delete, one create, one heal', async () => {
    const opNs = await operatorNamespace();
    const { uid } = await createLegacyTokenSecret(ns, 'app', 'frozen-token');
    await apply(probe('frozen', 'frozen-token'));
    // a stops itself (SIGSTOP) right before it would delete the stale secret.
    const a = await replica('frozen-a', opNs, { env: { AUTHPROBE_FAILPOINTS: 'before-secret-delete=stop' } });
    await waitLeader(a.op);
    const b = await replica('frozen-b', opNs);
    await waitFor('b to be ready as a standby', 60_000, async () =>
      (await b.op.get('/readyz').catch(() => ({ body: '' }))).body.includes('standby') ? true : undefined,
    );
    await waitForReason(ns, 'frozen', 'Authenticated', 60_000);
    await invalidate('frozen-token');
    await waitStopped(a.op, 60_000);
    const frozenAt = Date.now();
    // b sees no renewal for a lease duration (15 s), takes over and resumes the heal a recorded.
    const newUid = await healedOnce('frozen', 'frozen-token', uid, 120_000);
    expect(Date.now() - frozenAt).toBeGreaterThan(15_000);
    figure('leader frozen mid-heal: healed by the standby after the freeze', secondsSince(frozenAt));
    expect(await leads(b.op)).toBe(true);

    const resumedAt = Date.now();
    a.op.child.kill('SIGCONT');
    await waitFor('a, resumed, to refuse the delete it was about to send', 30_000, async () =>
      (await metricSum(a.op, 'authprobe_requests_refused_total')) >= 1 ? true : undefined,
    );
    await sleep(10_000); // it keeps running: anything it would still send, it sends now
    expect(processStopped(a.op)).toBe(false);
    expect(a.proxy.writesSince(resumedAt)).toEqual([]);
    figure(
      'old leader after SIGCONT: requests refused',
      await metricSum(a.op, 'authprobe_requests_refused_total'),
      '',
    );
    figure(
      'old leader after SIGCONT: writes that reached the apiserver',
      a.proxy.writesSince(resumedAt).length,
      '',
    );
    expect(a.op.logs()).toMatch(/request refused: this replica does not lead/);
    expect(await leads(a.op)).toBe(false);
    expect(await leads(b.op)).toBe(true);

    const all = [...a.proxy.requests, ...b.proxy.requests];
    expect(deletesOf(all, 'frozen-token')).toHaveLength(1);
    expect(deletesOf(b.proxy.requests, 'frozen-token')).toHaveLength(1);
    expect(createsIn(all)).toHaveLength(1);
    expect(
      (await metricSum(a.op, 'authprobe_heals_total')) + (await metricSum(b.op, 'authprobe_heals_total')),
    ).toBe(1);
    expect(await healCount('frozen')).toBe(1);
    expect(await eventCount('frozen', 'SecretDeleted')).toBe(1);
    expect(await eventCount('frozen', 'Healed')).toBe(1);
    const s = await kubectlJson<{ metadata: { uid: string } }>('get', 'secret', 'frozen-token', '-n', ns);
    expect(s.metadata.uid).toBe(newUid);
  }, 300_000);
});

describe('a slow apiserver', () => {
  it('with every answer held back 2 s the verdicts are right and only the stale secret is replaced', async () => {
    const opNs = await operatorNamespace();
    const [good, stale, foreign] = await Promise.all([
      createLegacyTokenSecret(ns, 'app', 'slow-good'),
      createLegacyTokenSecret(ns, 'app', 'slow-stale'),
      createLegacyTokenSecret(ns, 'other', 'slow-foreign'),
    ]);
    await invalidate('slow-stale');
    const slow = await replica('slow', opNs, { delayMs: 2_000 });
    const startedAt = Date.now();
    await apply({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        probe('slow-good', 'slow-good'),
        probe('slow-stale', 'slow-stale'),
        // names app, but the secret is other's token: never used, never touched
        probe('slow-foreign', 'slow-foreign'),
      ],
    });
    await waitForReason(ns, 'slow-good', 'Authenticated', 120_000);
    await waitForReason(ns, 'slow-foreign', 'SecretForOtherServiceAccount', 120_000);
    await healedOnce('slow-stale', 'slow-stale', stale.uid, 240_000);
    figure('2 s per answer: operator start to the stale secret healed', secondsSince(startedAt));
    // Every answer really was late: the proxy held each one 2 s.
    expect(slow.proxy.requests.length).toBeGreaterThan(20);
    // It kept its lease throughout (a renewal is a GET and a PUT: 4 s, within the 10 s deadline).
    expect(slow.op.logs()).not.toMatch(/lost leadership/);
    for (const [name, before] of [
      ['slow-good', good.uid],
      ['slow-foreign', foreign.uid],
    ] as const) {
      const s = await kubectlJson<{ metadata: { uid: string } }>('get', 'secret', name, '-n', ns);
      expect(s.metadata.uid).toBe(before);
      expect(deletesOf(slow.proxy.requests, name)).toEqual([]);
    }
    expect(deletesOf(slow.proxy.requests, 'slow-stale')).toHaveLength(1);
    expect(await healCount('slow-stale')).toBe(1);
  }, 420_000);
});

describe('a skewed wall clock', () => {
  it('one replica 30 s ahead, then 30 s behind: never two leaders, on the Lease and in both logs', async () => {
    const opNs = await operatorNamespace();
    const skewFile = `/tmp/authprobe-faketime-${opNs}`;
    writeFileSync(skewFile, '+30s\n');
    const timeline: Array<{ at: number; who: string; what: string }> = [];
    // Each process's log lines as they arrive, dated by this test's clock (b's own times are skewed).
    const follow = (r: Replica, who: string): void => {
      let partial = '';
      r.op.child.stdout?.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          const m = /"msg":"(became leader|lost leadership[^"]*|standing by as a candidate)"/.exec(line);
          if (m) timeline.push({ at: Date.now(), who, what: m[1] as string });
        }
      });
    };
    const lease: Array<{ at: number; holder: string; renew: string }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const l = await kubectlJson<{ spec?: { holderIdentity?: string; renewTime?: string } }>(
          'get',
          'lease',
          'authprobe-operator',
          '-n',
          opNs,
        ).catch(() => undefined);
        if (l)
          lease.push({
            at: Date.now(),
            holder: l.spec?.holderIdentity ?? '',
            renew: l.spec?.renewTime ?? '',
          });
        await sleep(250);
      }
    })();

    const a = await replica('skew-a', opNs);
    follow(a, 'a');
    await waitLeader(a.op);
    const bSpawned = Date.now();
    const b = await replica('skew-b', opNs, {
      env: {
        LD_PRELOAD: FAKETIME_LIB,
        FAKETIME_TIMESTAMP_FILE: skewFile,
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
        FAKETIME_CACHE_DURATION: '1',
      },
    });
    follow(b, 'b');
    await sleep(20_000);
    expect(await leads(b.op)).toBe(false);
    // b's clock really is ahead: the start time it reports was read from it.
    const bStart = (await b.op.metric('process_start_time_seconds')) ?? 0;
    expect(bStart * 1000 - bSpawned).toBeGreaterThan(20_000);

    await a.op.stop('SIGKILL'); // no release: b must wait out the lease on its own clock
    const aDied = Date.now();
    await waitLeader(b.op, 60_000);
    const bLed = Date.now();
    expect(bLed - aDied).toBeGreaterThan(10_000);
    figure('skewed replica took over after the leader was killed', ((bLed - aDied) / 1000).toFixed(1));
    // On the Lease, b's renewals carry its skewed clock.
    await sleep(3_000);
    const renewed = lease.filter((s) => s.holder === b.op.identity).pop();
    expect(Date.parse(renewed?.renew ?? '') - (renewed?.at ?? 0)).toBeGreaterThan(20_000);

    const c = await replica('skew-c', opNs);
    follow(c, 'c');
    await waitFor('c ready as a standby', 60_000, async () =>
      (await c.op.get('/readyz').catch(() => ({ body: '' }))).body.includes('standby') ? true : undefined,
    );
    writeFileSync(skewFile, '-30s\n'); // b's wall clock steps back a minute while it leads
    const jumped = Date.now();
    await sleep(25_000);
    expect(await leads(b.op)).toBe(true);
    expect(await leads(c.op)).toBe(false);
    // On the Lease, b's renewals now carry a time 30 s behind.
    const behind = lease.filter((l) => l.at > jumped + 5_000 && l.holder === b.op.identity).pop();
    expect(Date.parse(behind?.renew ?? '') - (behind?.at ?? 0)).toBeLessThan(-20_000);
    await b.op.stop('SIGKILL');
    const bDied = Date.now();
    await waitLeader(c.op, 60_000);
    figure('normal replica took over after the skewed leader was killed', secondsSince(bDied));
    // c reports leading as soon as its write of the Lease succeeded: the sampler reads the Lease every
    // 250 ms plus a kubectl call, so it must go on until its reads show that write (a Lease that never
    // names c while c says it leads fails here).
    await waitFor('the sampled Lease to name c', 10_000, async () =>
      lease.some((s) => s.holder === c.op.identity) ? true : undefined,
    );
    sampling = false;
    await sampler;

    // The logs: each became leader only after the one before it was dead; nobody lost leadership.
    const became = timeline.filter((e) => e.what === 'became leader');
    expect(became.map((e) => e.who)).toEqual(['a', 'b', 'c']);
    expect(became[1]?.at).toBeGreaterThan(aDied);
    expect(became[2]?.at).toBeGreaterThan(bDied);
    expect(timeline.filter((e) => e.what.startsWith('lost leadership'))).toEqual([]);
    // The Lease: holders in that order, each change only after the previous holder died.
    const changes = lease.filter((s, i) => i === 0 || s.holder !== lease[i - 1]?.holder);
    expect(changes.map((s) => s.holder)).toEqual([a.op.identity, b.op.identity, c.op.identity]);
    expect(changes[1]?.at).toBeGreaterThan(aDied);
    expect(changes[2]?.at).toBeGreaterThan(bDied);
  }, 300_000);
});

describe('control-plane faults during a heal', () => {
  /** Starts an operator that freezes right after deleting the stale secret, and breaks the token. */
  async function frozenAfterDelete(name: string): Promise<{ r: Replica; uid: string }> {
    const opNs = await operatorNamespace();
    const { uid } = await createLegacyTokenSecret(ns, 'app', `${name}-token`);
    await apply(probe(name, `${name}-token`));
    const r = await replica(name, opNs, { env: { AUTHPROBE_FAILPOINTS: 'after-secret-delete=stop' } });
    await waitForReason(ns, name, 'Authenticated', 60_000);
    await invalidate(`${name}-token`);
    await waitStopped(r.op, 60_000);
    const gone = await kubectl(
      'get',
      'secret',
      `${name}-token`,
      '-n',
      ns,
      '--ignore-not-found',
      '-o',
      'name',
    );
    expect(gone.trim()).toBe(''); // frozen between the delete and the create
    return { r, uid };
  }

  it('etcd restarted while the stale secret is deleted and its replacement not yet created: the heal finishes', async () => {
    const { r, uid } = await frozenAfterDelete('etcd');
    await clusterScript('etcd', 'stop');
    let down: number | undefined;
    try {
      const resumedAt = Date.now();
      r.op.child.kill('SIGCONT');
      await sleep(20_000);
      // The operator ran meanwhile and met the outage: it kept asking, and got errors.
      const during = r.proxy.requests.filter((q) => q.at >= resumedAt);
      down = during.length;
      const failed = during.filter((q) => (q.status ?? 0) >= 500 || q.status === undefined).length;
      expect(failed).toBeGreaterThan(0);
      figure('requests during 20 s of etcd outage (failed)', `${down} (${failed})`, '');
    } finally {
      await clusterScript('etcd', 'start');
    }
    expect(down).toBeGreaterThan(0);
    const etcdBack = Date.now();
    await healedOnce('etcd', 'etcd-token', uid, 180_000);
    figure('etcd back (apiserver ready) to healed', secondsSince(etcdBack));
    expect(deletesOf(r.proxy.requests, 'etcd-token')).toHaveLength(1);
    expect(await healCount('etcd')).toBe(1);
  }, 420_000);

  it('kube-controller-manager stopped while the replacement waits for its token: the heal finishes once it is back', async () => {
    const { r, uid } = await frozenAfterDelete('kcm');
    await clusterScript('tokens-controller', 'stop');
    try {
      r.op.child.kill('SIGCONT');
      // The replacement is created, but nobody fills it.
      await waitFor('the replacement secret to be created', 60_000, async () => {
        const s = await kubectlJson<{ metadata: { uid: string }; data?: { token?: string } }>(
          'get',
          'secret',
          'kcm-token',
          '-n',
          ns,
        ).catch(() => undefined);
        return s && s.metadata.uid !== uid ? true : undefined;
      });
      await sleep(10_000);
      const s = await kubectlJson<{ data?: { token?: string } }>('get', 'secret', 'kcm-token', '-n', ns);
      expect(s.data?.token).toBeUndefined();
    } finally {
      await clusterScript('tokens-controller', 'start');
    }
    const kcmBack = Date.now();
    await healedOnce('kcm', 'kcm-token', uid, 180_000);
    figure('kube-controller-manager back to healed', secondsSince(kcmBack));
    expect(deletesOf(r.proxy.requests, 'kcm-token')).toHaveLength(1);
    expect(createsIn(r.proxy.requests).length).toBeGreaterThanOrEqual(1);
  }, 420_000);
});
