// Step 1: train the controlled models. For each task in config.tasks and each of config.train.seeds
// seeds, a small Mamba is trained from scratch on the task (cross-entropy at the scored positions
// only; through the task's curriculum stages, and until its held-out accuracy reaches
// train.stopAccuracy or train.steps run out), saved in Hugging Face format under
// models/<task>-s<seed>/ with its loss curve, and measured on held-out sequences at the training
// length and at longer ones, beside the task's simple baselines on the same sequences. A model
// whose accuracy at the training length is below train.gate is marked as not passed, and steps
// 2-11 leave it out (steps/models.ts). Models train in parallel in
// config.train.workers worker threads (CPU); each model's randomness comes only from its own named
// streams, so the result does not depend on the number of workers. A model already finished in the
// step's folder (record.json with the same settings) is not retrained when the step resumes.
// Every language model (a text task) is then measured on repeated random tokens, its copying against
// a fresh-half control (steps/copying.ts): a table, a claim per model, and the copying gate that
// decides whether steps 2-10 also study it on repeated-tokens.
import { join } from 'node:path';
import { pending } from '../interp/claims.ts';
import { bootstrapCI, mean, pairedPermutationTest } from '../interp/stats.ts';
import { lineChart, type Claim, type Spec } from '../interp/report/index.ts';
import { getTask, type AnyTaskOptions } from '../interp/tasks/index.ts';
import { loadPretrained } from '../mamba/pretrained.ts';
import {
  checkCopyingConfig,
  copyingChart,
  copyingClaim,
  copyingOptions,
  copyingTable,
  measureModelCopying,
  modelPredictions,
} from './copying.ts';
import { gateModels } from './models.ts';
import { gateOutlook, trainAndEvaluate, type TaskModelJob, type TaskModelRecord } from '../interp/train-task.ts';
import { runInWorkers } from '../interp/worker-pool.ts';
import { readJson } from './files.ts';
import type { TrainedModel } from './artefacts.ts';
import { trainSettings } from './config.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step, StepContext } from './step.ts';
import { stepInfo } from './table.ts';

const WORKER = new URL('../interp/train-worker.ts', import.meta.url);

function jobsOf(ctx: StepContext): TaskModelJob[] {
  const t = ctx.config.train;
  const jobs: TaskModelJob[] = [];
  for (const task of ctx.config.tasks) {
    getTask(task); // an error naming the known tasks
    const extra = (t.taskOptions as Record<string, Record<string, number> | undefined>)[task];
    if (!extra) throw new Error(`step 1: config.train.taskOptions has no entry for task "${task}"`);
    const taskOptions = { seqLen: t.seqLen, ...extra } as AnyTaskOptions;
    const curriculum = (t.curriculum as Record<string, Record<string, number>[] | undefined>)[task] ?? [];
    const stages = curriculum.map((stage, i) => {
      for (const key of Object.keys(stage)) {
        if (!(key in taskOptions)) {
          throw new Error(
            `config field "train.curriculum.${task}[${i}].${key}": not an option of ${task} (options: ${Object.keys(taskOptions).join(', ')})`,
          );
        }
      }
      return { ...taskOptions, ...stage } as AnyTaskOptions;
    });
    for (let seed = 0; seed < t.seeds; seed++) {
      const name = `${task}-s${seed}`;
      jobs.push({
        task,
        seed,
        rngSeed: `${ctx.config.seed}/step1/${name}`,
        taskOptions,
        stages,
        ...trainSettings(t),
        steps: t.steps,
        evalLengths: t.lengthGeneralisation.filter((L) => L !== taskOptions.seqLen),
        dir: ctx.path(join('models', name)),
      });
    }
  }
  return jobs;
}

