// The page of a step that applies to none of the run's models (steps 6-8 on a language model on
// text): it says why, writes its artefacts empty so that later steps and the report read "nothing
// here" rather than a missing file, and returns the one-line summary.
import { saveReport } from './report-io.ts';
import type { StepContext } from './step.ts';

export function notApplicableStep(ctx: StepContext, note: string, emptyFiles: string[]): string {
  for (const f of emptyFiles) ctx.writeJson(f, []);
  const report = ctx.report();
  report.notes.push(note);
  report.summary = `Not applicable to this run's models (nothing measured): ${note}`;
  saveReport(ctx, report);
  return report.summary;
}
