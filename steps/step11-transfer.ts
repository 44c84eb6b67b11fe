// Step 11: transfer between tasks, in a shared basis (interp/transfer.ts, interp/align.ts).
//
// Within one model. A model of step 1's shape is trained on a mixture of the tasks
// (interp/tasks/mixture.ts; config transfer.mixture, default the tasks whose step-1 models passed
// the gate) and kept in mixture/ (reused when its settings are unchanged). Each component must pass
// the learning gate on its own held-out sequences; only components that pass are analysed. For
// every ordered pair (A, B) of them, on B's test sequences (never those anything was chosen on):
//  - circuit reuse: A's attribution-patching circuit (last residual, chosen on A's selection
//    sequences), mean-ablated at B's answer cells, against channel sets matched in variance there;
//  - feature reuse: one TopK SAE on the pooled residual; A's most important latents (ablation on
//    A's selection sequences) ablated on B against latents of matched firing density on B;
//  - probe reuse: A's answer-bit probe on B's held-out rows against its shuffled-label control.
// The diagonal (A = B) is each task's own circuit / latents / probe: the ceiling.
//
// Across models (steps/transfer-across.ts). Step 1's first-seed models share no basis, so nothing
// of one is applied to the other's raw coordinates: the same input sequences (half from each task)
// go through both, an orthogonal Procrustes rotation is fitted on half of them and its fit shown on
// the rest (against the identity, random rotations and re-paired fits); then A's probe and A's
// step-3 SAE are applied to B's activations rotated into A's basis, beside the unrotated ones and
// controls.
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type * as mi from '../engine/index.ts';
import { loadPretrained, savePretrained } from '../mamba/pretrained.ts';
import { writeTextAtomic } from '../mamba/safetensors.ts';
import { topByMagnitude } from '../interp/attribution.ts';
import { pending } from '../interp/claims.ts';
import { controlTest, matchedChannels, rankPValue } from '../interp/controls.ts';
import { ANSWER_SOURCE } from '../interp/patching.ts';
import { fmt, heatmap, intervalChart, lineChart, scatter, type Claim, type StepReport } from '../interp/report/index.ts';
import { trainSae, type Sae } from '../interp/sae/index.ts';
import { mean, pairedPermutationFloor, pairedPermutationTest, quantile, sorted } from '../interp/stats.ts';
import {
  baselineAccuracy,
  getTask,
  mixtureTask,
  type AnyTaskOptions,
  type MixtureTask,
  type Task,
  type TaskBatch,
} from '../interp/tasks/index.ts';
import { scoredAccuracyOf, trainOnTask, type GatePoint } from '../interp/train-task.ts';
import {
  answerCells,
  answerUpperHalf,
  cellLatents,
  channelVariance,
  firingDensity,
  fitTransferProbe,
  lastResidual,
  lastResidualAttribution,
  latentImportance,
  latentsAblated,
  lossIncreases,
  meanAblated,
  scoreTransferProbe,
  topK,
  type AnswerCells,
  type ProbeSource,
} from '../interp/transfer.ts';
import { COPYING_TASK } from './copying.ts';
import { firstSeeds, noAnswerSourceNote, studyModels, withAnswerSource, type StudyModel } from './models.ts';
import { notApplicableStep } from './not-applicable.ts';
import { saveFigure, saveReport } from './report-io.ts';
import { trainSettings } from './config.ts';
import { acrossModels } from './transfer-across.ts';
import type { Step, StepContext } from './step.ts';
import { stepDirName, stepInfo } from './table.ts';

type Row = Record<string, number | string | null>;
const arrow = (a: string, b: string) => `${a} → ${b}`;
/** a number for a summary line: never "NaN" */
const num = (v: number) => (Number.isFinite(v) ? fmt(v) : 'n/a');

interface MixtureRecord {
  settings: unknown;
  stepsTrained: number;
  stoppedEarly: boolean;
  trainSeconds: number;
  gateCurve: GatePoint[];
}

