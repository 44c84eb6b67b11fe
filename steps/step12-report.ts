// Step 12: the report. Gathers every finished step's numbers, claims and SVG figures into one
// self-contained report.html (opens offline) and a report.md summary in the run directory.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildHtml, buildMarkdown, type ReportMeta } from '../interp/report/index.ts';
import { writeAtomic } from './files.ts';
import { loadReports } from './report-io.ts';
import type { Step } from './step.ts';

/** Writes report.html and report.md for whatever steps of `runDir` have finished. */
export function writeRunReport(
  runDir: string,
  title: string,
  backend: string,
  seed: number,
  extra: { step: number; title: string; seconds: number }[] = [],
): { html: string; figures: number; steps: number } {
  const loaded = loadReports(runDir);
  const svgs = new Map<string, string>();
  for (const { report, dir } of loaded) {
    for (const f of report.figures) {
      const key = `${report.step}/${f.file}`;
      svgs.set(key, readFileSync(join(dir, f.file), 'utf8'));
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
  return { html: join(runDir, 'report.html'), figures: svgs.size, steps: reports.length };
}

export const reportStep: Step = {
  id: 12,
  name: 'report',
  title: 'visualisation and report',
  version: 1,
  needs: [],
  alwaysRun: true,
  configKeys: ['report'],
  appliesToModel: true,
  async run(ctx) {
    const r = writeRunReport(ctx.runDir, ctx.config.report.title, ctx.backend.description, ctx.config.seed);
    ctx.writeJson('report-index.json', r);
    return `report.html with ${r.steps} steps and ${r.figures} figures`;
  },
};
