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
// Across models. Step 1's first-seed models share no basis, so nothing of one is applied to the
// other's raw coordinates: the same input sequences (half from each task) go through both, an
// orthogonal Procrustes rotation is fitted on half of them and its fit shown on the rest (against
// the identity, random rotations and re-paired fits); then A's probe and A's step-3 SAE are applied
// to B's activations rotated into A's basis, beside the unrotated ones and controls.
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import { loadPretrained, savePretrained } from '../mamba/pretrained.ts';
import { writeTextAtomic } from '../mamba/safetensors.ts';
import { applyAlignment, fitAlignment, randomRotation, type Alignment, type Rows } from '../interp/align.ts';
import { topByMagnitude } from '../interp/attribution.ts';
import { pending } from '../interp/claims.ts';
import { controlTest, matchedChannels, type ControlTest } from '../interp/controls.ts';
import { ANSWER_SOURCE } from '../interp/patching.ts';
import { balancedRows } from '../interp/probe-eval.ts';
import { barChart, fmt, heatmap, lineChart, scatter, type Claim } from '../interp/report/index.ts';
import { trainSae, type Sae, type SaeKind } from '../interp/sae/index.ts';
import { mean, pairedPermutationFloor, pairedPermutationTest, quantile } from '../interp/stats.ts';
import { baselineAccuracy, getTask, mixtureTask, type AnyTaskOptions, type MixtureTask, type TaskBatch } from '../interp/tasks/index.ts';
import { scoredAccuracyOf, trainOnTask, type GatePoint } from '../interp/train-task.ts';
import {
  answerCells,
  answerUpperHalf,
  cellLatents,
  channelVariance,
  firingDensity,
  fitTransferProbe,
  fvuOf,
  lastResidual,
  lastResidualAttribution,
  latentImportance,
  latentsAblated,
  lossIncreases,
  meanAblated,
  perGroup,
  saeRowErrors,
  scoreTransferProbe,
  topK,
  type AnswerCells,
  type ProbeSource,
} from '../interp/transfer.ts';
import { loadSaeRecord, loadSaeRecords } from './artefacts.ts';
import { firstSeeds, studyModels, type StudyModel } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
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
    model: { hiddenSize: t.hiddenSize, layers: t.layers, stateSize: t.stateSize, expand: t.expand, convKernel: t.convKernel },
    steps: ctx.config.transfer.steps,
    ...{ batchSize: t.batchSize, lr: t.lr, warmupSteps: t.warmupSteps, weightDecay: t.weightDecay, clipNorm: t.clipNorm },
    ...{ evalEvery: t.evalEvery, stopAccuracy: t.stopAccuracy, evalBatches: t.evalBatches, seed: ctx.config.seed },
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
      task: mix.name,
      taskOptions: opts as unknown as AnyTaskOptions,
      stages: [],
      model: settings.model,
      steps: settings.steps,
      evalEvery: t.evalEvery,
      stopAccuracy: t.stopAccuracy,
      evalBatches: t.evalBatches,
      batchSize: t.batchSize,
      lr: t.lr,
      warmupSteps: t.warmupSteps,
      weightDecay: t.weightDecay,
      clipNorm: t.clipNorm,
      outDir: dir,
      logEvery: 1,
      log: (line) => {
        const m = /^step (\d+)\//.exec(line);
        if (m) ctx.progress('mixture', Number(m[1]), settings.steps);
      },
    },
    ctx.rng('mixture-model'),
    mix as unknown as Parameters<typeof trainOnTask>[2],
  );
  await savePretrained(trained.model, dir);
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

/** A control test's fields for a table row and a claim. */
function testRow(t: ControlTest) {
  return {
    effect: t.estimate,
    lo: t.interval[0],
    hi: t.interval[1],
    control: t.control,
    controlLo: t.controlInterval[0],
    controlHi: t.controlInterval[1],
    difference: t.difference,
    dLo: t.differenceInterval[0],
    dHi: t.differenceInterval[1],
    p: t.p,
    pFloor: t.pFloor,
  };
}

