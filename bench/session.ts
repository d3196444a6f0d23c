/**
 * One benchmark run: prepare the cluster, run the chosen phases in order (a failed phase is recorded
 * and the next one runs), clean up, and write the report.
 */
import path from 'node:path';
import { apiAgent, SERVER } from './lib/apiserver.ts';
import { log } from './lib/log.ts';
import { machine } from './lib/machine.ts';
import { deleteCreatedNamespaces } from './lib/namespaces.ts';
import { operatorLogFiles, stopOperators } from './lib/operator.ts';
import { readClockTicks } from './lib/proc.ts';
import { buildDistIfMissing, buildProbeImage, installCrd } from './lib/setup.ts';
import { PHASES, type Options, type Phase } from './options.ts';
import type { PhaseContext } from './phases/context.ts';
import { phaseCost } from './phases/cost.ts';
import { phaseHeal } from './phases/heal.ts';
import { phaseIdle } from './phases/idle.ts';
import { phaseLimit } from './phases/limit.ts';
import { phaseMemory } from './phases/memory.ts';
import { phaseMissing } from './phases/missing.ts';
import { phaseScale } from './phases/scale.ts';
import { phaseSoak } from './phases/soak.ts';
import { phaseWrites } from './phases/writes.ts';
import type { Errors, ReportDocument, Results } from './report/document.ts';
import { printReport, writeReport } from './report/files.ts';
import { judge } from './report/targets.ts';

const PHASE_RUNS: Record<Phase, (ctx: PhaseContext) => Promise<void>> = {
  limit: phaseLimit,
  cost: phaseCost,
  scale: phaseScale,
  memory: phaseMemory,
  missing: phaseMissing,
  writes: phaseWrites,
  idle: phaseIdle,
  soak: phaseSoak,
  heal: phaseHeal,
};

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Runs the benchmark; resolves to the exit code (1 when anything failed). */
export async function runBench({ mode, only, sizes, resultsDir }: Options): Promise<number> {
  const startedAt = new Date();
  const results: Results = {};
  const errors: Errors = {};
  let image = '';
  let cleaning = false;
  const cleanup = async (): Promise<void> => {
    if (cleaning) return;
    cleaning = true;
    await stopOperators();
    await deleteCreatedNamespaces();
    apiAgent.destroy();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping operators and deleting bench namespaces`);
      void cleanup().then(() => process.exit(130));
    });
  }
  log(`mode ${mode}, phases ${only.join(', ')}, apiserver ${SERVER.host}`);
  try {
    await readClockTicks();
    await installCrd();
    image = process.env.AUTHPROBE_TEST_IMAGE ?? '';
    if (image) await buildDistIfMissing();
    else image = await buildProbeImage();
    if (!image) throw new Error('no probe image');
    for (const phase of PHASES) {
      if (!only.includes(phase)) continue;
      log(`phase ${phase}`);
      try {
        await PHASE_RUNS[phase]({ sizes, image, results });
      } catch (err) {
        errors[phase] = message(err);
        log(`phase ${phase} failed: ${errors[phase]}`);
      }
      // each phase leaves no operator behind
      await stopOperators();
    }
  } catch (err) {
    errors.prepare = message(err);
    log(`failed: ${errors.prepare}`);
  } finally {
    await cleanup();
    const doc: ReportDocument = {
      mode,
      phases: only,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      sizes,
      machine: await machine().catch(() => ({})),
      image,
      results,
      targets: judge(results, errors, mode),
      errors,
      operatorLogs: operatorLogFiles(),
    };
    writeReport(resultsDir, doc);
    log(`wrote ${path.join(resultsDir, 'latest.json')} and latest.md`);
  }
  printReport(resultsDir);
  return Object.keys(errors).length ? 1 : 0;
}
