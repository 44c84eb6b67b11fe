// Checks the test/steps/ files share on a finished step's folder: its JSON files, its report's
// SVG figures and its claims.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';

/** A JSON file of a step's folder. */
export const readIn = <T>(dir: string, file: string): T => JSON.parse(readFileSync(join(dir, file), 'utf8')) as T;

/** lo <= x <= hi, up to rounding. */
export const inOrder = (lo: number, x: number, hi: number) => lo <= x + 1e-9 && x <= hi + 1e-9;

/** x inside the interval iv (up to rounding). */
export const assertInInterval = (iv: number[], x: number, what: string) =>
  assert.ok(iv[0] <= x + 1e-9 && x <= iv[1] + 1e-9, `${what}: ${x} outside [${iv}]`);

/** x in [0, 1] (up to rounding). */
export const assertInUnit = (x: number, what: string) => assert.ok(x >= -1e-9 && x <= 1 + 1e-9, `${what}: ${x} not in [0, 1]`);

/**
 * At least `atLeast` figures, each an SVG file in `dir` starting with <svg and longer than
 * `minChars` characters (with a <path> in it where `path`).
 */
export function checkFigures(dir: string, report: StepReport, { atLeast = 1, minChars = 500, path = false } = {}): void {
  assert.ok(report.figures.length >= atLeast, `step ${report.step}: ${report.figures.length} figures, expected at least ${atLeast}`);
  for (const f of report.figures) {
    const p = join(dir, f.file);
    assert.ok(existsSync(p), `missing ${f.file}`);
    const svg = readFileSync(p, 'utf8');
    assert.ok(svg.startsWith('<svg') && svg.length > minChars && (!path || svg.includes('<path')), `${f.file} is a non-empty SVG`);
  }
}

/**
 * Every claim names its test and control, its estimate lies in its interval and p is in (0, 1];
 * with `finiteControl` every claim has a finite control estimate too, with `atLeastOne` there is one.
 */
export function checkClaims(report: StepReport, { atLeastOne = false, finiteControl = false } = {}): void {
  if (atLeastOne) assert.ok(report.claims.length > 0, 'claims');
  for (const c of report.claims) {
    assert.ok(c.test.length > 0 && c.control.length > 0, `claim "${c.statement}" names its test and control`);
    assert.ok(
      c.interval[0] <= c.estimate + 1e-12 && c.estimate <= c.interval[1] + 1e-12,
      `claim "${c.statement}": interval [${c.interval}] around ${c.estimate}`,
    );
    assert.ok(c.p! > 0 && c.p! <= 1, `claim "${c.statement}": p ${c.p}`);
    if (finiteControl) assert.ok(Number.isFinite(c.controlEstimate), `claim "${c.statement}": control estimate ${c.controlEstimate}`);
  }
}

/** At least one claim; each names its test and control, has an ordered interval, a finite estimate and p (where given) in [0, 1]. */
export function checkOrderedClaims(report: StepReport): void {
  assert.ok(report.claims.length > 0, `step ${report.step} states claims`);
  for (const c of report.claims) {
    assert.ok(c.test && c.control, `claim "${c.statement}" names its test and control`);
    assert.ok(c.interval[0] <= c.interval[1], `claim "${c.statement}" interval ordered`);
    assert.ok(Number.isFinite(c.estimate));
    if (c.p !== undefined) assertInUnit(c.p, 'p');
  }
}

/** report.json of `dir`: a summary, two or more SVG figures (with paths, over 1000 characters), and claims with test, control, interval, p and a finite control estimate. */
export function checkControlledReport(dir: string): StepReport {
  const report = readIn<StepReport>(dir, 'report.json');
  assert.ok(report.summary.length > 0);
  checkFigures(dir, report, { atLeast: 2, minChars: 1000, path: true });
  checkClaims(report, { atLeastOne: true, finiteControl: true });
  return report;
}

/** report.json of `dir`: step `step`'s, with a summary, SVG figures, and claims with test, control and ordered interval. */
export function checkOrderedReport(dir: string, step: number): StepReport {
  const report = readIn<StepReport>(dir, 'report.json');
  assert.is(report.step, step);
  assert.ok(report.summary.length > 0);
  checkFigures(dir, report);
  checkOrderedClaims(report);
  return report;
}
