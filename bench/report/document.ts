import type { Mode, Phase, Sizes } from '../options.ts';
import type { Target } from './targets.ts';

/** What each phase measured, by phase name (the shape is each phase's own; see bench/phases/). */
export type Results = Record<string, unknown>;
/** Error messages by phase name, or "prepare". */
export type Errors = Record<string, string>;

/** latest.json. */
export interface ReportDocument {
  mode: Mode;
  phases: Phase[];
  startedAt: string;
  finishedAt: string;
  sizes: Sizes;
  machine: Record<string, unknown>;
  image: string;
  results: Results;
  targets: Target[];
  errors: Errors;
  operatorLogs: string[];
}
