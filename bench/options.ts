/** The command line: mode, phases, and the sizes each mode measures with. */
import os from 'node:os';
import path from 'node:path';
import { REPO } from './lib/repo.ts';

export const PHASES = ['limit', 'cost', 'scale', 'memory', 'heal'] as const;
export type Phase = (typeof PHASES)[number];

export type Mode = 'full' | 'quick' | 'small';

export interface Sizes {
  limitSeconds: number;
  limitConcurrency: number;
  /** AuthProbes with check TokenReview, each checked once, for the operator's check throughput. */
  limitProbes: number;
  /** Of those, how many go through the counting proxy for requests per check. */
  limitCountedProbes: number;
  costProbes: number;
  costIntervalS: number;
  costWindowS: number;
  costBaselineS: number;
  scaleProbes: number;
  scalePodProbes: number;
  memorySecrets: number;
  healProbes: number;
  healIntervalS: number;
}

const SIZES: Record<Mode, Sizes> = {
  full: {
    limitSeconds: 10,
    limitConcurrency: 8,
    limitProbes: 2000,
    limitCountedProbes: 200,
    costProbes: 10,
    costIntervalS: 15,
    costWindowS: 300,
    costBaselineS: 120,
    scaleProbes: 1000,
    scalePodProbes: 50,
    memorySecrets: 10_000,
    healProbes: 30,
    healIntervalS: 20,
  },
  quick: {
    limitSeconds: 10,
    limitConcurrency: 8,
    limitProbes: 1000,
    limitCountedProbes: 100,
    costProbes: 10,
    costIntervalS: 15,
    costWindowS: 120,
    costBaselineS: 60,
    scaleProbes: 100,
    scalePodProbes: 50,
    memorySecrets: 10_000,
    healProbes: 10,
    healIntervalS: 20,
  },
  small: {
    limitSeconds: 2,
    limitConcurrency: 2,
    limitProbes: 20,
    limitCountedProbes: 10,
    costProbes: 3,
    costIntervalS: 15,
    costWindowS: 45,
    costBaselineS: 30,
    scaleProbes: 10,
    scalePodProbes: 3,
    memorySecrets: 300,
    healProbes: 2,
    healIntervalS: 20,
  },
};

export interface Options {
  mode: Mode;
  /** The phases to run (--only=...: unknown names are dropped), always in PHASES order. */
  only: Phase[];
  sizes: Sizes;
  /** Where latest.json, latest.md and the dated copy go. */
  resultsDir: string;
  /** --render: rewrite latest.md and the targets from latest.json, without running anything. */
  render: boolean;
  /** Arguments that are not options: the usage error names them. */
  unknown: string[];
}

export function parseOptions(argv: string[]): Options {
  const small = argv.includes('--small');
  const mode: Mode = small ? 'small' : argv.includes('--quick') ? 'quick' : 'full';
  const onlyArg = argv.find((a) => a.startsWith('--only='));
  return {
    mode,
    only: onlyArg
      ? (onlyArg
          .slice('--only='.length)
          .split(',')
          .filter((p) => (PHASES as readonly string[]).includes(p)) as Phase[])
      : [...PHASES],
    sizes: SIZES[mode],
    // --small only tries the bench out: its meaningless figures stay out of the repository.
    resultsDir: small ? path.join(os.tmpdir(), 'authprobe-bench-small') : path.join(REPO, 'bench/results'),
    render: argv.includes('--render'),
    unknown: argv.filter((a) => !['--quick', '--small', '--render'].includes(a) && !a.startsWith('--only=')),
  };
}

export const usage = (unknown: string[]): string =>
  `usage: npm run bench -- [--quick|--small] [--only=${PHASES.join(',')}]\nunknown: ${unknown.join(' ')}\n`;
