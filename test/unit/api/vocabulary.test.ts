/**
 * One vocabulary: every Event reason, condition reason, heal action and heal result is a constant in
 * src/api/reasons.ts. The types already refuse a string that is not in it; this test also refuses a
 * literal spelled in place (even a correct one), so that a reason is never written twice.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  EventReason,
  HealAction,
  HealProgress,
  HealReason,
  HealResult,
  ProbeReason,
} from '../../../src/api/reasons.js';

const SRC = new URL('../../../src/', import.meta.url).pathname;
const VOCABULARY_FILE = 'api/reasons.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The arguments of the call whose "(" is at `open`, split at top-level commas (quotes and nesting aware). */
function callArguments(text: string, open: number): string[] {
  const args: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = open + 1;
  for (let i = open; i < text.length; i++) {
    const c = text[i] as string;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) {
      depth--;
      if (depth === 0) {
        args.push(text.slice(start, i).trim());
        return args;
      }
    } else if (c === ',' && depth === 1) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  return args;
}

const isLiteral = (arg: string | undefined): boolean => arg !== undefined && /^['"`]/.test(arg);

/** Places where a reason, action or result is spelled as a literal instead of taken from the vocabulary. */
function literalReasons(file: string, text: string): string[] {
  const found: string[] = [];
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  for (const match of text.matchAll(/\.record\(/g)) {
    const args = callArguments(text, (match.index ?? 0) + match[0].length - 1);
    if (isLiteral(args[2])) {
      found.push(`${file}:${lineOf(match.index ?? 0)} an Event reason written as ${args[2]}`);
    }
  }
  for (const match of text.matchAll(/\b(verdict|provenInvalid|makeVerdict)\(/g)) {
    const args = callArguments(text, (match.index ?? 0) + match[0].length - 1);
    if (isLiteral(args[0]))
      found.push(`${file}:${lineOf(match.index ?? 0)} a condition reason written as ${args[0]}`);
  }
  for (const match of text.matchAll(/\b(reason|action|result|lastAction|lastResult)\s*:\s*['"`]/g)) {
    found.push(`${file}:${lineOf(match.index ?? 0)} ${match[0]}… is a literal`);
  }
  return found;
}

describe('one vocabulary', () => {
  it('no string literal reaches the event recorder, a verdict, a condition or a heal metric', () => {
    const violations = sourceFiles(SRC)
      .map((path) => ({ path, rel: relative(SRC, path) }))
      .filter(({ rel }) => rel !== VOCABULARY_FILE && !rel.startsWith('probe/'))
      .flatMap(({ path, rel }) => literalReasons(rel, readFileSync(path, 'utf8')));
    expect(violations).toEqual([]);
  });

  it('the scan finds a literal where one is written (the check above can fail)', () => {
    const sample = [
      "await recorder.record(target, 'Normal', 'SecretDeleted', `Deleted ${name}.`);",
      "return verdict('Healed', 'True', 'ok');",
      "metrics.heals.inc({ action: 'RecreateSecret', result: HealResult.Failed });",
      'return { reason: `Healed`, readyStatus: "True" };',
    ].join('\n');
    expect(literalReasons('sample.ts', sample)).toHaveLength(4);
    expect(
      literalReasons('ok.ts', 'await recorder.record(t, "Normal", EventReason.SecretDeleted, `x ${y}`);'),
    ).toEqual([]);
  });

  it('reasons are CamelCase and unique across the condition and Event vocabularies', () => {
    const all = [
      ...Object.values(ProbeReason),
      ...Object.values(HealReason),
      ...Object.values(EventReason),
      ...Object.values(HealAction),
      ...Object.values(HealProgress),
    ];
    for (const reason of all) expect(reason).toMatch(/^[A-Z][A-Za-z]+$/);
    const reasons = [
      ...Object.values(ProbeReason),
      ...Object.values(HealReason),
      ...Object.values(EventReason),
    ];
    expect(new Set(reasons).size).toBe(reasons.length);
  });

  it('heal metric results are one lower-case set', () => {
    expect(Object.values(HealResult)).toEqual(['succeeded', 'failed', 'dry-run', 'rate-limited', 'blocked']);
  });
});