/** The mixture's components with their step-1 options (as step 1 builds them). */
function mixtureComponents(ctx: StepContext, models: StudyModel[]): { name: string; options: Record<string, number> }[] {
  const t = ctx.config.train;
  const names = ctx.config.transfer.mixture.length ? ctx.config.transfer.mixture : [...new Set(models.map((m) => m.task))];
  return names.map((name) => {
    if (typeof name !== 'string') throw new Error(`config field "transfer.mixture": task names, got ${JSON.stringify(name)}`);
    getTask(name); // an error naming the known tasks
    const extra = (t.taskOptions as Record<string, Record<string, number> | undefined>)[name];
    if (!extra) throw new Error(`step 11: config.train.taskOptions has no entry for mixture component "${name}"`);
    return { name, options: { seqLen: t.seqLen, ...extra } };
  });
}

/** Trains the mixture model, or loads it from this step's folder or its last finished one when its settings match. */
async function mixtureModel(ctx: StepContext, mix: MixtureTask, opts: { vocabSize: number; seqLen: number }) {
  const t = ctx.config.train;
  const settings = {
    components: mix.components.map((c) => ({ task: c.task.name, options: c.options })),
    taskOptions: opts,
    ...trainSettings(t),
    steps: ctx.config.transfer.steps,
    seed: ctx.config.seed,
  };
  const dir = ctx.path('mixture');
  const matches = (d: string) => {
    try {
      const rec = JSON.parse(readFileSync(join(d, 'record.json'), 'utf8')) as MixtureRecord;
      return JSON.stringify(rec.settings) === JSON.stringify(settings) ? rec : null;
    } catch {
      return null;
    }
  };
  let record = matches(dir);
  const finished = join(ctx.runDir, stepDirName(stepInfo('transfer')), 'mixture');
  if (!record && existsSync(finished) && matches(finished)) {
    cpSync(finished, dir, { recursive: true });
    record = matches(dir);
  }
  if (record) return { model: await loadPretrained(dir, { backend: ctx.backend }), record, reused: true };
  const t0 = performance.now();
  const trained = await trainOnTask(
    {
      ...settings,
      task: mix.name,
      stages: [],
      outDir: dir,
      logEvery: 1,
      log: (line) => {
        const m = /^step (\d+)\//.exec(line);
        if (m) ctx.progress('mixture', Number(m[1]), settings.steps);
      },
    },
    ctx.rng('mixture-model'),
    mix as unknown as Task<AnyTaskOptions>,
  );
  await savePretrained(trained.model, dir);
  // the optimiser state was only needed to resume training
  await rm(join(dir, 'checkpoint'), { recursive: true, force: true });
  record = {
    settings,
    stepsTrained: trained.stepsTrained,
    stoppedEarly: trained.stoppedEarly,
    trainSeconds: (performance.now() - t0) / 1000,
    gateCurve: trained.gateCurve,
  };
  await writeTextAtomic(join(dir, 'record.json'), `${JSON.stringify(record)}\n`);
  return { model: trained.model, record, reused: false };
}

/**
 * The hierarchical bootstrap of a control test resamples the control sets too, so its cost grows
 * with their number: its intervals use the first INTERVAL_CONTROLS sets, the rank p all of them.
 */
const INTERVAL_CONTROLS = 999;

/** The effect against its controls, for a table row and a claim: intervals from controlTest, the rank p among every control. */
function rankAmong(own: Float64Array, controls: Float64Array[], rng: mi.Rng, bootstrap: number) {
  const t = controlTest(own, controls.slice(0, INTERVAL_CONTROLS), rng, { bootstrap });
  const means = controls.map((c) => mean(c));
  const control = mean(means);
  return {
    effect: t.estimate,
    lo: t.interval[0],
    hi: t.interval[1],
    control,
    controlLo: quantile(sorted(means), 0.025, true),
    controlHi: quantile(sorted(means), 0.975, true),
    difference: t.estimate - control,
    dLo: t.differenceInterval[0],
    dHi: t.differenceInterval[1],
    p: rankPValue(t.estimate, means),
    pFloor: 1 / (controls.length + 1),
    controls: controls.length,
  };
}