/** Trains every job: in worker threads when config.train.workers > 1 and the backend is the CPU. */
async function trainAll(ctx: StepContext, jobs: TaskModelJob[]): Promise<TaskModelRecord[]> {
  const total = jobs.length * ctx.config.train.steps;
  const stepsDone = new Array<number>(jobs.length).fill(0);
  const report = (index: number, step: number) => {
    stepsDone[index] = step;
    ctx.progress(
      'train',
      stepsDone.reduce((a, b) => a + b, 0),
      total,
    );
  };
  const workers = ctx.config.train.workers;
  if (workers > 1 && ctx.backend.name === 'cpu') {
    ctx.log(`training ${jobs.length} models in ${workers} worker threads`);
    return runInWorkers<TaskModelJob, TaskModelRecord>(WORKER, jobs, { workers, onProgress: (p, i) => report(i, p as number) });
  }
  const out: TaskModelRecord[] = [];
  for (const [i, job] of jobs.entries()) {
    out.push(await trainAndEvaluate(job, (s) => report(i, s)));
    report(i, job.steps); // a model that stopped early is done
  }
  return out;
}

function accuracyByLengthSpec(rows: Record<string, number | string>[], chance: number, task: string): Spec {
  const lengths = [...new Set(rows.map((r) => r.seqLen as number))].sort((a, b) => a - b);
  return {
    title: `${task}: held-out accuracy by sequence length`,
    width: 360,
    height: 220,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'seqLen',
            type: 'quantitative',
            title: 'sequence length',
            scale: { type: 'log', base: 2 },
            axis: { values: lengths },
          },
          y: { field: 'accuracy', type: 'quantitative', title: 'accuracy at scored positions', scale: { domain: [0, 1] } },
          color: { field: 'seed', type: 'nominal' },
        },
      },
      {
        data: { values: [{ chance }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' },
        encoding: { y: { field: 'chance', type: 'quantitative' } },
      },
    ],
  } as Spec;
}

/** The strongest baseline of a record (highest accuracy on its held-out data). */
function strongest(r: TaskModelRecord) {
  return [...r.baselines].sort((a, b) => b.accuracy - a.accuracy)[0];
}

/** The strongest baseline over a task's models: highest mean accuracy over their sequences pooled. */
function strongestPooled(mine: TaskModelRecord[]) {
  const pooled = mine[0].baselines.map((b) => {
    const values = mine.flatMap((r) => r.baselines.find((x) => x.name === b.name)!.perSequence);
    return { ...b, accuracy: mean(values) };
  });
  return pooled.sort((a, b) => b.accuracy - a.accuracy)[0];
}

/**
 * A language-modelling task's claim and table rows: held-out perplexity below the strongest (lowest)
 * n-gram baseline's on the same windows, tested on per-sequence cross-entropy (paired sign flips),
 * sequences pooled over seeds as the accuracy claim pools them.
 */
