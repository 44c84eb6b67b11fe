// Step 7: robustness to noise (interp/perturb.ts). Gaussian noise of growing scale (config
// perturb.scales, in units of the activation's std along each direction) is added along the step-5
// circuits and along random sites of the same size, at three granularities:
//   channel   the residual attribution circuit's channels vs random channels (scored positions)
//   state     the state circuit's hook_h coordinates vs random state coordinates (its positions)
//   position  the state circuit's coordinates at its positions vs at as many other positions
//             before the answer
// The controls are step 5's matched controls (interp/controls.ts), as in step 6; the sequences are
// the test half of the study sequences (step 5 selected on the other half).
// Effect per held-out sequence: accuracy drop and KL(clean || perturbed) at the scored positions;
// curves with 95% bootstrap bands (circuit vs the mean of the first perturb.directions controls);
// at the largest scale the circuit's KL is ranked among perturb.controls controls (one noise draw
// each, as for the circuit): empirical rank p-value, hierarchical bootstrap interval; the claims
// are corrected across the run (step 13).
import { controlClaimFields, controlTest, type ControlTest } from '../interp/controls.ts';
import { sliceExamples } from '../interp/circuits.ts';
import { cacheActivations, evalSet, idsOf, otherPositionsMask, outcome, positionMask } from '../interp/patching.ts';
import { noiseCurve, type NoisePoint } from '../interp/perturb.ts';
import { fmt, type Claim, type Spec } from '../interp/report/index.ts';
import { pending } from '../interp/claims.ts';
import { bootstrapCI, mean } from '../interp/stats.ts';
import { circuitsFor, studyHalves } from './circuits.ts';
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
  version: 3,
  needs: [5],
  configKeys: ['circuit', 'patching', 'perturb'],
  appliesToModel: false,
  async run(ctx) {
    const { patching: pc, perturb: qc } = ctx.config;
    const points: CurvePoint[] = [];
    const tests: { model: string; granularity: string; c: ControlTest }[] = [];
    const report = ctx.report();
    const models = patchedModels(ctx, pc.seeds);
    const top = Math.max(...qc.scales);
    for (const [mIdx, m] of models.entries()) {
      const model = await m.load();
      try {
        const circuits = await circuitsFor(ctx, m, model);
        const resid = circuits.find((c) => c.source === 'attribution' && !c.hook.endsWith('hook_h'));
        const state = circuits.find((c) => c.source === 'attribution' && c.hook.endsWith('hook_h'));
        // the first perturb.examples of the test half (step 5 selected on the other half)
        const test = studyHalves(ctx, m).test;
        if (qc.examples > test.shape[0])
          throw new Error(`config: perturb.examples (${qc.examples}) must not exceed patching.examples (${test.shape[0]}), the test half`);
        const batch = sliceExamples(test, 0, qc.examples);
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
            // the control of draw d: matched control d, or the same coordinates at other positions
            const controlAt = async (d: number, scales: readonly number[], name: string): Promise<NoisePoint[]> => {
              if (job.granularity === 'position') {
                const other = otherPositionsMask(mask, batch, rng.fork(`positions${d}`));
                // the std along each direction is taken at the circuit's own positions, so both curves add the same noise
                return noiseCurve(model, set, clean, c, other, act, scales, 1, rng.fork(`${name}${d}`), mask);
              }
              return noiseCurve(model, set, clean, c.controls[d % c.controls.length], mask, act, scales, 1, rng.fork(`${name}${d}`));
            };
            const ctl: NoisePoint[][] = [];
            for (let d = 0; d < n; d++) ctl.push(await controlAt(d, qc.scales, 'control'));
            // the rank test at the largest scale: one noise draw for the circuit and for each control
            const nRank = job.granularity === 'position' ? qc.controls : Math.min(qc.controls, c.controls.length);
            const rankCtl: Float64Array[] = [];
            for (let d = 0; d < nRank; d++) rankCtl.push((await controlAt(d, [top], 'rank'))[0].kl);
            const circTop = (await noiseCurve(model, set, clean, c, mask, act, [top], 1, rng.fork('rank-circuit')))[0].kl;
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
            tests.push({
              model: m.label,
              granularity: job.granularity,
              c: controlTest(circTop, rankCtl, ctx.rng(`test/${m.label}/${job.granularity}`), pc),
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
    ctx.writeJson('tests.json', tests);
    report.claims = tests.map((t): Claim => {
      const f = controlClaimFields(t.c);
      return {
        statement: `${t.model}: noise of scale ${top} along the circuit (${t.granularity} granularity) moves the output more than along matched controls`,
        estimate: t.c.estimate,
        interval: t.c.interval,
        level: 0.95,
        test: `empirical rank p-value of the per-sequence mean KL among ${t.c.controls.length} controls (one noise draw each), floor ${fmt(f.pFloor)}${f.p <= f.pFloor ? ' (binds)' : ''}; control 5-95% ${fmt(t.c.controlQuantiles[0])} to ${fmt(t.c.controlQuantiles[4])}; circuit minus mean control ${fmt(t.c.difference)} [${fmt(t.c.differenceInterval[0])}, ${fmt(t.c.differenceInterval[1])}] (hierarchical bootstrap over sequences and controls)`,
        p: f.p,
        pFloor: f.pFloor,
        control:
          t.granularity === 'position'
            ? `the same coordinates at as many other positions before the answer (${t.c.controls.length} draws)`
            : `${t.c.controls.length} matched controls of equal size on the same hook and positions (step 5: same activation-variance strata)`,
        controlEstimate: t.c.control,
        controlInterval: t.c.controlInterval,
        ...pending(f.effectHolds, f.effectCondition),
      };
    });
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
