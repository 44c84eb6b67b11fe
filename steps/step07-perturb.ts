// Step 7: robustness to noise (interp/perturb.ts). Gaussian noise of growing scale (config
// perturb.scales, in units of the activation's std along each direction) is added along the step-5
// circuits and along random sites of the same size, at three granularities:
//   channel   the residual attribution circuit's channels vs random channels (scored positions)
//   state     the state circuit's hook_h coordinates vs random state coordinates (its positions)
//   position  the state circuit's coordinates at its positions vs at as many other positions
//             before the answer
// The controls are step 5's matched controls (interp/controls.ts), as in step 6; the sequences are
// the test half of the study sequences (step 5 selected on the other half). The models are the
// first patching.seeds gate-passing seeds of each task.
// Per model: accuracy drop and KL(clean || perturbed) per held-out sequence at the scored
// positions; curves with 95% bootstrap bands (circuit vs the mean of the first perturb.directions
// controls); at the largest scale the circuit's KL ranked among perturb.controls controls (one
// noise draw each, as for the circuit): rank p-value, hierarchical-bootstrap interval of circuit
// minus mean control. Per task x granularity, the claim is over seeds (interp/seeds.ts): each
// seed's circuit-minus-control KL, their t interval (the seed is the unit), and the exact
// sum-of-ranks test over the seeds' ranks; the claims are corrected across the run (step 13).
import { controlTest, type ControlTest } from '../interp/controls.ts';
import { sliceExamples } from '../interp/circuits.ts';
import { cacheActivations, evalSet, idsOf, otherPositionsMask, outcome, positionMask } from '../interp/patching.ts';
import { noiseCurve, type NoisePoint } from '../interp/perturb.ts';
import { fmt, intervalChart, type Claim, type Spec } from '../interp/report/index.ts';
import { pending } from '../interp/claims.ts';
import { acrossSeeds, perSeedText, seedClaimFields, type SeedValue } from '../interp/seeds.ts';
import { bootstrapCI, mean } from '../interp/stats.ts';
import { circuitsFor, studyHalves } from './circuits.ts';
import { noAnswerSourceNote, patchedModels, withAnswerSource } from './models.ts';
import { notApplicableStep } from './not-applicable.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

interface CurvePoint {
  model: string;
  task: string;
  seed: number;
  granularity: string;
  which: 'circuit' | 'control';
  scale: number;
  accuracyDrop: number;
  accuracyDropCI: [number, number];
  kl: number;
  klCI: [number, number];
}

/** One model's rank test at the largest scale (tests.json). */
export interface PerturbTest {
  model: string;
  task: string;
  seed: number;
  granularity: string;
  c: ControlTest;
}

const GRANULARITIES = ['channel', 'state', 'position'] as const;

/** Per example, the mean over several curves (one per control draw). */
function averageCurves(curves: NoisePoint[][]): NoisePoint[] {
  return curves[0].map((pt, s) => ({
    scale: pt.scale,
    accuracyDrop: pt.accuracyDrop.map((_, e) => mean(curves.map((c) => c[s].accuracyDrop[e]))),
    kl: pt.kl.map((_, e) => mean(curves.map((c) => c[s].kl[e]))),
  }));
}

/** A seed's value for the claim: circuit minus mean control KL, with its rank among the controls for the sum-of-ranks test. */
export function seedValueOf(t: PerturbTest): SeedValue {
  const ge = t.c.controls.filter((v) => v >= t.c.estimate).length;
  return { seed: t.seed, model: t.model, value: t.c.difference, p: t.c.p, pFloor: t.c.pFloor, rank: { ge, n: t.c.controls.length } };
}

/** One task's noise curves at one granularity: a line per seed for circuit and control, with each seed's band. */
function bandChart(rows: CurvePoint[], title: string): Spec {
  const values = rows.map((r) => ({ scale: r.scale, which: r.which, seed: `s${r.seed}`, kl: r.kl, lo: r.klCI[0], hi: r.klCI[1] }));
  return {
    title,
    width: 300,
    height: 200,
    data: { values },
    encoding: {
      x: { field: 'scale', type: 'quantitative', title: 'noise scale (std units)' },
      color: { field: 'which', type: 'nominal', title: null },
      detail: { field: 'seed', type: 'nominal' },
    },
    layer: [
      {
        mark: { type: 'area', opacity: 0.12 },
        encoding: { y: { field: 'lo', type: 'quantitative', title: 'KL(clean || perturbed)' }, y2: { field: 'hi' } },
      },
      {
        mark: { type: 'line', point: true },
        encoding: { y: { field: 'kl', type: 'quantitative' }, shape: { field: 'seed', type: 'nominal', title: 'seed' } },
      },
    ],
  } as Spec;
}

