// Step 12: the report. Gathers every finished step's numbers, claims and SVG figures into one
// self-contained report.html (opens offline) and a report.md summary in the run directory. The
// assembling is report-io.ts's writeRunReport, which the runner also calls after steps 13 and 14.
import { writeRunReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

const REPORT_STEP = stepInfo('report').id;

export const reportStep: Step = {
  ...stepInfo('report'),
  version: 2,
  needs: [],
  alwaysRun: true,
  configKeys: ['report'],
  appliesToModel: true,
  async run(ctx) {
    const r = writeRunReport(ctx.runDir, ctx.config.report.title, ctx.backend.description, ctx.config.seed);
    // The index and summary count the steps before this one. report.html covers whatever has
    // finished (steps 13-14 too, when this step is re-run after them), but counting those here
    // would make this step's outputs depend on the order the steps ran in (issue 17).
    const before = r.steps.filter((s) => s.step < REPORT_STEP);
    const index = {
      // relative to the run directory, so a run directory that is moved or copied stays the same
      html: 'report.html',
      steps: before.length,
      figures: before.reduce((n, s) => n + s.figures, 0),
    };
    ctx.writeJson('report-index.json', index);
    return `report.html with ${index.steps} steps and ${index.figures} figures`;
  },
};
