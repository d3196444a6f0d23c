/**
 * check Copy at the controller layer: the reconciler, the copy check and the healer over the fake
 * apiserver, whose token table answers the copy's requests (operator-fixture's copyServer). What a
 * user sees: the Ready condition, the Events in order, and the Secret holding the copy.
 */
import { describe, expect, it } from '@jest/globals';
import { EventReason, HealReason, ProbeReason } from '../../../src/api/reasons.js';
import type { AuthProbeSpec, CopySpec } from '../../../src/api/types.js';
import { apiPaths, type SecretJson } from '../../../src/kube/resources.js';
import {
  addAuthProbe,
  addServiceAccount,
  b64,
  fakeOperator,
  NS,
  ready,
  SA,
  storedProbe,
  USERNAME,
} from '../support/operator-fixture.js';

const COPY = 'ci-kubeconfig';
const copyPath = apiPaths.secret(NS, COPY);
const text = (data: string | undefined) => Buffer.from(data ?? '', 'base64').toString('utf8');
/** A JWT-shaped token with an issue and expiry time (seconds), as TokenRequest makes them. */
const jwt = (name: string, iat: number, exp: number, sub = USERNAME) =>
  [
    Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1' })).toString('base64url'),
    Buffer.from(JSON.stringify({ iss: 'https://kubernetes.default.svc', sub, iat, exp, name })).toString(
      'base64url',
    ),
    'sig',
  ].join('.');

/** A rejected token of the account (its claims name it; the fake apiserver does not accept it). */
const DEAD = jwt('dead', 1, 2);

const kubeconfig = (server: string, token: string) => `# hand-written
apiVersion: v1
clusters:
- name: c
  cluster: {server: '${server}'}
users:
- name: ci
  user:
    token: ${token}
contexts:
- name: x
  context: {cluster: c, user: ci}
current-context: x
`;

function world(
  token: string,
  options: { server?: string; copy?: Partial<CopySpec>; spec?: Partial<AuthProbeSpec> } = {},
) {
  const op = fakeOperator();
  addServiceAccount(op.kube);
  op.kube.add(apiPaths.secrets(NS), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: COPY },
    type: 'Opaque',
    data: {
      kubeconfig: b64(kubeconfig(options.server ?? 'https://127.0.0.1:6443', token)),
      other: b64('kept'),
    },
  });
  addAuthProbe(op.kube, {
    check: 'Copy',
    token: undefined,
    copy: { secretName: COPY, format: 'Kubeconfig', ...options.copy },
    interval: '1m',
    ...options.spec,
  } as Partial<AuthProbeSpec>);
  op.kube.clearCalls();
  return op;
}

const copyText = (op: ReturnType<typeof world>) =>
  text(op.kube.peek<SecretJson>(copyPath)?.data?.['kubeconfig']);

