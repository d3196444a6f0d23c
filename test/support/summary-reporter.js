// Jest reporter: after a run, prints the plain closing line "N passed, N failed, N skipped", and
// when AUTHPROBE_TEST_SUMMARY names a file, appends the counts there so that a script running
// several Jest invocations (npm test: unit, then cluster) can print one total at the end.
import { appendFileSync } from 'node:fs';

export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const passed = results.numPassedTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
    if (process.env.AUTHPROBE_TEST_SUMMARY) {
      appendFileSync(process.env.AUTHPROBE_TEST_SUMMARY, `${JSON.stringify({ passed, failed, skipped })}\n`);
    }
  }
}
