// Jest reporter: after a run, prints the plain closing line "N passed, N failed, N skipped", and
// when AUTHPROBE_TEST_SUMMARY names a file, appends the counts there so that a script running
// several Jest invocations (npm test: unit, then cluster) can print one total at the end.
import { appendFileSync } from 'node:fs';

export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    // Which run this is (the Jest project of its test files: unit or cluster), for .ci/run's total.
    const projects = new Set(results.testResults.map((r) => r.displayName?.name).filter(Boolean));
    const suite = [...projects].sort().join(',') || 'none';
    const passed = results.numPassedTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
    if (process.env.AUTHPROBE_TEST_SUMMARY) {
      appendFileSync(
        process.env.AUTHPROBE_TEST_SUMMARY,
        `${JSON.stringify({ suite, passed, failed, skipped })}\n`,
      );
    }
  }
}
