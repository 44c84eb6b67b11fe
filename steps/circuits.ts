// The circuits steps 6 (patching) and 7 (perturbation) study for a model: step 5's, or, with
// --model (no step 5), grad x activation attribution circuits computed on the checkpoint in the
// calling step, from its own random streams; and the study sequences they are selected and tested on.
import { join } from 'node:path';
import { attributionCircuits, attributionMaps, splitHalves, type CircuitSpec } from '../interp/circuits.ts';
import { getTask, type TaskBatch } from '../interp/tasks/index.ts';
import { CIRCUITS_DIR, type Circuit } from './artefacts.ts';
import { readJson } from './files.ts';
import type { StudyModel } from './models.ts';
import type { StepContext } from './step.ts';

/** Step 5's circuits for a model, or (with --model) attribution circuits computed here. */
export async function circuitsFor(ctx: StepContext, m: StudyModel, model: Awaited<ReturnType<StudyModel['load']>>): Promise<CircuitSpec[]> {
  const cc = ctx.config.circuit;
  if (!ctx.config.model) {
    ctx.input(5);
    return readJson<Circuit[]>(join(ctx.runDir, CIRCUITS_DIR, 'circuits.json'))
      .filter((c) => c.task === m.task && c.seed === m.seed)
      .map((c) => ({
        hook: c.hook,
        positions: c.positions,
        channels: c.channels,
        directions: c.directions,
        source: c.source,
        scores: c.scores,
        controls: c.controls.map((k) => ({ hook: c.hook, channels: k.channels, directions: k.directions })),
      }));
  }
  const batch = studyHalves(ctx, m).selection;
  return attributionCircuits(model, await attributionMaps(model, m.task, batch), cc.size, batch, {
    count: cc.controls,
    strata: cc.strata,
    rng: ctx.rng(`controls/${m.label}`),
  });
}

/**
 * One pool of 2 x patching.examples study sequences per model, from its own stream, split in two:
 * step 5 selects circuits (and measures the activations controls are matched to) on `selection`,
 * steps 6 and 7 test them on `test`, so the two never share a sequence.
 */
export function studyHalves(ctx: StepContext, m: StudyModel): { selection: TaskBatch; test: TaskBatch } {
  const n = ctx.config.patching.examples;
  return splitHalves(getTask(m.task).generate(m.taskOptions as never, ctx.rng(`study/${m.label}`), 2 * n));
}
