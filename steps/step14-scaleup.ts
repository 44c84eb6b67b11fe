// Step 14: the scale-up plan. Times the model on the backend in use as hidden size, layer count
// and sequence length grow (one axis at a time), fits time and memory per token as power laws of
// the forward FLOPs per token, and projects the cost of each step of this run's configuration for
// the state-spaces checkpoints from 130M to 2.8B parameters.
import { barChart, fmt, lineChart } from '../interp/report/index.ts';
import {
  fitCost,
  fitLinear,
  measure,
  memoryFeature,
  project,
  type Measurement,
  type ShapePoint,
  type StepWorkload,
} from '../interp/scaling.ts';
import type { RunConfig } from './config.ts';
import { orNull } from './finite.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

/** The model work each step of this configuration does on one model, in tokens. */
export function workloads(c: RunConfig, hidden: number): StepWorkload[] {
  const T = c.train.seqLen;
  const collect = c.collect.batches * c.collect.batchSize * T;
  const temporalOutputs = c.temporal.seqLen * hidden; // rows of one Jacobian
  return [
    { step: 2, title: 'collect activations', forwardTokens: collect, trainTokens: 0, note: 'one forward over the collected data' },
    {
      step: 3,
      title: 'SAE features',
      forwardTokens: 3 * collect,
      trainTokens: 0,
      note: 'clean, spliced and zero-ablated evaluation; SAE training itself scales with hidden x latents, not with the model',
    },
    {
      step: 6,
      title: 'activation patching',
      forwardTokens: c.patching.examples * T * 5 * (1 + c.circuit.controls),
      trainTokens: 0,
      note: '3 ablations + clean/corrupted sufficiency runs, for the circuit and each control',
    },
    {
      step: 7,
      title: 'perturbations',
      forwardTokens: c.perturb.examples * T * c.perturb.scales.length * c.perturb.directions * 3 * 2,
      trainTokens: 0,
      note: 'scales x directions x 3 granularities, circuit and random',
    },
    {
      step: 8,
      title: 'temporal causality',
      forwardTokens: 0,
      trainTokens: c.temporal.examples * temporalOutputs * c.temporal.seqLen,
      note: 'one backward row per output element (seqLen x hidden) over copies of the sequence',
    },
    { step: 9, title: 'dynamics', forwardTokens: c.dynamics.examples * T, trainTokens: 0, note: 'states and deltas over the examples' },
  ];
}

/** The shapes to time: the first entry of each list is the base, the others vary one axis. */
export function scaleGrid(c: RunConfig): (ShapePoint & { axis: string })[] {
  const s = c.scale;
  const base: ShapePoint = {
    hidden: s.hidden[0],
    layers: s.layers[0],
    seqLen: s.seqLens[0],
    batch: s.batch,
    stateSize: c.train.stateSize,
    vocab: 64,
    expand: c.train.expand,
  };
  return [
    ...s.hidden.map((hidden) => ({ ...base, hidden, axis: 'hidden' })),
    ...s.layers.slice(1).map((layers) => ({ ...base, layers, axis: 'layers' })),
    ...s.seqLens.slice(1).map((seqLen) => ({ ...base, seqLen, axis: 'seqLen' })),
  ];
}

const hours = (s: number) => s / 3600;

