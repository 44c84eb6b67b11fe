// Step 14 (steps/step14-scaleup.ts) on the quick run: the timed shapes are the configured grid,
// with positive times; the projection covers each checkpoint and each step's workload, and its
// totals add up. (The figures are timings, so only their shape is checked.)
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import type { Measurement, Projection, StepWorkload } from '../../interp/scaling.ts';
import { DEFAULT_CONFIG, mergeConfig, QUICK_OVERRIDES } from '../../steps/config.ts';
import { scaleGrid, workloads } from '../../steps/step14-scaleup.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, readIn } from '../helpers/step-report.ts';

const quick = mergeConfig(DEFAULT_CONFIG, QUICK_OVERRIDES, 'quick');

test('step 14: measurements of the configured shapes, a projection per checkpoint that adds up', async () => {
  const dir = join(await quickRun(), 'step-14-scaleup');
  const rows = readIn<(Measurement & { axis: string })[]>(dir, 'measurements.json');
  assert.equal(
    rows.map((r) => [r.axis, r.hidden, r.layers, r.seqLen]),
    scaleGrid(quick).map((p) => [p.axis, p.hidden, p.layers, p.seqLen]),
  );
  for (const r of rows) {
    assert.ok(r.flopsPerToken > 0 && r.params > 0);
    assert.ok(r.forwardMsPerToken > 0 && Number.isFinite(r.forwardMsPerToken), `forward ${r.forwardMsPerToken}`);
    assert.ok(r.trainMsPerToken > 0 && Number.isFinite(r.trainMsPerToken), `train ${r.trainMsPerToken}`);
  }
  const projection = readIn<{ workloads: StepWorkload[]; projections: Projection[] }>(dir, 'projection.json');
  assert.equal(projection.workloads, workloads(quick, 768));
  assert.ok(projection.projections.length >= 2);
  const steps = workloads(quick, 768).map((w) => w.step);
  for (const p of projection.projections) {
    assert.equal(
      p.perStep.map((s) => s.step),
      steps,
      p.checkpoint,
    );
    for (const s of p.perStep) assert.ok(s.seconds >= 0 && Number.isFinite(s.seconds), `${p.checkpoint} step ${s.step}`);
    const sum = p.perStep.reduce((a, s) => a + s.seconds, 0);
    assert.ok(Math.abs(p.totalSeconds - sum) <= 1e-9 * Math.max(1, sum), `${p.checkpoint}: total ${p.totalSeconds} vs ${sum}`);
  }
  for (let i = 1; i < projection.projections.length; i++)
    assert.ok(projection.projections[i].params > projection.projections[i - 1].params, 'checkpoints by size');
  const report = readIn<StepReport>(dir, 'report.json');
  assert.is(report.step, 14);
  checkFigures(dir, report, { atLeast: 4 });
});

test.run();