export const transferStep: Step = {
  ...stepInfo('transfer'),
  version: 5,
  needs: [1, 3],
  configKeys: ['transfer', 'train', 'sae', 'circuit', 'probes', 'permutations'],
  appliesToModel: false,
  async run(ctx) {
    const report = ctx.report();
    const claims: Claim[] = [];
    const summary: string[] = [];
    // transfer is read on answers copied from a source (the answer bit, answer circuits): a language
    // model on text has none, so it is left out, and the step has nothing to do without such models
    const studied = firstSeeds(studyModels(ctx), 1);
    const { applicable: models, notApplicable } = withAnswerSource(studied.filter((m) => m.task !== COPYING_TASK));
    // repeated tokens test a language model's copying; no model is trained on them, so there is no mixture to train
    const copyTests = studied.filter((m) => m.task === COPYING_TASK).map((m) => m.label);
    const skipNote =
      [
        noAnswerSourceNote(notApplicable, 'transfer (answer-bit probes, circuits and latents scored on the answers)'),
        copyTests.length
          ? `Not applicable to ${copyTests.join(', ')}: ${COPYING_TASK} is a language model's copying test (steps/copying.ts), a task no model is trained on, so there is no mixture model to train on it and no second task of the same model to transfer to.`
          : null,
      ]
        .filter((x) => x !== null)
        .join(' ') || null;
    if (!models.length) return notApplicableStep(ctx, skipNote!, ['mixture.json', 'cross-model.json']);
    if (skipNote) report.notes.push(skipNote);

    // ------------------------------------------------------------------ the mixture model
    const comps = mixtureComponents(ctx, models);
    const within = comps.length >= 2 ? await withinMixture(ctx, comps, report, claims) : null;
    if (within) summary.push(within);
    else
      report.notes.push(
        `The mixture needs at least 2 tasks (transfer.mixture or tasks that passed step 1's gate): have ${comps.map((c) => c.name).join(', ') || 'none'}; within-model transfer not measured.`,
      );

    // ------------------------------------------------------------------ across models, aligned
    const across = await acrossModels(ctx, models, report, claims);
    summary.push(across);

    report.claims.push(...claims);
    report.summary = summary.join(' ');
    for (const t of report.tables) t.rows = t.rows.map((r) => r.map((v) => (typeof v === 'number' && !Number.isFinite(v) ? 'n/a' : v)));
    saveReport(ctx, report);
    return report.summary;
  },
};

// ---------------------------------------------------------------------------------------------
// Within the mixture model