export const scaleupStep: Step = {
  ...stepInfo('scaleup'),
  version: 3,
  needs: [],
  configKeys: ['scale', 'train', 'collect', 'patching', 'perturb', 'temporal', 'dynamics', 'circuit'],
  appliesToModel: false,
  async run(ctx) {
    const grid = scaleGrid(ctx.config);
    const rows: (Measurement & { axis: string })[] = [];
    for (const [i, p] of grid.entries()) {
      ctx.progress('timing shapes', i, grid.length);
      rows.push({ ...(await measure(p, ctx.rng(`shape${i}`), { reps: ctx.config.scale.reps, backend: ctx.backend })), axis: p.axis });
    }
    ctx.progress('timing shapes', grid.length, grid.length);
    // peak memory is NaN where the backend does not track it (WebGPU): written as null, "not measured"
    ctx.writeJson(
      'measurements.json',
      rows.map((r) => ({ ...r, peakBytesPerToken: orNull(r.peakBytesPerToken) })),
    );
    // scan length changes the work per token little; the costs are fitted over the hidden/layer points
    const fitRows = rows.filter((r) => r.axis !== 'seqLen');
    const fwd = fitCost(
      fitRows.map((r) => r.flopsPerToken),
      fitRows.map((r) => r.forwardMsPerToken),
    );
    const train = fitCost(
      fitRows.map((r) => r.flopsPerToken),
      fitRows.map((r) => r.trainMsPerToken),
    );
    const memRows = fitRows.filter((r) => r.peakBytesPerToken > 0);
    const mem =
      memRows.length >= 2
        ? fitLinear(
            memRows.map((r) => memoryFeature(r.hidden, r.layers)),
            memRows.map((r) => r.peakBytesPerToken),
          )
        : null;
    const projections = project(fwd, train, mem, (hidden) => workloads(ctx.config, hidden));
    ctx.writeJson('projection.json', {
      fits: { forward: fwd, train, memory: mem },
      workloads: workloads(ctx.config, 768),
      // NaN without a memory fit (a backend that does not track memory): null, "not projected"
      projections: projections.map((p) => ({ ...p, activationBytesPerToken: orNull(p.activationBytesPerToken) })),
    });

    const report = ctx.report();
    const figs = report.figures;
    for (const axis of ['hidden', 'layers', 'seqLen'] as const) {
      const pts = rows
        .filter((r) => r.axis === axis || (r.axis === 'hidden' && r.hidden === grid[0].hidden))
        .flatMap((r) => [
          { [axis]: r[axis], ms: r.forwardMsPerToken, pass: 'forward' },
          { [axis]: r[axis], ms: r.trainMsPerToken, pass: 'forward + backward' },
        ]);
      figs.push(
        await saveFigure(
          ctx,
          `time-vs-${axis}`,
          lineChart(pts, {
            title: `Time per token vs ${axis}`,
            x: axis,
            y: 'ms',
            color: 'pass',
            yTitle: 'ms per token',
            logX: axis !== 'layers',
            logY: true,
            points: true,
          }),
          `Time per token vs ${axis}`,
          `Median over ${ctx.config.scale.reps} repetitions on ${ctx.backend.description}, other axes at the base shape.`,
        ),
      );
    }
    const projRows = projections.flatMap((p) =>
      p.perStep.map((s) => ({ checkpoint: p.checkpoint, step: `step ${s.step}`, hours: hours(s.seconds) })),
    );
    figs.push(
      await saveFigure(
        ctx,
        'projected-hours',
        barChart(projRows, {
          title: 'Projected hours per step',
          x: 'checkpoint',
          y: 'hours',
          color: 'step',
          yTitle: 'hours on this backend',
        }),
        'Projected cost per step',
        "Time per token extrapolated as fixed overhead + FLOPs per token / achieved throughput, times each step's tokens in this configuration (training counted as 3x forward FLOPs).",
      ),
    );
    report.tables.push({
      title: `Fits on ${ctx.backend.description}: cost per token = intercept + slope x feature`,
      columns: ['quantity', 'feature', 'intercept', 'slope', 'achieved GFLOP/s', 'R2'],
      rows: [
        ['forward ms', 'FLOPs/token', fwd.intercept, fwd.slope, 1e-6 / fwd.slope, fwd.r2],
        ['forward + backward ms', 'FLOPs/token', train.intercept, train.slope, 3e-6 / train.slope, train.r2],
        ...(mem ? [['peak bytes (training)', 'hidden x layers', mem.intercept, mem.slope, '', mem.r2] as (string | number)[]] : []),
      ],
    });
    report.tables.push({
      title: "Projection for the state-spaces checkpoints (this run's configuration, one model)",
      columns: [
        'checkpoint',
        'parameters',
        'GFLOP/token',
        'weights GiB (fp32)',
        ...projections[0].perStep.map((s) => `step ${s.step} h`),
        'total h',
        'activation MiB/token (train)',
      ],
      rows: projections.map((p) => [
        p.checkpoint,
        p.params,
        p.flopsPerToken / 1e9,
        p.paramBytes / 2 ** 30,
        ...p.perStep.map((s) => hours(s.seconds)),
        hours(p.totalSeconds),
        orNull(p.activationBytesPerToken / 2 ** 20),
      ]),
    });
    report.tables.push({
      title: 'Measured shapes',
      columns: ['axis', 'hidden', 'layers', 'seqLen', 'params', 'fwd ms/token', 'train ms/token', 'peak KiB/token'],
      rows: rows.map((r) => [
        r.axis,
        r.hidden,
        r.layers,
        r.seqLen,
        r.params,
        r.forwardMsPerToken,
        r.trainMsPerToken,
        orNull(r.peakBytesPerToken / 1024),
      ]),
    });
    const p130 = projections[0],
      p28 = projections[projections.length - 1];
    report.summary = `Training runs at about ${fmt(3e-6 / train.slope)} GFLOP/s here (linear fit R2 ${fmt(train.r2)}); this configuration's steps would take about ${fmt(hours(p130.totalSeconds))} h on mamba-130m and ${fmt(hours(p28.totalSeconds))} h on mamba-2.8b with this backend.`;
    if (!train.identified || !fwd.identified)
      report.notes.push(
        "The measured shapes were too small for time per token to grow measurably with FLOPs (fixed overhead dominates), so the projection uses the largest measured shape's throughput, which overestimates large models' cost. Time larger shapes (config scale.hidden) for a tighter fit.",
      );
    report.notes.push(
      'Workloads per step: ' +
        workloads(ctx.config, 768)
          .map((w) => `step ${w.step}: ${w.note}`)
          .join('; ') +
        '. Steps 1 (training from scratch), 4 (probes, cost in the hidden width only) and 10-11 (reuse) are not projected.',
    );
    report.notes.push(
      'Run the steps that apply to a checkpoint with `npx tsx steps/run.ts --from 2 --model DIR` (steps 2, 3, 4, 6, 8 and 9 run; the others are skipped).',
    );
    saveReport(ctx, report);
    return report.summary;
  },
};