export const transferStep: Step = {
  ...stepInfo('transfer'),
  version: 4,
  needs: [1, 3],
  configKeys: ['transfer', 'train', 'sae', 'circuit', 'probes', 'permutations'],
  appliesToModel: false,
  async run(ctx) {
    const report = ctx.report();
    const claims: Claim[] = [];
    const summary: string[] = [];
    const models = firstSeeds(studyModels(ctx), 1);

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
  report: ReturnType<StepContext['report']>,
  claims: Claim[],
): Promise<string> {
  const tc = ctx.config.transfer,
    gate = ctx.config.train.gate;
  const mix = mixtureTask(comps.map((c) => ({ task: getTask(c.name), options: c.options })));
  const opts = { vocabSize: mix.vocabSize, seqLen: Math.max(...comps.map((c) => c.options.seqLen)) };
  const { model, record, reused } = await mixtureModel(ctx, mix, opts);
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
        `Accuracy over both components' scored positions on the training checks' own held-out sequences, every ${ctx.config.train.evalEvery} steps; training stops at ${ctx.config.train.stopAccuracy}. ${record.stepsTrained} steps, ${fmt(record.trainSeconds)} s${reused ? ' (trained by an earlier run of this step, reused)' : ''}. The gate is then checked per component on ${evalN} fresh sequences each (table).`,
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
        ...Array.from({ length: tc.controls }, () => matchedChannels(circuit.get(a)!, variance, cc.strata, rng)),
      ];
      const [own, ...controls] = await lossIncreases(
        model,
        B.testCells,
        sets.map((s) => () => meanAblated(B.testCells, s)),
      );
      const t = controlTest(own, controls, ctx.rng(`circuit-test/${a}/${b}`), { bootstrap: tc.bootstrap });
      circuitRows.push({ from: a, to: b, ...testRow(t) });
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
        `Rows and columns: ${names.join(', ')}. Mean ablation of A's ${cc.size}-channel attribution-patching circuit (last residual, chosen on A's ${tc.examples} selection sequences) at B's answer cells on B's ${tc.examples} test sequences: increase of B's answer loss (nats) minus the mean over ${tc.controls} channel sets matched to A's circuit in activation variance at B's cells (${cc.strata} strata). Diagonal: each task's own circuit (the ceiling).`,
      ),
    );
    report.tables.push(controlTable('Circuit reuse (answer-loss increase, nats)', circuitRows));

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
        const sets = [top.get(a)!, ...Array.from({ length: tc.controls }, () => matchedChannels(top.get(a)!, density, cc.strata, rng))];
        const [own, ...controls] = await lossIncreases(
          model,
          B.testCells,
          sets.map((s) => () => latentsAblated(B.testCells, L.test, s)),
        );
        const t = controlTest(own, controls, ctx.rng(`feature-test/${a}/${b}`), { bootstrap: tc.bootstrap });
        featureRows.push({ from: a, to: b, ...testRow(t) });
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
          test: `rank of the loss increase among ${tc.controls} matched controls (one model: the floor is 1/${tc.controls + 1}); interval: bootstrap over B's ${tc.examples} test sequences`,
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

// ---------------------------------------------------------------------------------------------
// Across step 1's models, after alignment

