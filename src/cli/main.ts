#!/usr/bin/env node
import { operatorCommand } from '../operator/run.js';
import { probeCommand } from '../probe/program.js';
import { checkCommand } from './check.js';

const USAGE = `usage: authprobe <command> [options]

commands:
  operator   run the operator (the default inside the operator image)
  probe      run one probe inside a probe pod and write the result to the termination message
  check      run the probe once from a workstation: authprobe check -n NS --service-account SA [--secret NAME]

Run a command with --help for its options.`;

/** One binary, three roles; the probe pod and the operator use the same image. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'operator':
      return operatorCommand(rest);
    case 'probe':
      return probeCommand(rest);
    case 'check':
      return checkCommand(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 64 : 0;
    default:
      process.stderr.write(`authprobe: unknown command "${command}"\n${USAGE}\n`);
      return 64;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`authprobe: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
