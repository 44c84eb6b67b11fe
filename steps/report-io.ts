// Reading and writing the per-step report records (report.json + SVG figures) that step 12
// assembles into report.html.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSvg, type FigureRef, type Spec, type StepReport } from '../interp/report/index.ts';
import type { StepContext } from './step.ts';

/** Renders a spec to `figures/<name>.svg` in the step's folder and returns its reference. */
export async function saveFigure(ctx: StepContext, name: string, spec: Spec, title: string, caption: string): Promise<FigureRef> {
  const svg = await renderSvg(spec);
  ctx.writeText(`figures/${name}.svg`, svg);
  return { file: `figures/${name}.svg`, title, caption };
}

export function saveReport(ctx: StepContext, report: StepReport): void {
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
