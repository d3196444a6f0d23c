// StrykerJS: mutation testing of the modules that decide (verdicts, schedule, status, heal policy) and
// of the controller layer that acts on their decisions (reconciler, healer, heal procedures), against
// the unit suite alone. `npm run test:mutation` runs it and prints one score per group
// (scripts/mutation-score.ts); test/MUTATION.md explains the survivors that guard a delete.

/** Pure functions that turn facts into a verdict, a schedule, a status or a heal decision. */
export const DECIDING = [
  'src/checks/pod/classify.ts',
  'src/checks/token-review/classify.ts',
  'src/checks/provenance.ts',
  'src/controller/schedule.ts',
  'src/controller/settle.ts',
  'src/controller/status.ts',
  'src/api/conditions.ts',
  'src/heal/policy.ts',
  'src/heal/rewrites.ts',
  'src/heal/evidence.ts',
];

/** What acts on those decisions through the Kubernetes API (tested against test/unit/support/fake-kube.ts). */
export const CONTROLLER = [
  'src/controller/authprobe-reconciler.ts',
  'src/heal/secret-healer.ts',
  'src/heal/procedures/replace-token-secret.ts',
  'src/heal/procedures/remove-invalid-label.ts',
  'src/heal/intent.ts',
  'src/heal/canary.ts',
  'src/heal/budget.ts',
];

export default {
  $schema: './node_modules/@stryker-mutator/core/schema/stryker-schema.json',
  mutate: [...DECIDING, ...CONTROLLER],
  testRunner: 'jest',
  // Jest runs the unit tests as ES modules (ts-jest useESM), which needs Node's VM modules.
  testRunnerNodeArgs: ['--experimental-vm-modules'],
  jest: { projectType: 'custom', configFile: 'stryker.jest.config.js' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  coverageAnalysis: 'perTest',
  // Two cores, shared with the cluster tests: one Jest runner per core (and one TypeScript checker).
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowEmojis: false, logTests: false, reportTests: false, reportMutants: false },
  // The sandbox (.stryker-tmp) and the incremental file (reports/) are git-ignored.
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  tempDirName: '.stryker-tmp',
  thresholds: { high: 80, low: 60, break: null },
};
