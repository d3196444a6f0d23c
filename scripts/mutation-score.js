// Prints the mutation score of each group of stryker.config.js (the deciding modules, the controller
// layer) from Stryker's JSON report, with one line per file, and exits 1 when a group is under its
// target. The score is Stryker's: killed and timed-out mutants over killed, timed-out, survived and
// uncovered ones; mutants that do not compile (TypeScript checker) count for nothing.
//   node scripts/mutation-score.js [reports/mutation/mutation.json]
import { readFileSync } from 'node:fs';
import { CONTROLLER, DECIDING } from '../stryker.config.js';

const GROUPS = [
  { name: 'deciding modules', files: DECIDING, target: 80 },
  { name: 'controller layer', files: CONTROLLER, target: 60 },
];

const reportPath = process.argv[2] ?? 'reports/mutation/mutation.json';
const report = JSON.parse(readFileSync(reportPath, 'utf8'));

function count(paths) {
  const c = { killed: 0, timeout: 0, survived: 0, noCoverage: 0, errors: 0 };
  for (const path of paths) {
    for (const mutant of report.files[path]?.mutants ?? []) {
      if (mutant.status === 'Killed') c.killed++;
      else if (mutant.status === 'Timeout') c.timeout++;
      else if (mutant.status === 'Survived') c.survived++;
      else if (mutant.status === 'NoCoverage') c.noCoverage++;
      else if (mutant.status === 'CompileError' || mutant.status === 'RuntimeError') c.errors++;
    }
  }
  const detected = c.killed + c.timeout;
  const valid = detected + c.survived + c.noCoverage;
  return { ...c, detected, valid, score: valid ? (100 * detected) / valid : 100 };
}

const row = (label, c) =>
  `${label.padEnd(46)} ${`${c.detected}/${c.valid}`.padStart(9)} ${c.score.toFixed(1).padStart(6)}%` +
  ` ${String(c.killed).padStart(7)} ${String(c.timeout).padStart(7)} ${String(c.survived).padStart(8)}` +
  ` ${String(c.noCoverage).padStart(6)} ${String(c.errors).padStart(6)}`;

const missing = GROUPS.flatMap((g) => g.files).filter((path) => !report.files[path]);
if (missing.length) {
  console.error(`${reportPath} has no mutants for ${missing.join(', ')}: run npm run test:mutation first.`);
  process.exit(1);
}

let failed = false;
console.log(
  `${'file'.padEnd(46)} ${'detected'.padStart(9)} ${'score'.padStart(7)} ${'killed'.padStart(7)}` +
    ` ${'timeout'.padStart(7)} ${'survived'.padStart(8)} ${'no cov'.padStart(6)} ${'errors'.padStart(6)}`,
);
for (const group of GROUPS) {
  console.log('');
  for (const path of group.files) console.log(row(path, count([path])));
  const total = count(group.files);
  const ok = total.score >= group.target;
  failed ||= !ok;
  console.log(row(`${group.name} (target ${group.target}%)`, total) + (ok ? '' : '  UNDER TARGET'));
}
console.log('');
for (const group of GROUPS) {
  const total = count(group.files);
  console.log(
    `Mutation score, ${group.name}: ${total.detected}/${total.valid} = ${total.score.toFixed(1)}% ` +
      `(target ${group.target}%; timeouts count as killed)`,
  );
}
process.exit(failed ? 1 : 0);