async function withinMixture(
  ctx: StepContext,
  comps: { name: string; options: Record<string, number> }[],
  report: StepReport,
  claims: Claim[],
): Promise<string> {
  const tc = ctx.config.transfer,
    gate = ctx.config.train.gate;
  const mix = mixtureTask(comps.map((c) => ({ task: getTask(c.name), options: c.options })));
  const opts = { vocabSize: mix.vocabSize, seqLen: Math.max(...comps.map((c) => c.options.seqLen)) };
  const { model, record, reused } = await mixtureModel(ctx, mix, opts);
  // Whether the model was reused goes to the log only: the step's artefacts must not depend on
  // whether an earlier run of it was interrupted (test/reliability/resume.test.ts); the seconds in
  // the caption are the training run's own, kept in its record.
  ctx.log(`mixture model: ${reused ? 'reused' : `trained, ${record.stepsTrained} steps in ${record.trainSeconds.toFixed(1)} s`}`);
  try {
    // the gate, per component, on sequences of its own stream (not the training checks')
    const evalN = ctx.config.train.evalBatches * ctx.config.train.batchSize;
    const baselines = mix.baselines(opts);
    const gateRows: { name: string; accuracy: number; baseline: { name: string; accuracy: number }; chance: number; passed: boolean }[] =
      [];
    for (const [k, c] of comps.entries()) {
      const batch = mix.generateComponent(opts, k, ctx.rng(`mixture-gate/${c.name}`), evalN);
      const acc = await scoredAccuracyOf(model, [batch]);
      const best = baselines
        .map((b) => ({ name: b.name.split(' / ')[k], accuracy: baselineAccuracy(b, [batch]).accuracy }))
        .sort((a, b) => b.accuracy - a.accuracy)[0];
      gateRows.push({
        name: c.name,
        accuracy: acc.accuracy,
        baseline: best,
        chance: mix.componentChance(opts)[k],
        passed: acc.accuracy >= gate,
      });
    }
    report.tables.push({
      title: 'The mixture model: held-out accuracy per component',
      columns: ['component', 'accuracy', 'strongest baseline', 'baseline accuracy', 'chance', `gate ${gate}`],
      rows: gateRows.map((g) => [
        g.name,
        g.accuracy,
        g.baseline.name,
        g.baseline.accuracy,
        g.chance,
        g.passed ? 'passed' : 'failed: not analysed',
      ]),
    });
    report.figures.push(
      await saveFigure(
        ctx,
        'mixture-training',
        lineChart(
          record.gateCurve.map((p) => ({ step: p.step, accuracy: p.accuracy })),
          {
            title: `Mixture of ${comps.map((c) => c.name).join(' + ')}: held-out accuracy while training`,
            x: 'step',
            y: 'accuracy',
            points: true,
          },
        ),
        'Training the mixture model',
        `Accuracy over both components' scored positions on the training checks' own held-out sequences, every ${ctx.config.train.evalEvery} steps; training stops at ${ctx.config.train.stopAccuracy}. ${record.stepsTrained} steps, ${fmt(record.trainSeconds)} s. The gate is then checked per component on ${evalN} fresh sequences each (table).`,
      ),
    );
    const passed = comps.map((c, k) => ({ ...c, k })).filter((_, k) => gateRows[k].passed);
    const failed = gateRows.filter((g) => !g.passed);
    if (failed.length)
      report.notes.push(
        `Mixture components below the gate, not analysed: ${failed.map((g) => `${g.name} (accuracy ${fmt(g.accuracy)} < ${gate})`).join(', ')}.`,
      );
    const accText = gateRows.map((g) => `${g.name} ${num(g.accuracy)}`).join(', ');
    if (passed.length < 2)
      return `Mixture model (${accText}): fewer than 2 components passed the gate, so within-model reuse was not measured.`;

    // data: per component a selection half and a test half
    const data = new Map<
      string,
      { sel: TaskBatch; test: TaskBatch; selActs: Float32Array; testActs: Float32Array; selCells: AnswerCells; testCells: AnswerCells }
    >();
    for (const c of passed) {
      const sel = mix.generateComponent(opts, c.k, ctx.rng(`mixture-data/${c.name}/selection`), tc.examples);
      const test = mix.generateComponent(opts, c.k, ctx.rng(`mixture-data/${c.name}/test`), tc.examples);
      const selActs = await lastResidual(model, sel),
        testActs = await lastResidual(model, test);
      data.set(c.name, {
        sel,
        test,
        selActs,
        testActs,
        selCells: await answerCells(model, sel, selActs),
        testCells: await answerCells(model, test, testActs),
      });
    }
    const names = passed.map((c) => c.name);
    const pairs = names.flatMap((a) => names.map((b) => ({ a, b })));
    const cc = ctx.config.circuit;
    // the claims (A != B) rank among transfer.controls; the diagonal, a ceiling without a claim, among circuit.controls
    const controlsFor = (a: string, b: string) => (a === b ? cc.controls : tc.controls);

    const t0 = performance.now();
    const lap = (what: string) => ctx.log(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s into the analysis`);
    // --- circuits
    const circuit = new Map<string, number[]>();
    for (const c of passed) {
      const source = ANSWER_SOURCE[c.name];
      if (!source) throw new Error(`step 11: no answer source defined for ${c.name} (interp/patching.ts ANSWER_SOURCE)`);
      const values = await lastResidualAttribution(
        model,
        getTask(c.name),
        c.options,
        data.get(c.name)!.sel,
        source,
        ctx.rng(`corrupt/${c.name}`),
      );
      circuit.set(c.name, topByMagnitude(values, cc.size));
    }
    const circuitRows: Row[] = [];
    for (const { a, b } of pairs) {
      const B = data.get(b)!;
      const variance = channelVariance(B.selCells);
      const rng = ctx.rng(`circuit-controls/${a}/${b}`);
      const sets = [
        circuit.get(a)!,
        ...Array.from({ length: controlsFor(a, b) }, () => matchedChannels(circuit.get(a)!, variance, cc.strata, rng)),
      ];
      const [own, ...controls] = await lossIncreases(
        model,
        B.testCells,
        sets.map((s) => () => meanAblated(B.testCells, s)),
      );
      circuitRows.push({ from: a, to: b, ...rankAmong(own, controls, ctx.rng(`circuit-test/${a}/${b}`), tc.bootstrap) });
    }
    const ceiling = (rows: Row[], b: string) => rows.find((r) => r.from === b && r.to === b)!;
    report.figures.push(
      await saveFigure(
        ctx,
        'circuit-reuse',
        heatmap(
          names.map((a) => names.map((b) => circuitRows.find((r) => r.from === a && r.to === b)!.difference as number)),
          {
            title: "Circuit reuse: B's answer loss from ablating A's circuit, minus matched controls",
            rowTitle: 'circuit of (A)',
            colTitle: 'ablated on (B)',
            valueTitle: 'loss increase - control',
            scheme: 'viridis',
            width: 240,
            height: 240,
          },
        ),
        'Circuit reuse inside the mixture model',
        `Rows and columns: ${names.join(', ')}. Mean ablation of A's ${cc.size}-channel attribution-patching circuit (last residual, chosen on A's ${tc.examples} selection sequences) at B's answer cells on B's ${tc.examples} test sequences: increase of B's answer loss (nats) minus the mean over ${tc.controls} channel sets matched to A's circuit in activation variance at B's cells (${cc.strata} strata). Diagonal: each task's own circuit (the ceiling; ${cc.controls} controls).`,
      ),
    );
    report.tables.push(controlTable('Circuit reuse (answer-loss increase, nats)', circuitRows));

    lap('circuit reuse');
    // --- features: one SAE on the pooled residual of the components' selection sequences
    const sc = ctx.config.sae;
    const pooled = Float32Array.from(passed.flatMap((c) => [...data.get(c.name)!.selActs]));
    const sae: Sae = await trainSae(pooled, {
      kind: 'topk',
      d: model.config.hidden_size,
      latents: sc.latentsMultiplier * model.config.hidden_size,
      k: sc.k,
      l1: sc.l1,
      steps: sc.steps,
      batchSize: sc.batchSize,
      lr: sc.lr,
      seed: ctx.rng('mixture-sae').int(0, 2 ** 31),
      backend: ctx.backend,
    });
    const featureRows: Row[] = [];
    const densityRows: Row[] = [];
    try {
      const lat = new Map<string, { sel: Awaited<ReturnType<typeof cellLatents>>; test: Awaited<ReturnType<typeof cellLatents>> }>();
      for (const c of passed) {
        const D = data.get(c.name)!;
        lat.set(c.name, { sel: await cellLatents(sae, D.selCells), test: await cellLatents(sae, D.testCells) });
      }
      const top = new Map<string, number[]>();
      for (const c of passed)
        top.set(c.name, topK(await latentImportance(model, data.get(c.name)!.selCells, lat.get(c.name)!.sel), tc.latents));
      for (const { a, b } of pairs) {
        const B = data.get(b)!,
          L = lat.get(b)!;
        const density = firingDensity(L.sel);
        const rng = ctx.rng(`feature-controls/${a}/${b}`);
        const sets = [
          top.get(a)!,
          ...Array.from({ length: controlsFor(a, b) }, () => matchedChannels(top.get(a)!, density, cc.strata, rng)),
        ];
        const [own, ...controls] = await lossIncreases(
          model,
          B.testCells,
          sets.map((s) => () => latentsAblated(B.testCells, L.test, s)),
        );
        featureRows.push({ from: a, to: b, ...rankAmong(own, controls, ctx.rng(`feature-test/${a}/${b}`), tc.bootstrap) });
      }
      if (names.length >= 2) {
        const [x, y] = names;
        const dx = firingDensity(lat.get(x)!.test),
          dy = firingDensity(lat.get(y)!.test);
        for (let l = 0; l < sae.latents; l++)
          densityRows.push({
            latent: l,
            [x]: dx[l],
            [y]: dy[l],
            group: top.get(x)!.includes(l) ? `top for ${x}` : top.get(y)!.includes(l) ? `top for ${y}` : 'other',
          });
        report.figures.push(
          await saveFigure(
            ctx,
            'latent-density',
            scatter(densityRows, {
              title: 'Mixture SAE: firing density of each latent on two tasks',
              x,
              y,
              color: 'group',
              xTitle: `fraction of ${x} answer cells`,
              yTitle: `fraction of ${y} answer cells`,
            }),
            'Which latents the tasks share',
            `One TopK SAE (k ${sc.k}, ${sae.latents} latents, ${sc.steps} steps) on the mixture model's last residual, trained on every position of the components' selection sequences; each point a latent, its firing density at the answer cells of each task's test sequences. Coloured: the ${tc.latents} latents whose ablation raises each task's answer loss most (chosen on its selection sequences).`,
          ),
        );
      }
    } finally {
      sae.dispose();
    }
    report.tables.push(controlTable('Feature reuse (answer-loss increase from ablating SAE latents, nats)', featureRows));

    lap('feature reuse');
    // --- probes of the answer bit
    const fits = new Map<string, ReturnType<typeof fitTransferProbe>>();
    const sources = new Map<string, ProbeSource>();
    const po = ctx.config.probes;
    const probeOpts = { maxRows: tc.maxRows, folds: po.folds, nLambda: po.nLambda, nBoot: tc.bootstrap };
    for (const c of passed) {
      const D = data.get(c.name)!;
      // both halves: the probe makes its own split by sequence
      const labels = Object.fromEntries(
        Object.keys(D.sel.labels).map((k) => [k, Int32Array.from([...D.sel.labels[k], ...D.test.labels[k]])]),
      );
      const src: ProbeSource = {
        acts: Float32Array.from([...D.selActs, ...D.testActs]),
        d: model.config.hidden_size,
        seqLen: opts.seqLen,
        variable: answerUpperHalf(getTask(c.name), c.options, labels),
      };
      sources.set(c.name, src);
      fits.set(c.name, fitTransferProbe(src, ctx.rng(`probe/${c.name}`), probeOpts));
    }
    const probeRows: Row[] = [];
    for (const { a, b } of pairs) {
      const s = scoreTransferProbe(fits.get(a)!, sources.get(b)!, fits.get(b)!.testRows, ctx.rng(`probe-score/${a}/${b}`), tc.bootstrap);
      const test = pairedPermutationTest(s.perSequence, s.controlPerSequence, ctx.rng(`probe-test/${a}/${b}`), {
        nPerm: ctx.config.permutations,
        alternative: 'greater',
      });
      probeRows.push({
        from: a,
        to: b,
        accuracy: s.accuracy.estimate,
        lo: s.accuracy.interval[0],
        hi: s.accuracy.interval[1],
        control: s.control.estimate,
        controlLo: s.control.interval[0],
        controlHi: s.control.interval[1],
        p: test.pValue,
        pFloor: pairedPermutationFloor(s.sequences, ctx.config.permutations, 'greater'),
        rows: s.rows,
        sequences: s.sequences,
        variable: sources.get(b)!.variable.name,
      });
    }
    report.figures.push(
      await saveFigure(
        ctx,
        'probe-reuse',
        intervalChart(
          probeRows.flatMap((r) => [
            { pair: arrow(r.from as string, r.to as string), series: "A's probe", value: r.accuracy, lo: r.lo, hi: r.hi },
            {
              pair: arrow(r.from as string, r.to as string),
              series: 'shuffled-label control',
              value: r.control,
              lo: r.controlLo,
              hi: r.controlHi,
            },
          ]),
          {
            title: "Answer-bit probe of task A on task B's rows (mixture model)",
            category: 'pair',
            value: 'value',
            lo: 'lo',
            hi: 'hi',
            color: 'series',
            valueTitle: 'accuracy (chance 0.5)',
          },
        ),
        'Probe reuse inside the mixture model',
        `A's L1-logistic probe of its answer bit, fitted on A's rows of the mixture model's last residual, scored on B's held-out rows (whole sequences), with bootstrap intervals over sequences; A → A is the in-task score. Beside it the same probe fitted on shuffled labels.`,
      ),
    );
    report.tables.push({
      title: 'Probe reuse (answer bit, within the mixture model)',
      columns: ['probe of (A)', 'scored on (B)', 'accuracy', 'CI', "B's own probe", 'shuffled-label control', 'p', 'rows', 'sequences'],
      rows: probeRows.map((r) => [
        r.from as string,
        r.to as string,
        r.accuracy as number,
        `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
        ceiling(probeRows, r.to as string).accuracy as number,
        r.control as number,
        r.from === r.to ? 'n/a' : (r.p as number),
        r.rows as number,
        r.sequences as number,
      ]),
    });

    lap('probe reuse');
    // --- claims, per ordered pair of different tasks
    for (const { a, b } of pairs.filter((p) => p.a !== p.b)) {
      for (const [what, rows, control] of [
        [
          'Circuit reuse',
          circuitRows,
          `${tc.controls} channel sets matched to A's circuit by activation-variance stratum at B's answer cells`,
        ],
        ['Feature reuse', featureRows, `${tc.controls} latent sets matched to A's latents by firing-density stratum on B`],
      ] as const) {
        const r = rows.find((x) => x.from === a && x.to === b)!;
        const own = ceiling(rows, b);
        claims.push({
          statement: `${what} ${arrow(a, b)} in the mixture model: ablating ${what === 'Circuit reuse' ? `A's ${cc.size}-channel circuit` : `A's ${tc.latents} most important SAE latents`} raises B's answer loss by ${fmt(r.effect as number)} nats (B's own: ${fmt(own.effect as number)})`,
          estimate: r.effect as number,
          interval: [r.lo as number, r.hi as number],
          level: 0.95,
          test: `rank of the loss increase among ${tc.controls} matched controls (one model: the floor is 1/${tc.controls + 1}); interval: bootstrap over B's ${tc.examples} test sequences (with the first ${Math.min(INTERVAL_CONTROLS, tc.controls)} controls for A minus control)`,
          p: r.p as number,
          pFloor: r.pFloor as number,
          control,
          controlEstimate: r.control as number,
          controlInterval: [r.controlLo as number, r.controlHi as number],
          ...pending((r.dLo as number) > 0, 'the 95% hierarchical-bootstrap interval of A-minus-control lies above 0'),
        });
      }
      const r = probeRows.find((x) => x.from === a && x.to === b)!;
      claims.push({
        statement: `Probe reuse ${arrow(a, b)} in the mixture model: A's answer-bit probe reads B's answer bit with accuracy ${fmt(r.accuracy as number)} (B's own probe ${fmt(ceiling(probeRows, b).accuracy as number)})`,
        estimate: r.accuracy as number,
        interval: [r.lo as number, r.hi as number],
        level: 0.95,
        test: `one-sided paired sign-flip test over B's ${r.sequences} held-out sequences (per-sequence accuracy, probe vs control), ${ctx.config.permutations} flips; interval: bootstrap over sequences`,
        p: r.p as number,
        pFloor: r.pFloor as number,
        control: "the same probe fitted on A's labels shuffled, scored on the same rows of B (chance 0.5)",
        controlEstimate: r.control as number,
        controlInterval: [r.controlLo as number, r.controlHi as number],
        ...pending((r.lo as number) > (r.controlHi as number), "interval above the shuffled-label control's"),
      });
    }
    report.notes.push(
      `Within the mixture model every task is read in the same coordinates, so using one task's circuit, latents or probe on another is well posed. Each reuse effect stands beside its matched controls and beside B's own (the diagonal, a ceiling). The answer bit: the answer token in the upper half of its task's answer range (${names.map((n) => `${n}: ${sources.get(n)!.variable.name}`).join(', ')}); probes are split by sequence (held-out rows never share a sequence with training rows) and A's probe is scored on B's own held-out rows. Latents are ablated by removing their decoder contribution at the answer cells (the SAE's error term stays).`,
    );
    ctx.writeJson('mixture.json', {
      components: comps,
      taskOptions: opts,
      gate: gateRows,
      record,
      circuits: Object.fromEntries(circuit),
      circuitRows,
      featureRows,
      probeRows,
      density: densityRows,
    });
    const off = (rows: Row[], f: string) =>
      rows
        .filter((r) => r.from !== r.to)
        .map((r) => `${arrow(r.from as string, r.to as string)} ${num(r[f] as number)}`)
        .join(', ');
    return `Mixture model (${accText}): circuit reuse minus control ${off(circuitRows, 'difference')} nats; feature reuse minus control ${off(featureRows, 'difference')}; probe reuse ${off(probeRows, 'accuracy')} (chance 0.5).`;
  } finally {
    model.dispose();
  }
}

function controlTable(title: string, rows: Row[]) {
  return {
    title,
    columns: ['from (A)', 'on (B)', 'effect', 'CI', 'control mean', 'control 2.5-97.5%', 'A - control', 'CI', 'rank p'],
    rows: rows.map((r) => [
      r.from as string,
      r.to as string,
      r.effect as number,
      `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
      r.control as number,
      `${fmt(r.controlLo as number)} to ${fmt(r.controlHi as number)}`,
      r.difference as number,
      `${fmt(r.dLo as number)} to ${fmt(r.dHi as number)}`,
      r.p as number,
    ]),
  };
}