async function acrossModels(
  ctx: StepContext,
  models: StudyModel[],
  report: ReturnType<StepContext['report']>,
  claims: Claim[],
): Promise<string> {
  const tc = ctx.config.transfer;
  const pairs: [StudyModel, StudyModel][] = [];
  for (let i = 0; i < models.length; i++)
    for (let j = i + 1; j < models.length; j++) {
      const [a, b] = [models[i], models[j]];
      if (a.taskOptions.vocabSize === b.taskOptions.vocabSize && a.taskOptions.seqLen === b.taskOptions.seqLen) pairs.push([a, b]);
      else
        report.notes.push(
          `${a.label} and ${b.label} take different inputs (vocabulary ${a.taskOptions.vocabSize} vs ${b.taskOptions.vocabSize}, length ${a.taskOptions.seqLen} vs ${b.taskOptions.seqLen}): no shared inputs to align them on.`,
        );
    }
  if (!pairs.length) return 'Cross-model transfer: no pair of models with shared inputs.';
  const half = Math.max(2, Math.floor(tc.alignSequences / 4)); // sequences of each task in each half
  const fitRows: Row[] = [],
    probeRows: Row[] = [],
    saeRows: Row[] = [];
  const po = ctx.config.probes;
  const probeOpts = { maxRows: tc.maxRows, folds: po.folds, nLambda: po.nLambda, nBoot: tc.bootstrap };
  for (const [ma, mb] of pairs) {
    const T = ma.taskOptions.seqLen;
    const gen = (m: StudyModel, part: string) =>
      getTask(m.task).generate(
        m.taskOptions as unknown as AnyTaskOptions,
        ctx.rng(`align-data/${ma.label}/${mb.label}/${m.task}/${part}`),
        half,
      );
    const batches = { fitA: gen(ma, 'fit'), fitB: gen(mb, 'fit'), heldA: gen(ma, 'held'), heldB: gen(mb, 'held') };
    const acts = new Map<StudyModel, Record<keyof typeof batches, Float32Array>>();
    for (const m of [ma, mb]) {
      const model = await m.load();
      try {
        const out = {} as Record<keyof typeof batches, Float32Array>;
        for (const k of Object.keys(batches) as (keyof typeof batches)[]) out[k] = await lastResidual(model, batches[k]);
        acts.set(m, out);
      } finally {
        model.dispose();
      }
    }
    const d = acts.get(ma)!.fitA.length / (half * T);
    const rows = (m: StudyModel, ks: (keyof typeof batches)[]): Rows => {
      const parts = ks.map((k) => acts.get(m)![k]);
      return { data: Float32Array.from(parts.flatMap((p) => [...p])), rows: ks.length * half * T, d };
    };
    for (const [A, B] of [
      [ma, mb],
      [mb, ma],
    ] as const) {
      const pair = arrow(A.label, B.label);
      // B's activations into A's basis, fitted on the fit halves of both tasks' sequences
      const fit = fitAlignment(
        { X: rows(B, ['fitA', 'fitB']), Y: rows(A, ['fitA', 'fitB']) },
        { X: rows(B, ['heldA', 'heldB']), Y: rows(A, ['heldA', 'heldB']) },
        ctx.rng(`align/${pair}`),
        tc.alignDraws,
      );
      fitRows.push({
        pair,
        aligned: fit.aligned,
        train: fit.train,
        identity: fit.identity,
        random: mean(fit.random),
        shuffled: mean(fit.shuffled),
        shuffledMax: Math.max(...fit.shuffled),
      });
      const kA = A === ma ? 'A' : 'B',
        kB = B === ma ? 'A' : 'B';
      const fitKey = `fit${kA}` as keyof typeof batches,
        heldKey = `held${kB}` as keyof typeof batches;
      const ownFitKey = `fit${kB}` as keyof typeof batches;
      // B's activations on B's held-out sequences, raw, aligned into A's basis, and randomly rotated there
      const heldB = { data: acts.get(B)![heldKey], rows: half * T, d };
      const aligned = applyAlignment(fit.alignment, heldB);
      const rotated = applyAlignment({ ...fit.alignment, R: randomRotation(d, ctx.rng(`rotation/${pair}`)) } as Alignment, heldB);
      // --- probe: A's on A's model (A's fit-half sequences), scored on B's held-out rows
      const srcA: ProbeSource = {
        acts: acts.get(A)![fitKey],
        d,
        seqLen: T,
        variable: answerUpperHalf(getTask(A.task), A.taskOptions, batches[fitKey].labels),
      };
      const srcBFit: ProbeSource = {
        acts: acts.get(B)![ownFitKey],
        d,
        seqLen: T,
        variable: answerUpperHalf(getTask(B.task), B.taskOptions, batches[ownFitKey].labels),
      };
      const variableB = answerUpperHalf(getTask(B.task), B.taskOptions, batches[heldKey].labels);
      const idx = balancedRows(variableB, tc.maxRows, ctx.rng(`probe-rows/${pair}`));
      const fitA = fitTransferProbe(srcA, ctx.rng(`probe-a/${pair}`), probeOpts);
      const fitOwn = fitTransferProbe(srcBFit, ctx.rng(`probe-b/${pair}`), probeOpts);
      const on = (a: Float32Array) => ({ acts: a, d, seqLen: T, variable: variableB });
      const sAligned = scoreTransferProbe(fitA, on(aligned), idx, ctx.rng(`probe-aligned/${pair}`), tc.bootstrap);
      const sRaw = scoreTransferProbe(fitA, on(heldB.data), idx, ctx.rng(`probe-raw/${pair}`), tc.bootstrap);
      const sOwn = scoreTransferProbe(fitOwn, on(heldB.data), idx, ctx.rng(`probe-own/${pair}`), tc.bootstrap);
      const test = pairedPermutationTest(sAligned.perSequence, sAligned.controlPerSequence, ctx.rng(`probe-test/${pair}`), {
        nPerm: ctx.config.permutations,
        alternative: 'greater',
      });
      const pr = {
        pair,
        aligned: sAligned.accuracy.estimate,
        lo: sAligned.accuracy.interval[0],
        hi: sAligned.accuracy.interval[1],
        raw: sRaw.accuracy.estimate,
        own: sOwn.accuracy.estimate,
        control: sAligned.control.estimate,
        controlLo: sAligned.control.interval[0],
        controlHi: sAligned.control.interval[1],
        p: test.pValue,
        pFloor: pairedPermutationFloor(sAligned.sequences, ctx.config.permutations, 'greater'),
        sequences: sAligned.sequences,
      };
      probeRows.push(pr);
      claims.push({
        statement: `Aligned probe transfer ${pair}: ${A.label}'s answer-bit probe on ${B.label}'s activations rotated into its basis reads ${B.task}'s answer bit with accuracy ${fmt(pr.aligned)} (unaligned ${fmt(pr.raw)}, ${B.label}'s own probe ${fmt(pr.own)})`,
        estimate: pr.aligned,
        interval: [pr.lo, pr.hi],
        level: 0.95,
        test: `one-sided paired sign-flip test over ${pr.sequences} held-out sequences (per-sequence accuracy, probe vs control), ${ctx.config.permutations} flips; interval: bootstrap over sequences`,
        p: pr.p,
        pFloor: pr.pFloor,
        control: 'the same probe fitted on shuffled labels, on the same aligned rows (chance 0.5)',
        controlEstimate: pr.control,
        controlInterval: [pr.controlLo, pr.controlHi],
        ...pending(pr.lo > pr.controlHi, "interval above the shuffled-label control's"),
      });
      // --- SAE: A's step-3 SAE on B's held-out activations, aligned vs a random rotation
      const sae = await firstSeedSae(ctx, A);
      if (sae) {
        try {
          const ownA = { data: acts.get(A)![heldKey], rows: half * T, d };
          const errs = {
            aligned: await saeRowErrors(sae, aligned),
            rotated: await saeRowErrors(sae, rotated),
            raw: await saeRowErrors(sae, heldB.data),
            own: await saeRowErrors(sae, Float32Array.from(ownA.data)),
          };
          const seq = Int32Array.from({ length: half * T }, (_, r) => Math.floor(r / T));
          const perSeq = (e: typeof errs.aligned) => perGroup(e.err, e.total, seq);
          const gain = perSeq(errs.rotated).map((v, i) => v - perSeq(errs.aligned)[i]);
          const t = pairedPermutationTest(gain, null, ctx.rng(`sae-test/${pair}`), {
            nPerm: ctx.config.permutations,
            alternative: 'greater',
          });
          const boot = (e: typeof errs.aligned) => bootFvu(e, seq, ctx.rng(`sae-boot/${pair}`), tc.bootstrap);
          const row = {
            pair,
            aligned: fvuOf(errs.aligned),
            rotated: fvuOf(errs.rotated),
            raw: fvuOf(errs.raw),
            own: fvuOf(errs.own),
            ...boot(errs.aligned),
            ...Object.fromEntries(Object.entries(boot(errs.rotated)).map(([k, v]) => [`r${k}`, v])),
            p: t.pValue,
            pFloor: pairedPermutationFloor(half, ctx.config.permutations, 'greater'),
          } as Row;
          saeRows.push(row);
          claims.push({
            statement: `Aligned SAE transfer ${pair}: ${A.label}'s SAE leaves FVU ${fmt(row.aligned as number)} on ${B.label}'s activations rotated into its basis, below a random rotation's ${fmt(row.rotated as number)} (unaligned ${fmt(row.raw as number)}; on ${A.label}'s own activations of the same inputs ${fmt(row.own as number)})`,
            estimate: row.aligned as number,
            interval: [row.lo as number, row.hi as number],
            level: 0.95,
            test: `one-sided paired sign-flip test over ${half} held-out sequences of per-sequence FVU, random rotation minus aligned, ${ctx.config.permutations} flips; interval: bootstrap over sequences`,
            p: row.p as number,
            pFloor: row.pFloor as number,
            control: "the same SAE on B's activations under a random rotation (centred as the alignment)",
            controlEstimate: row.rotated as number,
            controlInterval: [row.rlo as number, row.rhi as number],
            ...pending((row.hi as number) < (row.rlo as number), "interval below the random rotation's"),
          });
        } finally {
          sae.dispose();
        }
      }
    }
  }
  report.figures.push(
    await saveFigure(
      ctx,
      'alignment-fit',
      barChart(
        fitRows.flatMap((r) =>
          (
            [
              ['Procrustes (held out)', r.aligned],
              ['identity (raw coordinates)', r.identity],
              ['random rotation', r.random],
              ['fitted on re-paired rows', r.shuffled],
            ] as const
          ).map(([map, v]) => ({ pair: r.pair, map, r2: Math.max(v as number, -1) })),
        ),
        {
          title: "Aligning one model's last residual to another's: held-out R²",
          x: 'pair',
          y: 'r2',
          color: 'map',
          yTitle: 'R² (clipped at -1)',
        },
      ),
      'How well one model maps onto another',
      `Orthogonal Procrustes from B's last residual to A's (interp/align.ts), fitted on ${2 * half} shared input sequences (${half} of each task) and measured on ${2 * half} others: R² of the rotated B against A. Beside it: the raw coordinates (identity), random rotations and rotations fitted on the training rows paired at random (${tc.alignDraws} draws each, means shown).`,
    ),
  );
  report.tables.push({
    title: 'Cross-model alignment (R² of B rotated onto A, last residual)',
    columns: ['B → A basis', 'held-out', 'training rows', 'identity', 'random rotation', 're-paired fit (mean)', 're-paired fit (max)'],
    rows: fitRows.map((r) => [
      r.pair as string,
      r.aligned as number,
      r.train as number,
      r.identity as number,
      r.random as number,
      r.shuffled as number,
      r.shuffledMax as number,
    ]),
  });
  report.tables.push({
    title: 'Cross-model probe transfer (answer bit), after alignment',
    columns: ['A → B', 'aligned', 'CI', 'unaligned', "B's own probe", 'shuffled-label control', 'p', 'sequences'],
    rows: probeRows.map((r) => [
      r.pair as string,
      r.aligned as number,
      `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
      r.raw as number,
      r.own as number,
      r.control as number,
      r.p as number,
      r.sequences as number,
    ]),
  });
  if (saeRows.length)
    report.tables.push({
      title: "Cross-model SAE transfer (FVU of A's SAE), after alignment",
      columns: ['A → B', 'aligned', 'CI', 'random rotation', 'unaligned', "A's own activations", 'p'],
      rows: saeRows.map((r) => [
        r.pair as string,
        r.aligned as number,
        `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
        r.rotated as number,
        r.raw as number,
        r.own as number,
        r.p as number,
      ]),
    });
  else report.notes.push("No step-3 SAEs of the first seeds' last residual: cross-model SAE transfer not measured.");
  report.notes.push(
    `Step 1's models are trained separately and share no basis: channel j of one has nothing to do with channel j of the other, so the unaligned numbers are shown only as what raw coordinates give. Each model's activations are mapped into the other's basis by a rotation fitted on shared inputs (the same token sequences fed to both, half of each task); the rotation cannot create structure the two do not share, and its held-out R² against the re-paired null says how much they do.`,
  );
  ctx.writeJson('cross-model.json', { alignment: fitRows, probes: probeRows, sae: saeRows });
  return `Cross-model, after alignment: held-out R² ${fitRows.map((r) => `${r.pair} ${num(r.aligned as number)} (re-paired ${num(r.shuffled as number)})`).join(', ')}; aligned probe accuracy ${probeRows.map((r) => `${r.pair} ${num(r.aligned as number)} (unaligned ${num(r.raw as number)})`).join(', ')}.`;
}

