// Reading and writing the per-step report records (report.json + SVG figures), applying the run-wide
// correction to their claims, and assembling them into the run's report.html and report.md (step 12,
// and the runner after steps 13-14).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { correctFamily } from '../interp/claims.ts';
import {
  buildHtml,
  type Claim,
  buildMarkdown,
  renderSvg,
  type FigureRef,
  type ReportMeta,
  type Spec,
  type StepReport,
  uniqueSvgIds,
} from '../interp/report/index.ts';
import { writeAtomic, writeJsonAtomic } from './files.ts';
import { gateNote } from './models.ts';
import type { StepContext } from './step.ts';
import { stepInfo } from './table.ts';

// the steps that study step 1's models (through steps/models.ts): their pages say which models the
// learning gate left out
const FIRST_ANALYSIS = stepInfo('collect').id;
const LAST_ANALYSIS = stepInfo('transfer').id;

/** Renders a spec to `figures/<name>.svg` in the step's folder and returns its reference. */
export async function saveFigure(ctx: StepContext, name: string, spec: Spec, title: string, caption: string): Promise<FigureRef> {
  const svg = await renderSvg(spec);
  ctx.writeText(`figures/${name}.svg`, svg);
  return { file: `figures/${name}.svg`, title, caption };
}

export function saveReport(ctx: StepContext, report: StepReport): void {
  const note = report.step >= FIRST_ANALYSIS && report.step <= LAST_ANALYSIS ? gateNote(ctx) : null;
  if (note && !report.notes.includes(note)) report.notes.unshift(note);
  ctx.writeJson('report.json', report);
}

export interface LoadedReport {
  report: StepReport;
  dir: string;
  seconds: number;
}

/** Every finished step's report in the run directory, in step order. */
export function loadReports(runDir: string): LoadedReport[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .filter(
      (d) => /^step-\d\d-[a-z0-9_-]+$/.test(d) && existsSync(join(runDir, d, 'done.json')) && existsSync(join(runDir, d, 'report.json')),
    )
    .sort()
    .map((d) => {
      const dir = join(runDir, d);
      const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as StepReport;
      const seconds = (JSON.parse(readFileSync(join(dir, 'done.json'), 'utf8')) as { seconds: number }).seconds;
      return { report, dir, seconds };
    });
}

/** A claim of the run with where it was stated: step and position in that step's report. */
export interface RunClaim {
  step: number;
  index: number;
  claim: Claim;
}

/**
 * THE run-wide correction (interp/claims.ts correctFamily) over every claim of every finished step,
 * in step order; each step's report.json whose claims change is rewritten (atomically) with the
 * corrected flags, so every artefact rendered from them afterwards (report.html, report.md, step
 * 13's table) carries the same ones. Step 12 (through writeRunReport) and step 13 both call this.
 */
export function correctRunClaims(runDir: string): RunClaim[] {
  const loaded = loadReports(runDir);
  const all = loaded.flatMap(({ report }) => report.claims.map((claim, index) => ({ step: report.step, index, claim })));
  const corrected = correctFamily(
    all.map((a) => a.claim),
    all.map((a) => `step ${a.step} claim ${a.index + 1} ("${a.claim.statement}")`),
  );
  let k = 0;
  for (const { report, dir } of loaded) {
    const claims = report.claims.map(() => corrected[k++]);
    if (JSON.stringify(claims) === JSON.stringify(report.claims)) continue;
    writeJsonAtomic(join(dir, 'report.json'), { ...report, claims });
  }
  return all.map((a, i) => ({ ...a, claim: corrected[i] }));
}

/** Writes report.html and report.md for whatever steps of `runDir` have finished, claims corrected run-wide first. */
export function writeRunReport(
  runDir: string,
  title: string,
  backend: string,
  seed: number,
  extra: { step: number; title: string; seconds: number }[] = [],
): { html: string; steps: { step: number; figures: number }[] } {
  correctRunClaims(runDir);
  const loaded = loadReports(runDir);
  const svgs = new Map<string, string>();
  for (const { report, dir } of loaded) {
    for (const f of report.figures) {
      const key = `${report.step}/${f.file}`;
      // renderSvg already made the ids unique; a figure a step wrote before it did (a run from an
      // older version, cached) is fixed here, so its ids cannot clash with another figure's
      svgs.set(key, uniqueSvgIds(readFileSync(join(dir, f.file), 'utf8')));
    }
  }
  // figure keys are made unique per step
  const reports = loaded.map(({ report }) => ({
    ...report,
    figures: report.figures.map((f) => ({ ...f, file: `${report.step}/${f.file}` })),
  }));
  const meta: ReportMeta = {
    title,
    runDir,
    backend,
    seed,
    createdAt: new Date().toISOString(),
    timings: [
      ...loaded.map(({ report, seconds }) => ({ step: report.step, title: report.title, seconds: Math.round(seconds * 10) / 10 })),
      ...extra,
    ],
  };
  const html = buildHtml(reports, svgs, meta);
  writeAtomic(join(runDir, 'report.html'), html);
  writeAtomic(join(runDir, 'report.md'), buildMarkdown(reports, meta));
  return { html: join(runDir, 'report.html'), steps: reports.map((r) => ({ step: r.step, figures: r.figures.length })) };
}
