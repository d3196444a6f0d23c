import { describe, expect, it } from '@jest/globals';
import { readCopy, rewriteCopy } from '../../../src/copies/copy-format.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const text = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
const OLD = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvbGQifQ.old-signature';
const NEW = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJuZXcifQ.new-signature';
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

// Comments, odd indentation and key order are kept byte for byte.
const KUBECONFIG = `# written by hand
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: ${b64(CA)}
contexts:
- name: ci
  context: {cluster: prod, user: deployer}
- name: other
  context: {cluster: prod, user: viewer}
current-context: ci
users:
- name: viewer
  user: {token: viewer-token}
- name: deployer
  user:
    token:    ${OLD}   # rotated by authprobe
`;

const ARGO_CONFIG = `{"bearerToken":"${OLD}","tlsClientConfig":{"insecure":false,"caData":"${b64(CA)}"}}`;

describe('reading a copied token', () => {
  it('a bare token key', () => {
    expect(readCopy({ token: b64(`${OLD}\n`) }, { format: 'Token' })).toEqual({
      ok: true,
      value: { token: OLD, where: 'data.token' },
    });
  });

  it("a kubeconfig: the current context's user, its cluster's server and CA", () => {
    const read = readCopy({ kubeconfig: b64(KUBECONFIG) }, { format: 'Kubeconfig' });
    expect(read).toEqual({
      ok: true,
      value: {
        token: OLD,
        server: 'https://10.0.0.1:6443',
        caPem: CA,
        where: 'data.kubeconfig users[deployer]',
      },
    });
  });

  it('a kubeconfig: a named user', () => {
    const read = readCopy({ kubeconfig: b64(KUBECONFIG) }, { format: 'Kubeconfig', user: 'viewer' });
    expect(read.ok && read.value.token).toBe('viewer-token');
  });

  it('an Argo CD cluster Secret', () => {
    const read = readCopy(
      { server: b64('https://10.0.0.2:7443'), name: b64('prod'), config: b64(ARGO_CONFIG) },
      { format: 'ArgoCDCluster' },
    );
    expect(read).toEqual({
      ok: true,
      value: { token: OLD, server: 'https://10.0.0.2:7443', caPem: CA, where: 'data.config bearerToken' },
    });
  });

  it.each([
    [{}, { format: 'Token' as const }, /no key "token"/],
    [{ kubeconfig: b64('a: [') }, { format: 'Kubeconfig' as const }, /not a readable kubeconfig/],
    [{ kubeconfig: b64(KUBECONFIG) }, { format: 'Kubeconfig' as const, user: 'nobody' }, /no user "nobody"/],
    [{ server: b64('https://x') }, { format: 'ArgoCDCluster' as const }, /no "config" key/],
    [{ server: b64('https://x'), config: b64('{') }, { format: 'ArgoCDCluster' as const }, /not JSON/],
  ])('says what is wrong with an unreadable copy (%#)', (data, location, message) => {
    const read = readCopy(data, location);
    expect(read.ok).toBe(false);
    expect(!read.ok && read.message).toMatch(message);
  });
});

describe('rewriting a copied token', () => {
  it('a kubeconfig: only the token changes, every other byte stays', () => {
    const data = { kubeconfig: b64(KUBECONFIG), other: b64('untouched') };
    const out = rewriteCopy(data, { format: 'Kubeconfig' }, NEW);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(text(out.value['kubeconfig'])).toBe(KUBECONFIG.replace(OLD, NEW));
    expect(out.value['other']).toBe(data.other);
  });

  it('an Argo CD cluster Secret: only bearerToken changes', () => {
    const data = { server: b64('https://10.0.0.2:7443'), name: b64('prod'), config: b64(ARGO_CONFIG) };
    const out = rewriteCopy(data, { format: 'ArgoCDCluster' }, NEW);
    expect(out.ok && text(out.value['config'])).toBe(ARGO_CONFIG.replace(OLD, NEW));
    expect(out.ok && out.value['server']).toBe(data.server);
  });

  it('refuses when the token occurs twice (which one is the copy?) or the new token is not a JWT', () => {
    const twice = KUBECONFIG.replace('viewer-token', OLD);
    expect(rewriteCopy({ kubeconfig: b64(twice) }, { format: 'Kubeconfig' }, NEW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/exactly once/),
    });
    expect(rewriteCopy({ token: b64(OLD) }, { format: 'Token' }, 'not a token\n')).toMatchObject({
      ok: false,
    });
  });
});