function perplexityResults(ctx: StepContext, task: string, mine: TaskModelRecord[]): { claim: Claim; rows: (string | number)[][] } {
  const ce = (r: TaskModelRecord) => r.crossEntropy!;
  const names = ce(mine[0]).baselines.map((b) => b.name);
  const pooled = (pick: (r: TaskModelRecord) => number[]) => mine.flatMap(pick);
  const best = names
    .map((name) => ({ name, values: pooled((r) => ce(r).baselines.find((b) => b.name === name)!.perSequence) }))
    .sort((a, b) => mean(a.values) - mean(b.values))[0];
  const baseline = ce(mine[0]).baselines.find((b) => b.name === best.name)!;
  const model = pooled((r) => ce(r).model.perSequence);
  const diffs = model.map((x, i) => best.values[i] - x);
  // perplexity of the pooled windows: exp of the mean per-sequence cross-entropy (every window has seqLen scored tokens)
  const expMean = (xs: ArrayLike<number>) => Math.exp(mean(Array.from(xs)));
  const ci = bootstrapCI(model, ctx.rng(`bootstrap-ppl-${task}`), expMean, { nBoot: 1000 });
  const baseCi = bootstrapCI(best.values, ctx.rng(`bootstrap-ppl-baseline-${task}`), expMean, { nBoot: 1000 });
  // the effect is paired (the same windows): the interval of the per-window difference, not two intervals apart
  const diffCi = bootstrapCI(diffs, ctx.rng(`bootstrap-ppl-diff-${task}`), mean, { nBoot: 1000 });
  const perm = pairedPermutationTest(diffs, null, ctx.rng(`perm-ppl-${task}`), { nPerm: ctx.config.permutations, alternative: 'greater' });
  const claim: Claim = {
    statement: `${task}: held-out perplexity is below the ${best.name} baseline's on the same windows of held-out documents (${mine.length} seed${mine.length === 1 ? '' : 's'}, ${model.length} windows)`,
    estimate: ci.estimate,
    interval: [ci.lo, ci.hi],
    level: ci.level,
    test: `sign-flip permutation test of per-window cross-entropy, ${best.name} minus model (${perm.nPerm} flips, one-sided; mean difference ${diffCi.estimate.toFixed(4)} nats per token, ${diffCi.method} interval [${diffCi.lo.toFixed(4)}, ${diffCi.hi.toFixed(4)}]); ${ci.method} bootstrap over windows (${ci.nBoot} resamples) of exp(mean cross-entropy)`,
    p: perm.pValue,
    pFloor: perm.floor,
    control: `${best.name} (${baseline.description}; the lower of ${names.join(', ')})`,
    controlEstimate: baseCi.estimate,
    controlInterval: [baseCi.lo, baseCi.hi],
    ...pending(diffCi.lo > 0, `paired interval of the per-window cross-entropy difference (${best.name} minus model) above 0`),
  };
  const rows = mine.map((r) => {
    const ppl = Math.exp(ce(r).model.mean);
    const of = (name: string) => Math.exp(ce(r).baselines.find((b) => b.name === name)?.mean ?? Number.NaN);
    return [
      task,
      r.job.seed,
      ppl,
      of('unigram'),
      of('bigram'),
      ce(r).baselines.every((b) => ppl < Math.exp(b.mean)) ? 'passed' : 'not analysed',
      r.accuracy,
      ce(r).model.perSequence.length,
    ];
  });
  return { claim, rows };
}

