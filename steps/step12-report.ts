// Step 12: the report. Gathers every finished step's numbers, claims and SVG figures into one
// self-contained report.html (opens offline) and a report.md summary in the run directory. The
// assembling is report-io.ts's writeRunReport, which the runner also calls after steps 13 and 14.
import { writeRunReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

export const reportStep: Step = {
  ...stepInfo('report'),
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