export const perturbStep: Step = {
  ...stepInfo('perturb'),
  version: 4,
  needs: [5],
  configKeys: ['circuit', 'patching', 'perturb', 'claimSeeds'],
  appliesToModel: false,
  async run(ctx) {
    const { patching: pc, perturb: qc } = ctx.config;
    const points: CurvePoint[] = [];
    const tests: PerturbTest[] = [];
    const report = ctx.report();
    const { applicable: models, notApplicable } = withAnswerSource(patchedModels(ctx, pc.seeds));
    const skipNote = noAnswerSourceNote(notApplicable, 'perturbing circuits against matched controls, scored on the patched answers,');
    if (!models.length) return notApplicableStep(ctx, skipNote!, ['curves.json', 'tests.json']);
    if (skipNote) report.notes.push(skipNote);
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
                  task: m.task,
                  seed: m.seed,
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
              task: m.task,
              seed: m.seed,
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

    // one claim per task x granularity, over that task's seeds
    const tasks = [...new Set(tests.map((t) => t.task))];
    const keyed: { label: string; claim: Claim }[] = [];
    for (const task of tasks)
      for (const g of GRANULARITIES) {
        const perModel = tests.filter((t) => t.task === task && t.granularity === g);
        if (!perModel.length) continue;
        const s = acrossSeeds(perModel.map(seedValueOf), { minSeeds: ctx.config.claimSeeds });
        const f = seedClaimFields(s);
        const nCtl = [...new Set(perModel.map((t) => t.c.controls.length))].join('/');
        const perSeed = `per seed (circuit minus mean control KL): ${perSeedText(s, fmt)}`;
        const test = s.enough
          ? `${s.combination}, floor ${fmt(s.pFloor!)}${s.p! <= s.pFloor! * (1 + 1e-9) ? ' (binds)' : ''}; each seed ranks its circuit's mean KL over ${qc.examples} held-out sequences among ${nCtl} controls (one noise draw each); t interval over seeds; ${perSeed}`
          : `only ${s.seeds} seed(s) passed the learning gate; a claim needs ${ctx.config.claimSeeds} (not tested); ${perSeed}`;
        keyed.push({
          label: `${task} ${g}`,
          claim: {
            statement: `${task} (${s.seeds} seed${s.seeds === 1 ? '' : 's'}): noise of scale ${top} along the circuit (${g} granularity) moves the output more than along matched controls (KL, circuit minus mean control)`,
            estimate: f.estimate,
            interval: f.interval,
            level: f.level,
            test,
            ...(f.p !== undefined ? { p: f.p, pFloor: f.pFloor } : {}),
            control:
              g === 'position'
                ? `the same coordinates at as many other positions before the answer (${nCtl} draws per seed)`
                : `${nCtl} matched controls of equal size on the same hook and positions per seed (step 5: same activation-variance strata)`,
            controlEstimate: mean(perModel.map((t) => t.c.control)),
            perSeed: f.perSeed,
            ...pending(f.effectHolds, f.effectCondition),
          },
        });
      }
    report.claims.push(...keyed.map((k) => k.claim));

    for (const task of tasks) {
      for (const g of GRANULARITIES) {
        const rows = points.filter((p) => p.task === task && p.granularity === g);
        if (!rows.length) continue;
        const seeds = new Set(rows.map((r) => r.seed)).size;
        report.figures.push(
          await saveFigure(
            ctx,
            `noise-${task}-${g}`,
            bandChart(rows, `${task}: noise at ${g} granularity (${seeds} seed${seeds === 1 ? '' : 's'})`),
            `Noise along the circuit vs control (${task}, ${g}), per seed`,
            `Mean KL(clean || perturbed) at the scored positions over ${qc.examples} held-out sequences, with 95% bootstrap bands, as the noise scale grows (units of the activation's std along each direction); one line per seed (point shape), circuit and mean of ${qc.directions} controls (colour).`,
          ),
        );
      }
    }
    // the claims' per-seed values next to each task's mean and t interval over seeds
    const seedRows = keyed.flatMap(({ label, claim: c }) => {
      return [
        ...(c.perSeed ?? []).map((v) => ({ claim: label, kind: `seed ${v.seed}`, value: v.value, lo: v.value, hi: v.value })),
        ...(Number.isFinite(c.interval[0])
          ? [{ claim: label, kind: 'mean over seeds (t interval)', value: c.estimate, lo: c.interval[0], hi: c.interval[1] }]
          : []),
      ];
    });
    if (seedRows.length)
      report.figures.push(
        await saveFigure(
          ctx,
          'noise-seeds',
          intervalChart(seedRows, {
            title: `Circuit minus mean control KL at scale ${top}, per seed`,
            category: 'claim',
            value: 'value',
            lo: 'lo',
            hi: 'hi',
            color: 'kind',
            valueTitle: 'KL circuit - mean control',
          }),
          'Noise effect per seed',
          `Each seed's circuit-minus-mean-control KL at the largest noise scale (points), beside the task's mean over seeds with its 95% t interval (the seed is the unit), per granularity.`,
        ),
      );
    report.tables.push({
      title: `Per model at scale ${top}: circuit KL ranked among its controls (the claims combine these over seeds)`,
      columns: [
        'model',
        'task',
        'seed',
        'granularity',
        'circuit KL',
        'mean control KL',
        'difference',
        'diff CI low',
        'diff CI high',
        'controls',
        'rank p',
      ],
      rows: tests.map((t) => [
        t.model,
        t.task,
        t.seed,
        t.granularity,
        t.c.estimate,
        t.c.control,
        t.c.difference,
        t.c.differenceInterval[0],
        t.c.differenceInterval[1],
        t.c.controls.length,
        t.c.p,
      ]),
    });
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
    report.notes.push(
      `Claims are per task and granularity over seeds (the first ${pc.seeds} gate-passing seeds; a claim needs ${ctx.config.claimSeeds}): the estimate is the mean over seeds of circuit minus mean control KL, its interval Student's t over seeds, and p the exact sum-of-ranks test of the seeds' ranks among their controls (interp/seeds.ts). Each model's own rank test and hierarchical-bootstrap interval are in the per-model table and tests.json.`,
    );
    const effect = report.claims.filter((c) => c.effect).length;
    report.summary = `${report.claims.length} circuit-vs-control noise claims over seeds (${tasks.length} task(s), ${models.length} models, ${tests.length} per-model comparisons); ${effect} show the circuit more sensitive than its control at scale ${top} (t interval over seeds above 0; support is decided across the run, step 13).`;
    saveReport(ctx, report);
    return report.summary;
  },
};