export const trainStep: Step = {
  ...stepInfo('train'),
  version: 6,
  needs: [],
  configKeys: ['seed', 'tasks', 'train', 'permutations', 'copying'],
  appliesToModel: false,
  async run(ctx) {
    const t = ctx.config.train;
    const jobs = jobsOf(ctx);
    const records = await trainAll(ctx, jobs);
    const trained: TrainedModel[] = records.map((r) => ({
      task: r.job.task,
      seed: r.job.seed,
      dir: join('models', `${r.job.task}-s${r.job.seed}`),
      taskOptions: r.job.taskOptions as unknown as Record<string, number>,
      chance: r.chance,
      accuracy: r.accuracy,
      lengthAccuracy: r.lengthAccuracy.map(({ seqLen, accuracy }) => ({ seqLen, accuracy })),
      baselines: [...r.baselines].sort((a, b) => b.accuracy - a.accuracy).map(({ name, accuracy }) => ({ name, accuracy })),
      gate: t.gate,
      passed: false,
      stepsTrained: r.stepsTrained,
      finalLoss: r.finalLoss,
      trainSeconds: r.trainSeconds,
      ...(r.crossEntropy
        ? {
            perplexity: Math.exp(r.crossEntropy.model.mean),
            perplexityBaselines: r.crossEntropy.baselines.map((b) => ({ name: b.name, perplexity: Math.exp(b.mean) })),
          }
        : {}),
    }));
    const { passed, excluded } = gateModels(trained, t.gate);
    for (const m of passed) m.passed = true;
    // every language model's copying on repeated random tokens, and its copying gate (steps/copying.ts)
    checkCopyingConfig(ctx.config.copying);
    for (const m of trained.filter((x) => x.perplexity !== undefined)) {
      const dir = ctx.path(m.dir);
      const model = await loadPretrained(dir, { backend: ctx.backend });
      try {
        const opts = copyingOptions(dir, ctx.config.copying.seqLen, ctx.config.copying.varyLength);
        m.copying = await measureModelCopying(ctx, modelPredictions(model), opts, `${m.task}-s${m.seed}`);
      } finally {
        model.dispose();
      }
    }
    ctx.writeJson('models.json', trained);

    const report = ctx.report();
    const rows: (string | number)[][] = [];
    const lmRows: (string | number)[][] = [];
    const lengths = [...new Set(records.flatMap((r) => r.lengthAccuracy.map((l) => l.seqLen)))].sort((a, b) => a - b);
    for (const task of ctx.config.tasks) {
      const mine = records.filter((r) => r.job.task === task);
      if (!mine.length) continue;
      const seqLen = mine[0].job.taskOptions.seqLen;
      // loss curves, seeds as colours
      const curveRows = mine.flatMap((r) =>
        readJson<{ train: { step: number; loss: number }[] }>(join(r.job.dir, 'loss.json')).train.map((p) => ({
          step: p.step,
          loss: p.loss,
          seed: `s${r.job.seed}`,
        })),
      );
      report.figures.push(
        await saveFigure(
          ctx,
          `loss-${task}`,
          lineChart(curveRows, {
            title: `${task}: training loss`,
            x: 'step',
            y: 'loss',
            color: 'seed',
            yTitle: 'cross-entropy at scored positions',
            logY: true,
          }),
          `${task}: loss curves`,
          `Training loss (cross-entropy at the scored positions) per step, one line per seed; ${t.batchSize} sequences per step${mine[0].job.stages.length ? `, through ${mine[0].job.stages.length} curriculum stages (${mine[0].job.stages.map((s) => `length ${s.seqLen}`).join(', ')}) before the target` : ''}.`,
        ),
      );
      const gateRows = mine.flatMap((r) =>
        r.gateCurve.map((g) => ({ step: g.step, accuracy: g.accuracy, seed: `s${r.job.seed}`, stage: `${g.stage}` })),
      );
      if (gateRows.length) {
        report.figures.push(
          await saveFigure(
            ctx,
            `checks-${task}`,
            lineChart(gateRows, {
              title: `${task}: held-out accuracy during training`,
              x: 'step',
              y: 'accuracy',
              color: 'seed',
              yTitle: 'accuracy at scored positions (current stage)',
              points: true,
            }),
            `${task}: accuracy checks`,
            `Held-out accuracy every ${t.evalEvery} steps on the checks' own sequences (${t.evalBatches * t.batchSize} per check) at the current curriculum stage (stage ${mine[0].job.stages.length} is the target); a stage is passed at ${t.stopAccuracy}, and training stops when the target's is.`,
          ),
        );
      }
      const chance = mine[0].chance;
      const best = strongestPooled(mine);
      const accRows = mine.flatMap((r) => [
        { seqLen, accuracy: r.accuracy, seed: `s${r.job.seed}` },
        ...r.lengthAccuracy.map((l) => ({ seqLen: l.seqLen, accuracy: l.accuracy, seed: `s${r.job.seed}` })),
      ]);
      report.figures.push(
        await saveFigure(
          ctx,
          `accuracy-${task}`,
          accuracyByLengthSpec(accRows, chance, task),
          `${task}: accuracy by length`,
          `Held-out accuracy at the scored positions at the training length (${seqLen}) and longer lengths, per seed; dashed line: chance (${chance.toFixed(3)}). Strongest simple baseline at the training length: ${best.name}, ${best.accuracy.toFixed(3)}.`,
        ),
      );
      for (const r of mine) {
        const b = strongest(r);
        rows.push([
          task,
          r.job.seed,
          r.stepsTrained,
          r.chance,
          `${b.name}: ${b.accuracy.toFixed(3)}`,
          r.accuracy,
          r.accuracy >= t.gate ? 'passed' : 'not analysed',
          ...lengths.map((L) => {
            const l = r.lengthAccuracy.find((x) => x.seqLen === L);
            return l ? l.accuracy : '';
          }),
          r.finalLoss,
          r.trainSeconds,
        ]);
      }
      if (mine[0].crossEntropy) {
        const lm = perplexityResults(ctx, task, mine);
        report.claims.push(lm.claim);
        lmRows.push(...lm.rows);
      }
      // claim: accuracy above the strongest simple baseline, on the same sequences (paired), pooled over seeds
      const diffs = mine.flatMap((r) => {
        const base = r.baselines.find((x) => x.name === best.name)!;
        return r.perSequence.map((a, i) => a - base.perSequence[i]);
      });
      const perSeq = mine.flatMap((r) => r.perSequence);
      const basePerSeq = mine.flatMap((r) => r.baselines.find((x) => x.name === best.name)!.perSequence);
      if (perSeq.length < 2) continue;
      const ci = bootstrapCI(perSeq, ctx.rng(`bootstrap-${task}`), mean, { nBoot: 1000 });
      const perm = pairedPermutationTest(diffs, null, ctx.rng(`perm-${task}`), { nPerm: ctx.config.permutations, alternative: 'greater' });
      const baseCi = bootstrapCI(basePerSeq, ctx.rng(`bootstrap-baseline-${task}`), mean, { nBoot: 1000 });
      report.claims.push({
        statement: `${task}: held-out accuracy at the training length is above the strongest simple baseline (${best.name}) on the same sequences (${mine.length} seeds, ${perSeq.length} sequences)`,
        estimate: ci.estimate,
        interval: [ci.lo, ci.hi],
        level: ci.level,
        test: `sign-flip permutation test of per-sequence accuracy minus the baseline's (${perm.nPerm} flips, one-sided); ${ci.method} bootstrap over sequences (${ci.nBoot} resamples)`,
        p: perm.pValue,
        pFloor: perm.floor,
        control: `${best.name} (${best.description}; the strongest of ${mine[0].baselines.map((x) => x.name).join(', ')}; uniform chance ${chance.toFixed(3)})`,
        controlEstimate: baseCi.estimate,
        controlInterval: [baseCi.lo, baseCi.hi],
        ...pending(ci.lo > baseCi.hi, "interval above the baseline's"),
      } satisfies Claim);
    }
    report.tables.push({
      title: 'Models',
      columns: [
        'task',
        'seed',
        'steps',
        'chance',
        'strongest baseline',
        'accuracy',
        `gate ${t.gate}`,
        ...lengths.map((L) => `length ${L}`),
        'final loss',
        'train s',
      ],
      rows,
    });
    const copied = trained.filter((m) => m.copying).map((m) => ({ task: m.task, seed: m.seed, r: m.copying! }));
    if (copied.length) {
      for (const x of copied) report.claims.push(copyingClaim(ctx, x.task, x.seed, x.r));
      report.tables.push(copyingTable(copied));
      report.figures.push(
        await saveFigure(
          ctx,
          'copying',
          copyingChart(ctx, copied),
          'Language models: copying on repeated random tokens',
          'Next-token accuracy per language model on the second copy of repeated random-token sequences, beside the control (the same positions after the same first half, with a fresh random second half) and the first copy (random tokens: chance); 95% bootstrap intervals over sequences.',
        ),
      );
      const c = ctx.config.copying;
      report.notes.push(
        `Copying (the standard induction test for a language model): each language model reads ${c.sequences} sequences of repeated random tokens over its vocabulary, special tokens left out (length ${c.seqLen}: a BOS, a lead-in, L random tokens and the same L again${c.varyLength ? ', L varying per sequence in [ceil(Lmax/2), Lmax]' : ''}), and each sequence's control: the same first half followed by a fresh random second half, scored at the same positions. Its copying gate: the second copy's accuracy above the control's by a paired sign-flip test over sequences with p < ${c.gateAlpha} (raw p: a gate selects what later steps study, it is no claim; the claim above is corrected with the run). A model that passes both gates is also studied by steps 2-10 as repeated-tokens-s<seed>.`,
      );
    }
    if (lmRows.length) {
      report.tables.push({
        title: 'Language models: held-out perplexity',
        columns: ['task', 'seed', 'perplexity', 'unigram', 'bigram', 'gate (below both)', 'next-token accuracy', 'held-out windows'],
        rows: lmRows,
      });
      report.notes.push(
        'Language models (a text task) are gated on perplexity, not accuracy: a model is analysed when its held-out perplexity (exp of the mean cross-entropy at every position of held-out windows, documents never trained on) is below both n-gram baselines on the same windows (interp/text/ngram.ts: add-k unigram, bigram interpolated with it; k and lambda chosen on a tenth of the training documents). Next-token accuracy is shown but gates nothing: on text it stays at 20-35 % however well a model learns.',
      );
    }
    const byTask = ctx.config.tasks.map((task) => {
      const mine = records.filter((r) => r.job.task === task);
      const accs = mine.map((r) => r.accuracy);
      const ppl = mine.flatMap((r) => (r.crossEntropy ? [Math.exp(r.crossEntropy.model.mean)] : []));
      const bi = mine.flatMap((r) => r.crossEntropy?.baselines.map((b) => `${b.name} ${Math.exp(b.mean).toFixed(1)}`) ?? []);
      const lm = ppl.length ? ` (perplexity ${ppl.map((x) => x.toFixed(1)).join(' / ')} against ${[...new Set(bi)].join(', ')})` : '';
      return `${task} ${(100 * Math.min(...accs)).toFixed(1)}-${(100 * Math.max(...accs)).toFixed(1)}%${lm}`;
    });
    const sizes = ctx.config.tasks
      .map((task) => {
        const o = records.find((r) => r.job.task === task)?.job.taskOptions;
        return o
          ? `${task} ${Object.entries(o)
              .map(([k, v]) => `${k} ${v}`)
              .join(' ')}`
          : task;
      })
      .join('; ');
    report.notes.push(`Task sizes: ${sizes}.`);
    if (excluded.length) {
      const why = excluded.map((m) => {
        const r = records.find((x) => x.job.task === m.task && x.job.seed === m.seed)!;
        const last = r.gateCurve[r.gateCurve.length - 1];
        const where = last
          ? `; last check at step ${last.step}: ${last.accuracy.toFixed(3)} at curriculum stage ${last.stage + 1} of ${r.job.stages.length + 1} (length ${last.seqLen})`
          : '';
        return `${m.task}-s${m.seed}: accuracy ${m.accuracy.toFixed(3)} after ${r.stepsTrained} steps${where}; what it would take: ${gateOutlook(r.gateCurve, t.gate, r.job.stages.length + 1).text}`;
      });
      report.notes.push(
        `Learning gate ${t.gate}: ${excluded.length} of ${trained.length} models did not reach it within ${t.steps} steps and are not analysed by steps 2-11: ${why.join('; ')}.`,
      );
    } else report.notes.push(`Learning gate ${t.gate}: every model reached it; steps 2-11 analyse all ${trained.length}.`);
    const copyText = copied.length
      ? `; copying on repeated random tokens (second copy vs fresh-half control): ${copied.map((x) => `${x.task}-s${x.seed} ${x.r.accuracy.toFixed(3)} vs ${x.r.control.toFixed(3)}${x.r.passed ? '' : ' (not studied)'}`).join(', ')}`
      : '';
    report.summary = `${records.length} models (${t.seeds} seeds per task, hidden ${t.hiddenSize}, ${t.layers} layers, N ${t.stateSize}, at most ${t.steps} steps, stopping at ${t.stopAccuracy}); held-out accuracy at the training length, range over seeds: ${byTask.join(', ')}; ${passed.length} of ${records.length} pass the gate ${t.gate}${copyText}.`;
    saveReport(ctx, report);
    return `${records.length} models; accuracy ${byTask.join(', ')}; ${passed.length}/${records.length} pass the gate`;
  },
};
