/**
 * What the heal policies do to a real Secret (the unit layer proves the decisions; this proves the
 * apiserver agrees): `invalidatedLegacyToken: Revalidate` removes the legacy cleaner's label and the
 * same token authenticates again; `Report` changes nothing at all; and a replacement someone else
 * (the cluster, a person) created first, between the operator's delete and its create, is adopted.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import {
  apply,
  assertNoClusterWideOperator,
  createLegacyTokenSecret,
  createNamespace,
  deleteNamespace,
  eventsFor,
  installCrd,
  kubectl,
  kubectlJson,
  processStopped,
  startOperator,
  waitFor,
  waitForHeal,
  waitForReason,
  type OperatorProcess,
} from '../support/cluster.js';

const CLEANER_LABEL = 'kubernetes.io/legacy-token-invalid-since';
const operators: OperatorProcess[] = [];
let ns: string; // Revalidate and Report
let adoptNs: string; // adoption, with an operator that freezes right after its delete
let opNs: string;

interface SecretJson {
  metadata: { uid: string; resourceVersion: string; labels?: Record<string, string> };
  data?: { token?: string };
}
const secret = (namespace: string, name: string) =>
  kubectlJson<SecretJson>('get', 'secret', name, '-n', namespace);

const probe = (namespace: string, name: string, heal: Record<string, unknown> = {}) => ({
  apiVersion: 'authprobe.io/v1alpha1',
  kind: 'AuthProbe',
  metadata: { name, namespace },
  spec: {
    serviceAccountName: 'app',
    check: 'TokenReview',
    token: { source: 'Secret', secretName: `${name}-token` },
    interval: '10s',
    heal,
  },
});

/** Whether the apiserver authenticates the secret's token now (a TokenReview; the token never leaves this process). */
async function authenticates(namespace: string, name: string): Promise<boolean> {
  const token = Buffer.from((await secret(namespace, name)).data?.token ?? '', 'base64').toString('utf8');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('kubectl', ['create', '-o', 'json', '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`kubectl create TokenReview exited ${code}`)),
    );
    child.stdin.end(
      JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } }),
    );
  });
  return (JSON.parse(out) as { status?: { authenticated?: boolean } }).status?.authenticated === true;
}

beforeAll(async () => {
  await assertNoClusterWideOperator();
  await installCrd();
  [ns, adoptNs, opNs] = await Promise.all([
    createNamespace('policies'),
    createNamespace('adopt'),
    createNamespace('policies-op'),
  ]);
  for (const n of [ns, adoptNs])
    await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: n } });
  operators.push(
    startOperator(
      {
        AUTHPROBE_OPERATOR_NAMESPACE: opNs,
        AUTHPROBE_WATCH_NAMESPACES: ns,
        AUTHPROBE_LEADER_ELECTION: 'false',
      },
      'policies',
    ),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all(operators.map((op) => (op.child.kill('SIGCONT'), op.stop('SIGKILL'))));
  await Promise.all([ns, adoptNs, opNs].filter(Boolean).map(deleteNamespace));
}, 60_000);