describe('check Copy', () => {
  it('a working copy: Authenticated, with the account it is and where it is used; nothing written', async () => {
    const op = world('good-token');
    op.kube.acceptToken('good-token', USERNAME);
    // A local server name is allowed without configuration.
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: ProbeReason.Authenticated });
    expect(storedProbe(op.kube).status?.lastProbe?.identity).toBe(USERNAME);
    expect(op.kube.writes().filter((w) => w.includes('/secrets'))).toEqual([]);
  });

  it('a rejected copy is confirmed by a second check, then only its token is rewritten, with a resourceVersion precondition', async () => {
    const op = world(DEAD);
    const before = op.kube.peek<SecretJson>(copyPath) as SecretJson;
    await op.reconcile();
    expect(op.events.reasons()).toEqual([
      ProbeReason.TokenRejected,
      EventReason.TokenRejectionConfirmed,
      EventReason.CopyRewritten,
      HealReason.Healed,
      EventReason.HealConfirmed,
    ]);
    const patches = op.kube.callsTo('PATCH', copyPath);
    expect(patches).toHaveLength(1);
    expect(patches[0]?.body).toMatchObject({
      metadata: { resourceVersion: before.metadata.resourceVersion },
    });
    expect(Object.keys((patches[0]?.body as { data: object }).data)).toEqual(['kubeconfig']);
    expect(op.kube.callsTo('POST', `${apiPaths.serviceAccount(NS, SA)}/token`)).toHaveLength(1);
    // Every other byte as it was.
    expect(copyText(op)).toBe(kubeconfig('https://127.0.0.1:6443', `requested-token-${SA}-1`));
    expect(op.kube.peek<SecretJson>(copyPath)?.data?.['other']).toBe(before.data?.['other']);
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: HealReason.Healed });
  });

  it('a rejection the second check does not confirm writes nothing', async () => {
    const op = world('flaky-token');
    let checks = 0;
    // The apiserver rejects the first check only (say, a cache that had not caught up).
    const origin = op.kube.authenticatedAs.bind(op.kube);
    op.kube.authenticatedAs = (token: string) => (++checks === 1 ? undefined : (origin(token) ?? USERNAME));
    await op.reconcile();
    expect(op.kube.callsTo('PATCH', copyPath)).toEqual([]);
    expect(op.kube.callsTo('POST', `${apiPaths.serviceAccount(NS, SA)}/token`)).toEqual([]);
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: ProbeReason.Authenticated });
  });

  it("another account's copy: TokenIdentityMismatch, never written", async () => {
    const op = world('other-token');
    op.kube.acceptToken('other-token', `system:serviceaccount:${NS}:other`);
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: ProbeReason.TokenIdentityMismatch });
    expect(op.kube.writes().filter((w) => w.includes('/secrets'))).toEqual([]);
  });

  it('a server the admin did not allow is never connected to', async () => {
    const op = world('good-token', { server: 'https://203.0.113.7:6443' });
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: ProbeReason.CopyServerNotAllowed });
    expect(ready(op.kube)?.message).toMatch(/--allowed-copy-servers/);
  });

  it('a rejected copy used with another (allowed) cluster is reported, never written with a token of this one', async () => {
    const op = world(DEAD, { server: 'https://10.0.0.9:6443' });
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: HealReason.HealBlocked });
    expect(ready(op.kube)?.message).toMatch(/another cluster/);
    expect(op.kube.callsTo('PATCH', copyPath)).toEqual([]);
    expect(op.kube.callsTo('POST', `${apiPaths.serviceAccount(NS, SA)}/token`)).toEqual([]);
  });

  it("a rejected token that says it was another account's is not rewritten", async () => {
    const op = world(jwt('other', 1, 2, `system:serviceaccount:${NS}:other`));
    await op.reconcile();
    expect(ready(op.kube)).toMatchObject({ status: 'False', reason: HealReason.HealBlocked });
    expect(ready(op.kube)?.message).toMatch(/not provably a copy of this account's token/);
    expect(op.kube.callsTo('PATCH', copyPath)).toEqual([]);
  });

  it('DryRun says what it would write and writes nothing', async () => {
    const op = world(DEAD, { spec: { heal: { policy: 'DryRun' } } });
    await op.reconcile();
    expect(op.events.reasons()).toContain(EventReason.HealDryRun);
    expect(op.kube.callsTo('PATCH', copyPath)).toEqual([]);
  });

  it('a copy minted with an expiry is renewed at half its lifetime, and stays Authenticated', async () => {
    const nowS = Math.floor(op0Now() / 1000);
    // Issued 6 minutes ago for 10 minutes: past half its lifetime.
    const token = jwt('first', nowS - 360, nowS + 240);
    const op = world(token, { copy: { renew: { expirationSeconds: 600 } } });
    op.kube.acceptToken(token, USERNAME);
    await op.reconcile();
    const renewed = op.events.find(EventReason.CopyRewritten);
    expect(renewed?.message).toMatch(/^Renewed the token in secret ci-kubeconfig/);
    expect(copyText(op)).toBe(kubeconfig('https://127.0.0.1:6443', `requested-token-${SA}-1`));
    expect(ready(op.kube)).toMatchObject({ status: 'True', reason: ProbeReason.Authenticated });
    expect(op.kube.callsTo('POST', `${apiPaths.serviceAccount(NS, SA)}/token`)[0]?.body).toMatchObject({
      spec: { expirationSeconds: 600 },
    });
  });

  it('a copy minted with an expiry, before half its lifetime, is checked again when it is due', async () => {
    const nowS = Math.floor(op0Now() / 1000);
    const token = jwt('fresh', nowS - 60, nowS + 540);
    const op = world(token, { copy: { renew: { expirationSeconds: 600 } }, spec: { interval: '1h' } });
    op.kube.acceptToken(token, USERNAME);
    const result = await op.reconcile();
    expect(op.kube.callsTo('PATCH', copyPath)).toEqual([]);
    // Due at iat + 300 s: 240 s from now, well before the interval.
    expect(result.requeueAfterMs).toBe(240_000);
  });
});

/** The fixture clock's start (operator-fixture T0), for tokens that must be valid "now". */
function op0Now(): number {
  return fakeOperator().clock.now();
}
