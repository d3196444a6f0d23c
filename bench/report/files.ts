/** The report's files: latest.json, a dated copy of it, and latest.md. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ReportDocument } from './document.ts';
import { markdown } from './markdown.ts';
import { judge } from './targets.ts';

/** Writes latest.json, <startedAt>.json (colons as dashes) and latest.md into `dir`. */
export function writeReport(dir: string, doc: ReportDocument): void {
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(doc, null, 2) + '\n';
  writeFileSync(path.join(dir, 'latest.json'), json);
  writeFileSync(path.join(dir, `${String(doc.startedAt).replace(/:/g, '-')}.json`), json);
  writeFileSync(path.join(dir, 'latest.md'), markdown(doc));
}

/** Prints latest.md from `dir` to stdout. */
export function printReport(dir: string): void {
  process.stdout.write(readFileSync(path.join(dir, 'latest.md'), 'utf8'));
}

/** `--render`: rewrites latest.md (and the targets in latest.json) from latest.json, without running. */
export function render(dir: string): number {
  const doc = JSON.parse(readFileSync(path.join(dir, 'latest.json'), 'utf8')) as ReportDocument;
  doc.targets = judge(doc.results ?? {}, doc.errors ?? {}, String(doc.mode));
  writeReport(dir, doc);
  printReport(dir);
  return 0;
}
