#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { operatorCommand } from '../operator/run.js';
import { PROBE_USAGE, probeCommand } from '../probe/program.js';
import { checkCommand, type CheckIo } from './check.js';

const usage = (prog: string) => `usage: ${prog} <command> [options]

commands:
  operator   run the operator (the default inside the operator image)
  probe      run one probe inside a probe pod and write the result to the termination message
  check      run the probe once from a workstation: ${prog} check -n NS --service-account SA [--secret NAME]

Run a command with --help for its options; --version prints the version.`;

const defaultIo: CheckIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

/** The version in package.json (next to dist/ in the image, the npm package and a checkout). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * The name to show in usage: `kubectl authprobe` when kubectl ran this as its plugin
 * `kubectl-authprobe` (kubectl maps `kubectl-a-b` to `kubectl a b`, and `_` to `-`), else `authprobe`.
 */
export function programName(script: string | undefined): string {
  const base = path.basename(script ?? '');
  if (!base.startsWith('kubectl-') || base === 'kubectl-') return 'authprobe';
  return `kubectl ${base.slice('kubectl-'.length).split('-').join(' ').replaceAll('_', '-')}`;
}

const COMMANDS = ['operator', 'probe', 'check'];

/** True when `flag` is among the options (before a `--`). */
function has(argv: string[], ...flags: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) => flags.includes(arg));
}

/** One binary, three roles; the probe pod and the operator use the same image. */
export async function main(argv: string[], io: CheckIo = defaultIo, prog = 'authprobe'): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || (COMMANDS.includes(command ?? '') && has(rest, '--version'))) {
    io.stdout(`${packageVersion()}\n`);
    return 0;
  }
  switch (command) {
    case 'operator':
      // Its --help lists every setting with its environment variable (stdout, exit 0).
      return operatorCommand(rest);
    case 'probe':
      if (has(rest, '--help', '-h')) {
        io.stdout(`${PROBE_USAGE}\n`);
        return 0;
      }
      return probeCommand(rest);
    case 'check':
      return checkCommand(rest, io, prog);
    case 'help':
      // `help <command>` is `<command> --help`.
      return rest[0] ? main([rest[0], '--help'], io, prog) : main(['--help'], io, prog);
    case '--help':
    case '-h':
      io.stdout(`${usage(prog)}\n`);
      return 0;
    case undefined:
      io.stderr(`${usage(prog)}\n`);
      return 64;
    default:
      io.stderr(`${prog}: unknown command "${command}"\n${usage(prog)}\n`);
      return 64;
  }
}

/** Run only as the program (node dist/cli/main.js, the npm bin links), never when imported by a test. */
function isProgram(): boolean {
  const meta = import.meta as { main?: boolean };
  if (typeof meta.main === 'boolean') return meta.main; // Node >= 24.2
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isProgram()) {
  const prog = programName(process.argv[1]);
  main(process.argv.slice(2), defaultIo, prog).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${prog}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 70;
    },
  );
}
