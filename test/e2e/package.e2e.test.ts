/**
 * The npm package as a user gets it: `npm pack` (its prepack script builds dist/), the tarball
 * installed with `npm install <tarball>` into an empty folder (dependencies from the registry, no
 * dev dependencies), then the installed `authprobe check --help`, and `kubectl authprobe check`
 * (kubectl finds the installed `kubectl-authprobe` on PATH and runs it as its plugin) against the
 * cluster in KUBECONFIG, for a ServiceAccount and a token Secret in this test's own namespace.
 *
 * The installed CLI runs on the Node.js that runs this test (Node 24 under `npm run`, whatever the
 * machine's own node is): its directory comes right after the installed bins on PATH.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  REPO,
  apply,
  createLegacyTokenSecret,
  createNamespace,
  deleteNamespace,
} from '../support/cluster.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const { version } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };

let work: string; // the tarball and the install folder, removed afterwards
let bin: string; // <install prefix>/node_modules/.bin
let ns: string | undefined;

/**
 * The environment of every command here: the installed bins first (so kubectl finds the plugin),
 * then this Node.js, then the rest of PATH. What `npm run` and jest set for themselves (npm_*,
 * INIT_CWD, NODE_OPTIONS) is left out: the commands see a user's plain environment.
 */
function env(): NodeJS.ProcessEnv {
  const plain = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^npm_/i.test(key) && key !== 'INIT_CWD' && key !== 'NODE_OPTIONS',
    ),
  );
  const dirs = [bin, path.dirname(process.execPath), process.env.PATH].filter(Boolean);
  return { ...plain, PATH: dirs.join(path.delimiter) };
}

/** Runs a program (no shell) and resolves with its exit code and output, whatever the code. */
function exec(cmd: string, args: string[], cwd = REPO): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Like exec, but a non-zero exit is an error that shows the output. */
async function mustExec(cmd: string, args: string[], cwd = REPO): Promise<Result> {
  const result = await exec(cmd, args, cwd);
  if (result.code !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${result.code}\n${result.stderr.slice(-4000)}\n${result.stdout.slice(-2000)}`,
    );
  return result;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'authprobe-package-'));
  await mustExec('npm', ['pack', '--pack-destination', work]);
  const tarballs = (await readdir(work)).filter((f) => f.endsWith('.tgz'));
  expect(tarballs).toEqual([`authprobe-${version}.tgz`]);
  const prefix = path.join(work, 'install');
  await mkdir(prefix);
  await mustExec(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefix', prefix, path.join(work, tarballs[0] as string)],
    prefix,
  );
  bin = path.join(prefix, 'node_modules', '.bin');
}, 300_000);

afterAll(async () => {
  if (ns) await deleteNamespace(ns);
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('the npm package', () => {
  it('holds the built CLI, package.json and the README, and installs without dev dependencies', async () => {
    const listing = await mustExec('tar', ['-tzf', path.join(work, `authprobe-${version}.tgz`)]);
    const files = listing.stdout.trim().split('\n');
    expect(files).toEqual(
      expect.arrayContaining(['package/package.json', 'package/README.md', 'package/dist/cli/main.js']),
    );
    expect(
      files.filter((f) => !/^package\/(dist\/.+\.js|package\.json|README\.md|LICENSE[^/]*)$/.test(f)),
    ).toEqual([]);
    const installed = path.join(path.dirname(bin), 'authprobe');
    const main = path.join(installed, 'dist/cli/main.js');
    expect((await stat(main)).mode & 0o111).toBe(0o111);
    expect((await readFile(main, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    const modules = await readdir(path.dirname(bin));
    for (const dev of ['jest', 'typescript', 'eslint', 'node', 'ts-jest']) expect(modules).not.toContain(dev);
    for (const dep of ['prom-client', 'pino', '@kubernetes']) expect(modules).toContain(dep);
  }, 30_000);

  it('`authprobe check --help` prints the usage and exits 0; --version prints the version', async () => {
    const help = await exec(path.join(bin, 'authprobe'), ['check', '--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage: authprobe check -n NAMESPACE --service-account NAME/);
    expect(await exec(path.join(bin, 'authprobe'), ['--version'])).toEqual({
      code: 0,
      stdout: `${version}\n`,
      stderr: '',
    });
    const plugin = await exec(path.join(bin, 'kubectl-authprobe'), ['check', '--help']);
    expect(plugin).toMatchObject({ code: 0, stderr: '' });
    expect(plugin.stdout).toMatch(/^usage: kubectl authprobe check -n NAMESPACE/);
  }, 30_000);

  it('`kubectl authprobe check` runs the installed plugin against the cluster: the token authenticates', async () => {
    ns = await createNamespace('ap-package');
    await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: ns } });
    await createLegacyTokenSecret(ns, 'app', 'app-token');

    const secret = await exec('kubectl', [
      'authprobe',
      'check',
      '-n',
      ns,
      '--service-account',
      'app',
      '--secret',
      'app-token',
    ]);
    expect(secret).toMatchObject({ code: 0, stderr: '' });
    expect(secret.stdout).toMatch(/verdict: Authenticated \(Ready=True\)/);

    const projected = await exec('kubectl', [
      'authprobe',
      'check',
      '-n',
      ns,
      '--service-account',
      'app',
      '-o',
      'json',
    ]);
    expect(projected).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(projected.stdout) as { verdict: { reason: string } }).verdict.reason).toBe(
      'Authenticated',
    );
  }, 120_000);
});
