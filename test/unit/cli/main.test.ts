/**
 * The CLI's argument handling without a cluster: --help and --version of every command (usage on
 * stdout, exit 0), usage errors (stderr, exit 64), the name shown when run as a kubectl plugin, and
 * the package fields that make `npm install` give both commands.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { main, packageVersion, programName } from '../../../src/cli/main.js';
import { checkCommand } from '../../../src/cli/check.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  private?: boolean;
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
  engines: { node: string };
};

function capture() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) },
  };
}

async function run(argv: string[], prog?: string) {
  const { out, io } = capture();
  const code = await main(argv, io, prog);
  return { code, ...out };
}

afterEach(() => {
  jest.restoreAllMocks();
});

describe('authprobe --help', () => {
  it.each([['--help'], ['-h'], ['help']])(
    '%s prints the command list on stdout and exits 0',
    async (flag) => {
      const r = await run([flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^usage: authprobe <command> \[options\]\n/);
      for (const command of ['operator', 'probe', 'check']) expect(r.stdout).toContain(`  ${command} `);
    },
  );

  it('without a command prints the usage on stderr and exits 64', async () => {
    const r = await run([]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^usage: authprobe <command>/);
  });

  it('an unknown command is a usage error', async () => {
    const r = await run(['chek', '--help']);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^authprobe: unknown command "chek"\nusage: /);
  });
});

describe('check --help', () => {
  it.each([[['check', '--help']], [['check', '-h']], [['help', 'check']], [['check', '-n', 'ns', '--help']]])(
    '%j prints the check usage on stdout and exits 0',
    async (argv) => {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^usage: authprobe check -n NAMESPACE --service-account NAME /);
      expect(r.stdout).toContain('Exit codes: 0 the token authenticates');
    },
  );

  it('checkCommand itself answers --help', async () => {
    const { out, io } = capture();
    expect(await checkCommand(['--help'], io)).toBe(0);
    expect(out.stdout).toMatch(/^usage: authprobe check /);
  });

  it('uses the name it was run as', async () => {
    const r = await run(['check', '--help'], 'kubectl authprobe');
    expect(r.stdout).toMatch(/^usage: kubectl authprobe check -n NAMESPACE /);
    const top = await run(['--help'], 'kubectl authprobe');
    expect(top.stdout).toMatch(/^usage: kubectl authprobe <command>/);
    expect(top.stdout).toContain('kubectl authprobe check -n NS');
  });
});

describe('check usage errors exit 64 with the usage on stderr, before any cluster access', () => {
  it.each([
    [['check', '--bogus'], "Unknown option '--bogus'"],
    [['check'], '--service-account is required'],
    [['check', 'positional'], 'Unexpected argument'],
  ])('%j', async (argv, message) => {
    const r = await run(argv, 'kubectl authprobe');
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`kubectl authprobe check: ${message}`);
    expect(r.stderr).toContain('usage: kubectl authprobe check ');
  });

  it.each([
    [['check', '--service-account', 'sa', '-o', 'yaml'], '--output must be text or json'],
    [['check', '--service-account', 'sa', '--timeout', 'soon'], '--timeout "soon" is not a duration'],
  ])('%j', async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
  });
});

describe('--version', () => {
  it('is the version in package.json', () => {
    expect(packageVersion()).toBe(pkg.version);
  });

  it.each([
    [['--version']],
    [['check', '--version']],
    [['check', '-n', 'ns', '--version']],
    [['operator', '--version']],
    [['probe', '--version']],
  ])('%j prints it and exits 0', async (argv) => {
    const r = await run(argv);
    expect(r).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });
});

describe('the other commands', () => {
  it('probe --help prints its usage and exits 0', async () => {
    const r = await run(['probe', '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^usage: authprobe probe \[--path \/api\]/);
  });

  it('operator --help prints its settings on stdout and exits 0', async () => {
    let written = '';
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written += String(chunk);
      return true;
    });
    const r = await run(['operator', '--help']);
    expect(r.code).toBe(0);
    expect(written).toMatch(/^usage: authprobe operator /);
  });
});

describe('programName', () => {
  it.each([
    ['/usr/local/bin/authprobe', 'authprobe'],
    ['/prefix/node_modules/.bin/authprobe', 'authprobe'],
    ['/app/dist/cli/main.js', 'authprobe'],
    ['/usr/local/bin/kubectl-authprobe', 'kubectl authprobe'],
    ['/bin/kubectl-auth_probe-check', 'kubectl auth-probe check'],
    ['/bin/kubectl-', 'authprobe'],
    [undefined, 'authprobe'],
  ])('%s runs as %s', (script, name) => {
    expect(programName(script)).toBe(name);
  });
});

describe('the npm package', () => {
  it('is installable, with both commands pointing at the built CLI', () => {
    expect(pkg.private).toBeUndefined();
    expect(pkg.bin).toEqual({ authprobe: 'dist/cli/main.js', 'kubectl-authprobe': 'dist/cli/main.js' });
    expect(pkg.files).toEqual(['dist/**/*.js']);
    expect(pkg.scripts.prepack).toContain('npm run build');
    expect(pkg.scripts.build).toContain("chmodSync('dist/cli/main.js', 0o755)");
    expect(pkg.engines.node).toMatch(/^>=24/);
  });

  it('the CLI source starts with a node shebang (tsc keeps it in dist/cli/main.js)', () => {
    const source = readFileSync(new URL('../../../src/cli/main.ts', import.meta.url), 'utf8');
    expect(source.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});

describe('authprobe check exit codes', () => {
  it('exits 2 (undecided) and says so when the apiserver cannot be reached', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'authprobe-cli-'));
    const kubeconfig = join(dir, 'config');
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: x, cluster: {server: "https://127.0.0.1:1"}}]',
        'users: [{name: u, user: {token: not-a-real-token}}]',
        'contexts: [{name: x, context: {cluster: x, user: u}}]',
        'current-context: x',
        '',
      ].join('\n'),
    );
    for (const extra of [[], ['--secret', 'app-token']]) {
      const r = await run([
        'check',
        '-n',
        'default',
        '--service-account',
        'app',
        '--kubeconfig',
        kubeconfig,
        ...extra,
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/undecided, the apiserver https:\/\/127\.0\.0\.1:1 was not reached/);
      expect(r.stderr).not.toContain('not-a-real-token');
    }
  });
});
