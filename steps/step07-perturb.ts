// Step 7: robustness to noise (interp/perturb.ts). Gaussian noise of growing scale (config
// perturb.scales, in units of the activation's std along each direction) is added along the step-5
// circuits and along random sites of the same size, at three granularities:
//   channel   the residual attribution circuit's channels vs random channels (scored positions)
//   state     the state circuit's hook_h coordinates vs random state coordinates (its positions)
//   position  the state circuit's coordinates at its positions vs at as many other positions
//             before the answer
// Effect per held-out sequence: accuracy drop and KL(clean || perturbed) at the scored positions;
// curves with 95% bootstrap bands; at the largest scale circuit vs control is tested (paired
// sign-flip permutation, Holm across the step).
import {
  cacheActivations,
  compareWithControls,
  evalSet,
  idsOf,
  otherPositionsMask,
  outcome,
  positionMask,
  type Comparison,
} from '../interp/patching.ts';
import { noiseCurve, type NoisePoint } from '../interp/perturb.ts';
import { fmt, type Claim, type Spec } from '../interp/report/index.ts';
import { pending } from '../interp/claims.ts';
import { bootstrapCI, holm, mean, pairedPermutationFloor } from '../interp/stats.ts';
import { getTask } from '../interp/tasks/index.ts';
import { circuitsFor } from './circuits.ts';
import { patchedModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

interface CurvePoint {
  model: string;
  granularity: string;
  which: 'circuit' | 'control';
  scale: number;
  accuracyDrop: number;
  accuracyDropCI: [number, number];
  kl: number;
  klCI: [number, number];
}

/** Per example, the mean over several curves (one per control draw). */
function averageCurves(curves: NoisePoint[][]): NoisePoint[] {
  return curves[0].map((pt, s) => ({
    scale: pt.scale,
    accuracyDrop: pt.accuracyDrop.map((_, e) => mean(curves.map((c) => c[s].accuracyDrop[e]))),
    kl: pt.kl.map((_, e) => mean(curves.map((c) => c[s].kl[e]))),
  }));
}

function bandChart(rows: CurvePoint[], title: string): Spec {
  const values = rows.map((r) => ({ scale: r.scale, which: r.which, kl: r.kl, lo: r.klCI[0], hi: r.klCI[1] }));
  return {
    title,
    width: 300,
    height: 200,
    data: { values },
    encoding: {
      x: { field: 'scale', type: 'quantitative', title: 'noise scale (std units)' },
      color: { field: 'which', type: 'nominal', title: null },
    },
    layer: [
      {
        mark: { type: 'area', opacity: 0.25 },
        encoding: { y: { field: 'lo', type: 'quantitative', title: 'KL(clean || perturbed)' }, y2: { field: 'hi' } },
      },
      { mark: { type: 'line', point: true }, encoding: { y: { field: 'kl', type: 'quantitative' } } },
    ],
  } as Spec;
}

export const perturbStep: Step = {
  ...stepInfo('perturb'),
  version: 2,
  needs: [5],
  configKeys: ['circuit', 'patching', 'perturb'],
  appliesToModel: false,
  async run(ctx) {
    const { patching: pc, perturb: qc } = ctx.config;
    const points: CurvePoint[] = [];
    const tests: { model: string; granularity: string; c: Comparison }[] = [];
    const report = ctx.report();
    const models = patchedModels(ctx, pc.seeds);
    const top = Math.max(...qc.scales);
    for (const [mIdx, m] of models.entries()) {
      const model = await m.load();
      try {
        const circuits = await circuitsFor(ctx, m, model);
        const resid = circuits.find((c) => c.source === 'attribution' && !c.hook.endsWith('hook_h'));
        const state = circuits.find((c) => c.source === 'attribution' && c.hook.endsWith('hook_h'));
        const batch = getTask(m.task).generate(m.taskOptions as never, ctx.rng(`eval/${m.label}`), qc.examples);
        const set = evalSet(batch);
        const ids = idsOf(model, batch);
        const clean = await outcome(model, ids, set, [], { logProbs: true });
        const n = qc.directions;
        const jobs = [
          ...(resid ? [{ granularity: 'channel', site: resid }] : []),
          ...(state
            ? [
                { granularity: 'state', site: state },
                { granularity: 'position', site: state },
              ]
            : []),
        ];
        for (const [j, job] of jobs.entries()) {
          ctx.progress(`noise ${m.label} (${mIdx + 1}/${models.length})`, j, jobs.length);
          const c = job.site;
          const mask = positionMask(c.positions, batch);
          const act = cacheActivations(model, ids, [c.hook]).get(c.hook)!;
          try {
            const rng = ctx.rng(`noise/${m.label}/${job.granularity}`);
            const circ = await noiseCurve(model, set, clean, c, mask, act, qc.scales, n, rng.fork('circuit'));
            const ctl: NoisePoint[][] = [];
            for (let d = 0; d < n; d++) {
              if (job.granularity === 'position') {
                const other = otherPositionsMask(mask, batch, rng.fork(`positions${d}`));
                // the std along each direction is taken at the circuit's own positions, so both curves add the same noise
                ctl.push(await noiseCurve(model, set, clean, c, other, act, qc.scales, 1, rng.fork(`control${d}`), mask));
              } else {
                ctl.push(
                  await noiseCurve(model, set, clean, c.controls[d % c.controls.length], mask, act, qc.scales, 1, rng.fork(`control${d}`)),
                );
              }
            }
            const ctlMean = averageCurves(ctl);
            for (const [which, curve] of [
              ['circuit', circ],
              ['control', ctlMean],
            ] as const) {
              for (const pt of curve) {
                const ci = (x: Float64Array): [number, number] => {
                  if (x.every((v) => v === x[0])) return [x[0], x[0]];
                  const b = bootstrapCI(x, ctx.rng(`band/${m.label}/${job.granularity}/${which}/${pt.scale}`), mean, {
                    nBoot: pc.bootstrap,
                    method: 'percentile',
                  });
                  return [b.lo, b.hi];
                };
                points.push({
                  model: m.label,
                  granularity: job.granularity,
                  which,
                  scale: pt.scale,
                  accuracyDrop: mean(pt.accuracyDrop),
                  accuracyDropCI: ci(pt.accuracyDrop),
                  kl: mean(pt.kl),
                  klCI: ci(pt.kl),
                });
              }
            }
            const s = qc.scales.indexOf(top);
            tests.push({
              model: m.label,
              granularity: job.granularity,
              c: compareWithControls(circ[s].kl, ctlMean[s].kl, ctx.rng(`test/${m.label}/${job.granularity}`), pc),
            });
          } finally {
            act.dispose();
          }
        }
        ctx.progress(`noise ${m.label} (${mIdx + 1}/${models.length})`, jobs.length, jobs.length);
        ids.dispose();
      } finally {
        model.dispose();
      }
    }
    ctx.writeJson('curves.json', points);
    const pHolm = holm(tests.map((t) => t.c.p));
    ctx.writeJson(
      'tests.json',
      tests.map((t, i) => ({ ...t, pHolm: pHolm[i] })),
    );
    report.claims = tests.map(
      (t): Claim => ({
        statement: `${t.model}: noise of scale ${top} along the circuit (${t.granularity} granularity) moves the output more than along random sites`,
        estimate: t.c.estimate,
        interval: t.c.interval,
        level: 0.95,
        test: `paired sign-flip permutation test on per-sequence KL (circuit - control, one-sided, ${pc.permutations} flips); difference ${fmt(t.c.difference)} [${fmt(t.c.differenceInterval[0])}, ${fmt(t.c.differenceInterval[1])}]`,
        p: t.c.p,
        pFloor: pairedPermutationFloor(qc.examples, pc.permutations, 'greater'),
        control:
          t.granularity === 'position'
            ? `the same coordinates at as many other positions before the answer (${ctx.config.perturb.directions} draws)`
            : `${ctx.config.perturb.directions} random sites of equal size on the same hook and positions`,
        controlEstimate: t.c.control,
        controlInterval: t.c.controlInterval,
        ...pending(t.c.differenceInterval[0] > 0, 'difference interval above 0'),
      }),
    );
    for (const model of [...new Set(points.map((p) => p.model))]) {
      for (const g of ['channel', 'state', 'position']) {
        const rows = points.filter((p) => p.model === model && p.granularity === g);
        if (!rows.length) continue;
        report.figures.push(
          await saveFigure(
            ctx,
            `noise-${model}-${g}`,
            bandChart(rows, `${model}: noise at ${g} granularity`),
            `Noise along the circuit vs control (${model}, ${g})`,
            `Mean KL(clean || perturbed) at the scored positions over ${qc.examples} held-out sequences, with 95% bootstrap bands, as the noise scale grows (units of the activation's std along each direction).`,
          ),
        );
      }
    }
    report.tables.push({
      title: 'Noise curves',
      columns: ['model', 'granularity', 'which', 'scale', 'accuracy drop', 'CI low', 'CI high', 'KL', 'KL CI low', 'KL CI high'],
      rows: points.map((p) => [
        p.model,
        p.granularity,
        p.which,
        p.scale,
        p.accuracyDrop,
        p.accuracyDropCI[0],
        p.accuracyDropCI[1],
        p.kl,
        p.klCI[0],
        p.klCI[1],
      ]),
    });
    const effect = report.claims.filter((c) => c.effect).length;
    report.summary = `${tests.length} circuit-vs-control noise comparisons on ${models.length} models; ${effect} show the circuit more sensitive than its control at scale ${top} (difference interval above 0; support is decided across the run, step 13).`;
    saveReport(ctx, report);
    return report.summary;
  },
};
