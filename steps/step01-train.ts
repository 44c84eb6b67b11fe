// Step 1: train the controlled models. For each task in config.tasks and each of config.train.seeds
// seeds, a small Mamba is trained from scratch on the task (cross-entropy at the scored positions
// only), saved in Hugging Face format under models/<task>-s<seed>/ with its loss curve, and measured
// on held-out sequences at the training length and at longer ones. Models train in parallel in
// config.train.workers worker threads (CPU); each model's randomness comes only from its own named
// streams, so the result does not depend on the number of workers. A model already finished in the
// step's folder (record.json with the same settings) is not retrained when the step resumes.
import { join } from 'node:path';
import { pending } from '../interp/claims.ts';
import { bootstrapCI, mean, pairedPermutationTest } from '../interp/stats.ts';
import { lineChart, type Claim, type Spec } from '../interp/report/index.ts';
import { getTask, type AnyTaskOptions } from '../interp/tasks/index.ts';
import { trainAndEvaluate, type TaskModelJob, type TaskModelRecord } from '../interp/train-task.ts';
import { runInWorkers } from '../interp/worker-pool.ts';
import { readJson } from './files.ts';
import type { TrainedModel } from './artefacts.ts';
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
    const taskOptions = { ...extra, seqLen: t.seqLen } as AnyTaskOptions;
    for (let seed = 0; seed < t.seeds; seed++) {
      const name = `${task}-s${seed}`;
      jobs.push({
        task,
        seed,
        rngSeed: `${ctx.config.seed}/step1/${name}`,
        taskOptions,
        model: { hiddenSize: t.hiddenSize, layers: t.layers, stateSize: t.stateSize, expand: t.expand, convKernel: t.convKernel },
        steps: t.steps,
        batchSize: t.batchSize,
        lr: t.lr,
        warmupSteps: t.warmupSteps,
        weightDecay: t.weightDecay,
        clipNorm: t.clipNorm,
        evalBatches: t.evalBatches,
        evalLengths: t.lengthGeneralisation.filter((L) => L !== t.seqLen),
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
  for (const [i, job] of jobs.entries()) out.push(await trainAndEvaluate(job, (s) => report(i, s)));
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

export const trainStep: Step = {
  ...stepInfo('train'),
  version: 2,
  needs: [],
  configKeys: ['seed', 'tasks', 'train', 'permutations'],
  appliesToModel: false,
  async run(ctx) {
    const jobs = jobsOf(ctx);
    const records = await trainAll(ctx, jobs);
    const models: TrainedModel[] = records.map((r) => ({
      task: r.job.task,
      seed: r.job.seed,
      dir: join('models', `${r.job.task}-s${r.job.seed}`),
      taskOptions: r.job.taskOptions as unknown as Record<string, number>,
      chance: r.chance,
      accuracy: r.accuracy,
      lengthAccuracy: r.lengthAccuracy.map(({ seqLen, accuracy }) => ({ seqLen, accuracy })),
      finalLoss: r.finalLoss,
      trainSeconds: r.trainSeconds,
    }));
    ctx.writeJson('models.json', models);

    const report = ctx.report();
    const t = ctx.config.train;
    const rows: (string | number)[][] = [];
    for (const task of ctx.config.tasks) {
      const mine = records.filter((r) => r.job.task === task);
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
          `Training loss (cross-entropy at the scored positions) per step, one line per seed; ${t.batchSize} sequences of length ${t.seqLen} per step.`,
        ),
      );
      const accRows = mine.flatMap((r) => [
        { seqLen: t.seqLen, accuracy: r.accuracy, seed: `s${r.job.seed}` },
        ...r.lengthAccuracy.map((l) => ({ seqLen: l.seqLen, accuracy: l.accuracy, seed: `s${r.job.seed}` })),
      ]);
      const chance = mine[0]?.chance ?? 0;
      report.figures.push(
        await saveFigure(
          ctx,
          `accuracy-${task}`,
          accuracyByLengthSpec(accRows, chance, task),
          `${task}: accuracy by length`,
          `Held-out accuracy at the scored positions at the training length (${t.seqLen}) and longer lengths, per seed; dashed line: chance (${chance.toFixed(3)}).`,
        ),
      );
      for (const r of mine) {
        rows.push([
          task,
          r.job.seed,
          r.chance,
          r.accuracy,
          ...r.lengthAccuracy.map((l) => `${l.seqLen}: ${l.accuracy.toFixed(3)}`),
          r.finalLoss,
          r.trainSeconds,
        ]);
      }
      // claim: accuracy above chance, sequences pooled over seeds
      const perSeq = mine.flatMap((r) => r.perSequence);
      if (perSeq.length < 2) continue;
      const ci = bootstrapCI(perSeq, ctx.rng(`bootstrap-${task}`), mean, { nBoot: 1000 });
      const perm = pairedPermutationTest(
        perSeq.map((a) => a - chance),
        null,
        ctx.rng(`perm-${task}`),
        { nPerm: ctx.config.permutations, alternative: 'greater' },
      );
      report.claims.push({
        statement: `${task}: held-out accuracy at the training length is above chance (${mine.length} seeds, ${perSeq.length} sequences)`,
        estimate: ci.estimate,
        interval: [ci.lo, ci.hi],
        level: ci.level,
        test: `sign-flip permutation test of per-sequence accuracy minus chance (${perm.nPerm} flips, one-sided); ${ci.method} bootstrap over sequences (${ci.nBoot} resamples)`,
        p: perm.pValue,
        pFloor: perm.floor,
        control: `chance: uniform guess over the ${Math.round(1 / chance)} possible answers`,
        controlEstimate: chance,
        controlInterval: [chance, chance],
        ...pending(ci.lo > chance, 'interval above chance'),
      } satisfies Claim);
    }
    report.tables.push({
      title: 'Models',
      columns: [
        'task',
        'seed',
        'chance',
        'accuracy',
        ...(records[0]?.lengthAccuracy.map((l) => `length ${l.seqLen}`) ?? []),
        'final loss',
        'train s',
      ],
      rows,
    });
    const byTask = ctx.config.tasks.map((task) => {
      const accs = records.filter((r) => r.job.task === task).map((r) => r.accuracy);
      return `${task} ${(100 * Math.min(...accs)).toFixed(1)}-${(100 * Math.max(...accs)).toFixed(1)}%`;
    });
    report.summary = `${records.length} models (${t.seeds} seeds per task, hidden ${t.hiddenSize}, ${t.layers} layers, N ${t.stateSize}, ${t.steps} steps); held-out accuracy at length ${t.seqLen}, range over seeds: ${byTask.join(', ')}.`;
    saveReport(ctx, report);
    return `${records.length} models; accuracy ${byTask.join(', ')}`;
  },
};