describe('heal policies on a real Secret', () => {
  it('Revalidate removes the cleaner label from the same Secret, and its token authenticates again', async () => {
    const { uid } = await createLegacyTokenSecret(ns, 'app', 'revalidate-token');
    await apply(probe(ns, 'revalidate', { invalidatedLegacyToken: 'Revalidate' }));
    await waitForReason(ns, 'revalidate', 'Authenticated', 60_000);
    await kubectl('label', 'secret', 'revalidate-token', '-n', ns, `${CLEANER_LABEL}=2026-11-01`);
    const healed = await waitForHeal(ns, 'revalidate', 90_000);
    expect(healed).toMatchObject({ count: 1, lastAction: 'LabelRemoved' });
    const after = await secret(ns, 'revalidate-token');
    expect(after.metadata.uid).toBe(uid);
    expect(after.metadata.labels?.[CLEANER_LABEL]).toBeUndefined();
    expect(await authenticates(ns, 'revalidate-token')).toBe(true);
    // In the order the operator wrote them (its microsecond eventTime).
    const reasons = (await eventsFor(ns, 'AuthProbe', 'revalidate'))
      .sort((a, b) => (a.eventTime ?? '').localeCompare(b.eventTime ?? ''))
      .map((e) => e.reason);
    // The label alone made the apiserver refuse the token (TokenInvalidated); removing it made it work again.
    expect(reasons.indexOf('TokenInvalidated')).toBeGreaterThanOrEqual(0);
    expect(reasons.indexOf('TokenRevalidated')).toBeGreaterThan(reasons.indexOf('TokenInvalidated'));
    expect(reasons).not.toContain('SecretDeleted');
  }, 180_000);

  it('Report changes nothing: the Secret keeps its uid, resourceVersion and label, and the verdict says why', async () => {
    const { uid } = await createLegacyTokenSecret(ns, 'app', 'report-token');
    await apply(probe(ns, 'report', { invalidatedLegacyToken: 'Report' }));
    await waitForReason(ns, 'report', 'Authenticated', 60_000);
    await kubectl('label', 'secret', 'report-token', '-n', ns, `${CLEANER_LABEL}=2026-11-01`);
    const labelled = await secret(ns, 'report-token');
    const verdict = await waitForReason(ns, 'report', 'TokenInvalidated', 60_000);
    expect(verdict.status).toBe('False');
    expect(verdict.message).toContain('invalidatedLegacyToken is Report, so nothing was changed');
    // Two more intervals: still nothing changed.
    await new Promise((resolve) => setTimeout(resolve, 20_000));
    const after = await secret(ns, 'report-token');
    expect(after.metadata).toMatchObject({ uid, resourceVersion: labelled.metadata.resourceVersion });
    expect(after.metadata.labels?.[CLEANER_LABEL]).toBe('2026-11-01');
    const reasons = (await eventsFor(ns, 'AuthProbe', 'report')).map((e) => e.reason);
    expect(reasons).not.toContain('SecretDeleted');
    expect(reasons).not.toContain('TokenRevalidated');
  }, 180_000);
});

describe('a replacement someone else created first', () => {
  it('is adopted: the operator does not create a second one, and confirms the token of the one it found', async () => {
    const { uid } = await createLegacyTokenSecret(adoptNs, 'app', 'adopt-token');
    await apply(probe(adoptNs, 'adopt'));
    const frozen = startOperator(
      {
        AUTHPROBE_OPERATOR_NAMESPACE: opNs,
        AUTHPROBE_WATCH_NAMESPACES: adoptNs,
        AUTHPROBE_LEADER_ELECTION: 'false',
        AUTHPROBE_FAILPOINTS: 'after-secret-delete=stop',
      },
      'policies-adopt',
    );
    operators.push(frozen);
    await waitForReason(adoptNs, 'adopt', 'Authenticated', 60_000);
    await kubectl('label', 'secret', 'adopt-token', '-n', adoptNs, `${CLEANER_LABEL}=2026-11-01`);
    await waitFor('the operator to freeze right after its delete', 60_000, async () =>
      processStopped(frozen) ? true : undefined,
    );
    // The cluster (or a person) recreates the token secret before the operator does.
    const theirs = await createLegacyTokenSecret(adoptNs, 'app', 'adopt-token');
    expect(theirs.uid).not.toBe(uid);
    frozen.child.kill('SIGCONT');
    const healed = await waitForHeal(adoptNs, 'adopt', 90_000);
    expect(healed.count).toBe(1);
    expect((await secret(adoptNs, 'adopt-token')).metadata.uid).toBe(theirs.uid);
    const reasons = (await eventsFor(adoptNs, 'AuthProbe', 'adopt')).map((e) => e.reason);
    expect(reasons).toContain('SecretAdopted');
    expect(reasons).not.toContain('SecretRecreated');
    expect(reasons).toContain('TokenIssued');
  }, 180_000);
});
