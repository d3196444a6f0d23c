/** The command line: mode, phases, and the sizes each mode measures with. */
import os from 'node:os';
import path from 'node:path';
import { REPO } from './lib/repo.ts';

// heal last: it rotates the signing key, which breaks every legacy token secret made before it.
export const PHASES = [
  'limit',
  'cost',
  'scale',
  'memory',
  'missing',
  'writes',
  'idle',
  'soak',
  'heal',
] as const;
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
  /** AuthProbes whose ServiceAccount never exists (half check Pod, half check TokenReview). */
  missingProbes: number;
  missingIntervalS: number;
  /** How long their requests are counted, minute by minute, from their creation. */
  missingWindowS: number;
  /** TokenReview-checked AuthProbes on one valid token secret, for the status writes per hour. */
  writesProbes: number;
  writesIntervalS: number;
  writesWindowS: number;
  /** TokenReview-checked AuthProbes (interval 1h) whose operator is measured while it has nothing due. */
  idleProbes: number;
  /** The valid token secrets they share. */
  idleSecrets: number;
  /** From every first verdict to the start of the idle window. */
  idleWaitS: number;
  idleWindowS: number;
  /** Secret-sourced AuthProbes healed after the key rotation (half check Pod, half check TokenReview). */
  healProbes: number;
  healIntervalS: number;
  /** How long after the rotation the heals are waited for; a probe not healed by then counts as not healed. */
  healWaitS: number;
  /** AuthProbes created, checked once and deleted in each soak cycle (half check TokenReview). */
  soakProbes: number;
  /** How long new cycles are started for. */
  soakSeconds: number;
  /**
   * From the warm-up cycle to the warm measurement and from the last cycle to the end one: long enough
   * for V8's memory reducer (it gives emptied heap pages back about 100 s after the last full GC).
   */
  soakSettleS: number;
  /** How long a cycle waits for the operator to let its deleted AuthProbes go (then the soak goes on). */
  soakDrainTimeoutS: number;
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
    missingProbes: 200,
    missingIntervalS: 300,
    missingWindowS: 720,
    writesProbes: 50,
    writesIntervalS: 10,
    writesWindowS: 600,
    idleProbes: 1000,
    idleSecrets: 10,
    idleWaitS: 30,
    idleWindowS: 60,
    healProbes: 100,
    healIntervalS: 3600,
    healWaitS: 600,
    soakProbes: 1000,
    soakSeconds: 1200,
    soakSettleS: 180,
    soakDrainTimeoutS: 180,
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
    missingProbes: 50,
    missingIntervalS: 120,
    missingWindowS: 360,
    writesProbes: 50,
    writesIntervalS: 10,
    writesWindowS: 180,
    idleProbes: 1000,
    idleSecrets: 10,
    idleWaitS: 30,
    idleWindowS: 60,
    healProbes: 100,
    healIntervalS: 3600,
    healWaitS: 300,
    soakProbes: 1000,
    soakSeconds: 1200,
    soakSettleS: 180,
    soakDrainTimeoutS: 180,
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
    missingProbes: 5,
    missingIntervalS: 120,
    missingWindowS: 120,
    writesProbes: 5,
    writesIntervalS: 10,
    writesWindowS: 30,
    idleProbes: 20,
    idleSecrets: 2,
    idleWaitS: 30,
    idleWindowS: 15,
    healProbes: 2,
    healIntervalS: 3600,
    healWaitS: 120,
    soakProbes: 20,
    soakSeconds: 60,
    soakSettleS: 15,
    soakDrainTimeoutS: 60,
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
