import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KubeconfigError,
  TOKEN_FILE_REFRESH_MS,
  loadClusterAccess,
  type ClusterAccess,
} from '../../../src/kube/access.js';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.secret-part.signature';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'authprobe-access-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

function kubeconfig(opts: {
  current?: string;
  cluster?: Record<string, unknown>;
  user?: Record<string, unknown>;
  name?: string;
  namespace?: string;
}): string {
  const name = opts.name ?? 'test';
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    ...(opts.current === '' ? {} : { 'current-context': opts.current ?? name }),
    clusters: [{ name, cluster: { server: 'https://10.0.0.1:6443', ...opts.cluster } }],
    users: [{ name, user: opts.user ?? {} }],
    contexts: [
      {
        name,
        context: { cluster: name, user: name, ...(opts.namespace ? { namespace: opts.namespace } : {}) },
      },
    ],
  });
}

async function applied(access: ClusterAccess): Promise<https.RequestOptions> {
  const o: https.RequestOptions = { headers: { Accept: 'application/json' } };
  await access.apply(o);
  return o;
}

async function loadError(promise: Promise<unknown>): Promise<KubeconfigError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubeconfigError);
  return err as KubeconfigError;
}

describe('loadClusterAccess from a kubeconfig', () => {
  it('reads client certificate files relative to the kubeconfig, and the CA', async () => {
    write('certs/ca.crt', 'CA PEM');
    write('certs/admin.crt', 'CERT PEM');
    write('certs/admin.key', 'KEY PEM');
    const path = write(
      'certs.yaml',
      kubeconfig({
        cluster: { 'certificate-authority': 'certs/ca.crt' },
        user: { 'client-certificate': 'certs/admin.crt', 'client-key': 'certs/admin.key' },
        namespace: 'team-a',
      }),
    );
    const access = await loadClusterAccess({ kubeconfig: path, env: {} });
    expect(access.server.href).toBe('https://10.0.0.1:6443/');
    expect(access.namespace).toBe('team-a');
    expect(access.source).toBe(`kubeconfig ${path} (context test)`);
    const o = await applied(access);
    expect(String(o.ca)).toBe('CA PEM');
    expect(String(o.cert)).toBe('CERT PEM');
    expect(String(o.key)).toBe('KEY PEM');
    expect(o.headers).toEqual({ Accept: 'application/json' });
  });

  it('decodes the -data fields and puts a static token in the Authorization header only', async () => {
    const path = write(
      'token.yaml',
      kubeconfig({
        cluster: { 'certificate-authority-data': Buffer.from('CA DATA').toString('base64') },
        user: { token: TOKEN },
      }),
    );
    const access = await loadClusterAccess({ env: { KUBECONFIG: path } });
    const o = await applied(access);
    expect(String(o.ca)).toBe('CA DATA');
    expect(o.headers).toEqual({ Accept: 'application/json', Authorization: `Bearer ${TOKEN}` });
    expect(JSON.stringify({ source: access.source, server: access.server })).not.toContain('secret-part');
  });

  it('re-reads a tokenFile after the refresh period, so a re-issued token is used', async () => {
    const tokenPath = write('tokenfile/token', 'first-token\n');
    const path = write('tokenfile.yaml', kubeconfig({ user: { tokenFile: 'tokenfile/token' } }));
    let now = 1_000_000;
    const access = await loadClusterAccess({ kubeconfig: path, now: () => now });
    expect((await applied(access)).headers).toMatchObject({ Authorization: 'Bearer first-token' });
    writeFileSync(tokenPath, 'second-token');
    now += TOKEN_FILE_REFRESH_MS - 1;
    expect((await applied(access)).headers).toMatchObject({ Authorization: 'Bearer first-token' });
    now += 1;
    expect((await applied(access)).headers).toMatchObject({ Authorization: 'Bearer second-token' });
  });

  it('merges a KUBECONFIG list like kubectl: the first file to set a name wins, missing files are skipped', async () => {
    const first = write(
      'merge-1.yaml',
      JSON.stringify({
        'current-context': 'b',
        clusters: [{ name: 'one', cluster: { server: 'https://first:6443' } }],
      }),
    );
    const second = write(
      'merge-2.yaml',
      JSON.stringify({
        'current-context': 'ignored',
        clusters: [
          { name: 'one', cluster: { server: 'https://second:6443' } },
          { name: 'two', cluster: { server: 'https://two:6443' } },
        ],
        users: [{ name: 'u', user: { token: 'abc' } }],
        contexts: [{ name: 'b', context: { cluster: 'one', user: 'u' } }],
      }),
    );
    const access = await loadClusterAccess({
      env: { KUBECONFIG: `${first}:${join(dir, 'does-not-exist.yaml')}:${second}` },
    });
    expect(access.server.host).toBe('first:6443');
    expect((await applied(access)).headers).toMatchObject({ Authorization: 'Bearer abc' });
  });

  it('hands exec-plugin users to client-node, which runs the plugin', async () => {
    const plugin = write(
      'exec-plugin.mjs',
      `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-plugin' } }));`,
    );
    const path = write(
      'exec.yaml',
      kubeconfig({
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: process.execPath,
            args: [plugin],
            interactiveMode: 'Never',
          },
        },
      }),
    );
    const access = await loadClusterAccess({ kubeconfig: path });
    expect(access.source).toMatch(/exec plugin or auth provider/);
    expect((await applied(access)).headers).toMatchObject({ Authorization: 'Bearer from-plugin' });
  });

  it.each([
    ['no current-context', { current: '' }, /has no current-context: run kubectl config use-context NAME/],
    ['an undefined context', { current: 'other' }, /current-context "other" is not defined/],
    ['a cluster without server', { cluster: { server: '' } }, /cluster "test" has no server/],
    ['a server that is no URL', { cluster: { server: 'not a url' } }, /server "not a url" is not a URL/],
    [
      'a certificate without key',
      { user: { 'client-certificate-data': 'Q0VSVA==' } },
      /needs both a client certificate and a client key/,
    ],
    [
      'a missing CA file',
      { cluster: { 'certificate-authority': 'nope/ca.crt' } },
      /cannot read .*nope\/ca\.crt/,
    ],
    [
      'a proxy-url',
      { cluster: { 'proxy-url': 'http://proxy:3128' } },
      /proxy-url, which authprobe does not support/,
    ],
  ])('rejects %s with a message that says what to fix', async (_what, opts, message) => {
    const path = write(`bad-${_what.replace(/\W+/g, '-')}.yaml`, kubeconfig(opts));
    expect((await loadError(loadClusterAccess({ kubeconfig: path }))).message).toMatch(message);
  });

  it('says where it looked when there is no cluster at all, and never echoes a token from bad YAML', async () => {
    const none = await loadError(
      loadClusterAccess({ env: {}, home: join(dir, 'empty-home'), serviceAccountDir: join(dir, 'no-sa') }),
    );
    expect(none.message).toMatch(/set KUBECONFIG \(or --kubeconfig\)/);
    const broken = write('broken.yaml', `users:\n- name: u\n  user:\n    token: ${TOKEN}\n   bad: indent\n`);
    const err = await loadError(loadClusterAccess({ kubeconfig: broken }));
    expect(err.message).toMatch(/is not valid YAML/);
    expect(err.message).not.toContain('secret-part');
  });
});

describe('loadClusterAccess in a pod', () => {
  it('uses the service account files and the KUBERNETES_SERVICE_* address', async () => {
    const sa = join(dir, 'sa');
    write('sa/token', 'pod-token');
    write('sa/ca.crt', 'POD CA');
    write('sa/namespace', 'authprobe-system');
    const access = await loadClusterAccess({
      env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
      serviceAccountDir: sa,
      home: join(dir, 'empty-home'),
    });
    expect(access.server.href).toBe('https://[fd00::1]/');
    expect(access.namespace).toBe('authprobe-system');
    const o = await applied(access);
    expect(String(o.ca)).toBe('POD CA');
    expect(o.headers).toMatchObject({ Authorization: 'Bearer pod-token' });
  });

  it('prefers KUBECONFIG over the in-cluster account, as controller-runtime does', async () => {
    const path = write('prefer.yaml', kubeconfig({ cluster: { server: 'https://chosen:6443' } }));
    const access = await loadClusterAccess({
      env: { KUBECONFIG: path, KUBERNETES_SERVICE_HOST: '10.96.0.1' },
      serviceAccountDir: join(dir, 'sa'),
    });
    expect(access.server.host).toBe('chosen:6443');
  });
});
