// Step 14 (steps/step14-scaleup.ts) on the quick run: the timed shapes are the configured grid,
// with positive times; the projection covers each checkpoint and each step's workload, and its
// totals add up. (The figures are timings, so only their shape is checked.)
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../engine/cpu/backend.ts';
import type { StepReport } from '../../interp/report/index.ts';
import {
  configFor,
  flopsPerToken,
  memoryFeature,
  STATE_SPACES,
  type Measurement,
  type Projection,
  type StepWorkload,
} from '../../interp/scaling.ts';
import { DEFAULT_CONFIG, mergeConfig, QUICK_OVERRIDES } from '../../steps/config.ts';
import { Runner } from '../../steps/runner.ts';
import { scaleGrid, scaleupStep, workloads } from '../../steps/step14-scaleup.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, readIn } from '../helpers/step-report.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

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

interface Fit {
  intercept: number;
  slope: number;
  r2: number;
  identified?: boolean;
}

/**
 * Least squares of y on x by the normal equations, with the cost model's constraints (a cost does
 * not shrink: slope >= 0, and a negative intercept refits through the origin), and R2.
 */
function leastSquares(x: number[], y: number[]): Fit {
  const n = x.length;
  const sx = x.reduce((a, b) => a + b, 0),
    sy = y.reduce((a, b) => a + b, 0);
  const sxx = x.reduce((a, v) => a + v * v, 0),
    sxy = x.reduce((a, v, i) => a + v * y[i], 0);
  const det = n * sxx - sx * sx;
  let slope = det === 0 ? 0 : Math.max(0, (n * sxy - sx * sy) / det);
  let intercept = (sy - slope * sx) / n;
  if (intercept < 0) {
    intercept = 0;
    slope = sxy / sxx;
  }
  const my = sy / n;
  const sst = y.reduce((a, v) => a + (v - my) ** 2, 0);
  const ssr = y.reduce((a, v, i) => a + (v - intercept - slope * x[i]) ** 2, 0);
  return { intercept, slope, r2: sst === 0 ? 1 : 1 - ssr / sst };
}

/** The time model: the fit where it identifies a positive slope (R2 > 0.5), else the largest shape's own throughput. */
function costModel(x: number[], y: number[]): Fit {
  const f = leastSquares(x, y);
  if (f.slope > 0 && f.r2 > 0.5) return { ...f, identified: true };
  const big = x.indexOf(Math.max(...x));
  return { intercept: 0, slope: y[big] / x[big], r2: f.r2, identified: false };
}

const near = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b), 1e-30), `${what}: ${a} vs ${b}`);

test('step 14: the fitted cost model and every projected second follow from the timings it recorded', async () => {
  const dir = join(await quickRun(), 'step-14-scaleup');
  const rows = readIn<(Measurement & { axis: string })[]>(dir, 'measurements.json');
  const { fits, projections } = readIn<{ fits: { forward: Fit; train: Fit; memory: Fit | null }; projections: Projection[] }>(
    dir,
    'projection.json',
  );
  // the cost is fitted over the hidden-size and layer points (sequence length moves per-token work little)
  const fitRows = rows.filter((r) => r.axis !== 'seqLen');
  const x = fitRows.map((r) => r.flopsPerToken);
  const fwd = costModel(
    x,
    fitRows.map((r) => r.forwardMsPerToken),
  );
  const train = costModel(
    x,
    fitRows.map((r) => r.trainMsPerToken),
  );
  for (const [name, got, want] of [
    ['forward', fits.forward, fwd],
    ['train', fits.train, train],
  ] as const) {
    near(got.slope, want.slope, `${name} slope`);
    near(got.intercept, want.intercept, `${name} intercept`);
    near(got.r2, want.r2, `${name} R2`);
    assert.is(got.identified, want.identified, `${name} identified`);
  }
  const memRows = fitRows.filter((r) => r.peakBytesPerToken > 0);
  const mem =
    memRows.length >= 2
      ? leastSquares(
          memRows.map((r) => r.hidden * r.layers),
          memRows.map((r) => r.peakBytesPerToken),
        )
      : null;
  if (mem && fits.memory) near(fits.memory.slope, mem.slope, 'memory slope');
  else assert.is(fits.memory, mem, 'memory fit present iff two memory points');
  // each checkpoint: ms per token from the fits at its FLOPs, times each step's tokens
  assert.equal(
    projections.map((p) => p.checkpoint),
    STATE_SPACES.map((c) => c.name),
  );
  for (const p of projections) {
    const ck = STATE_SPACES.find((c) => c.name === p.checkpoint)!;
    assert.is(p.flopsPerToken, flopsPerToken(configFor({ hidden: ck.hidden, layers: ck.layers, stateSize: 16, vocab: 50280, expand: 2 })));
    const msF = fwd.intercept + fwd.slope * p.flopsPerToken,
      msT = train.intercept + train.slope * p.flopsPerToken;
    const loads = workloads(quick, ck.hidden);
    p.perStep.forEach((s, i) =>
      near(s.seconds, (loads[i].forwardTokens * msF + loads[i].trainTokens * msT) / 1000, `${p.checkpoint} step ${s.step}`),
    );
    if (mem) near(p.activationBytesPerToken, mem.intercept + mem.slope * memoryFeature(ck.hidden, ck.layers), `${p.checkpoint} memory`);
  }
});

test(
  'step 14 on a backend that tracks no memory (WebGPU): peaks written as null, not a NaN that fails the step',
  withTempDir('mi-scaleup-', async (tmp) => {
    // the CPU backend with its memory counters hidden, as WebGPU has none (interp/scaling.ts gives NaN)
    const backend = Object.assign(new CpuBackend(), { memory: undefined, resetPeak: undefined });
    const config = mergeConfig(quick, { scale: { hidden: [16, 32], layers: [1], seqLens: [8], batch: 1, reps: 1 } }, 'test');
    await new Runner([scaleupStep], config, tmp, backend, () => {}).run([scaleupStep.id]);
    const dir = join(tmp, 'step-14-scaleup');
    const rows = readIn<{ peakBytesPerToken: number | null }[]>(dir, 'measurements.json');
    assert.ok(rows.length > 0);
    for (const r of rows) assert.is(r.peakBytesPerToken, null);
    const proj = readIn<{ projections: { activationBytesPerToken: number | null }[] }>(dir, 'projection.json');
    for (const p of proj.projections) assert.is(p.activationBytesPerToken, null);
  }),
);

test.run();