/** A percentile bootstrap over sequences of an FVU (a ratio of sums over the resampled sequences' rows). */
function bootFvu(e: { err: Float64Array; total: Float64Array }, seq: Int32Array, rng: mi.Rng, nBoot: number): { lo: number; hi: number } {
  const nSeq = seq[seq.length - 1] + 1;
  const err = new Float64Array(nSeq),
    tot = new Float64Array(nSeq);
  seq.forEach((g, r) => {
    err[g] += e.err[r];
    tot[g] += e.total[r];
  });
  const reps = new Float64Array(nBoot);
  for (let b = 0; b < nBoot; b++) {
    let s = 0,
      t = 0;
    for (let k = 0; k < nSeq; k++) {
      const j = rng.int(0, nSeq);
      s += err[j];
      t += tot[j];
    }
    reps[b] = s / t;
  }
  reps.sort();
  return { lo: quantile(reps, 0.025, true), hi: quantile(reps, 0.975, true) };
}

/** The first SAE step 3 trained on a model's last residual (TopK preferred), on the CPU. */
async function firstSeedSae(ctx: StepContext, m: StudyModel): Promise<Sae | null> {
  const hook = `blocks.${ctx.config.train.layers - 1}.hook_resid_post`;
  let recs: ReturnType<typeof loadSaeRecords>;
  try {
    recs = loadSaeRecords(ctx.runDir).filter((r) => r.task === m.task && r.seed === m.seed && r.hook === hook);
  } catch {
    return null;
  }
  const rec = recs.find((r) => r.kind === ('topk' as SaeKind)) ?? recs[0];
  return rec ? loadSaeRecord(ctx.runDir, rec, { backend: mi.cpuBackend() }) : null;
}
