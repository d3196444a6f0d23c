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
    // How long each test file took (seconds), for .ci/run's table of where the time goes.
    const files = results.testResults.map((r) => ({
      file: r.testFilePath.replace(`${process.cwd()}/`, ''),
      seconds: Math.round((r.perfStats.end - r.perfStats.start) / 100) / 10,
    }));
    const seconds = Math.round((Date.now() - results.startTime) / 1000);
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
    if (process.env.AUTHPROBE_TEST_SUMMARY) {
      appendFileSync(
        process.env.AUTHPROBE_TEST_SUMMARY,
        `${JSON.stringify({ suite, passed, failed, skipped, seconds, files })}\n`,
      );
    }
  }
}
