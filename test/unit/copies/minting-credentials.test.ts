import { describe, expect, it } from '@jest/globals';
import type https from 'node:https';
import { mintingAccess } from '../../../src/copies/minting-credentials.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const kubeconfig = (
  user: string,
  cluster = `server: https://10.244.0.1:6444\n    certificate-authority-data: ${b64('CA')}`,
) =>
  b64(`apiVersion: v1
clusters:
- name: second
  cluster:
    ${cluster}
users:
- name: minter
  user:
    ${user}
contexts:
- name: x
  context: {cluster: second, user: minter}
current-context: x
`);

describe('the credential for minting on another cluster', () => {
  it('reads a server, its CA and a client certificate, and applies only those', async () => {
    const read = mintingAccess(
      {
        kubeconfig: kubeconfig(`client-certificate-data: ${b64('CERT')}\n    client-key-data: ${b64('KEY')}`),
      },
      'minter',
    );
    expect(read.ok).toBe(true);
    if (!read.ok) return;
    expect(read.value.server.origin).toBe('https://10.244.0.1:6444');
    const options: https.RequestOptions = {};
    await read.value.apply(options);
    expect(String(options.ca)).toBe('CA');
    expect(String(options.cert)).toBe('CERT');
    expect(options.headers).toBeUndefined();
  });

  it('reads a bearer token', async () => {
    const read = mintingAccess({ kubeconfig: kubeconfig('token: abc.def.ghi') }, 'minter');
    const options: https.RequestOptions = {};
    if (read.ok) await read.value.apply(options);
    expect(options.headers).toEqual({ Authorization: 'Bearer abc.def.ghi' });
  });

  it.each([
    [
      'an exec plugin',
      'exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}',
      undefined,
      /uses exec/,
    ],
    [
      'a token file',
      'tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token',
      undefined,
      /uses tokenFile/,
    ],
    [
      'a CA file',
      'token: x',
      'server: https://10.0.0.1:6443\n    certificate-authority: /etc/ssl/ca.pem',
      /uses certificate-authority/,
    ],
    [
      'no TLS verification',
      'token: x',
      'server: https://10.0.0.1:6443\n    insecure-skip-tls-verify: true',
      /uses insecure-skip-tls-verify/,
    ],
    ['plain http', 'token: x', 'server: http://10.0.0.1:6443', /not https/],
    ['no credential', 'username: admin', undefined, /uses username/],
  ])('refuses %s', (_what, user, cluster, message) => {
    const read = mintingAccess({ kubeconfig: kubeconfig(user, cluster) }, 'minter');
    expect(read.ok).toBe(false);
    expect(!read.ok && read.message).toMatch(message);
  });
});
