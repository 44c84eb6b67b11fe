// Training a small Mamba from scratch on a toy task, and measuring it: the loss is cross-entropy at
// the task's scored positions only (targets IGNORE_INDEX elsewhere), so the model is judged on the
// behaviour the task defines rather than on predicting random filler tokens.
//
// Training stops early once the model is good enough: every evalEvery steps its accuracy is
// measured on held-out sequences of its own ("gate" stream, not the data it is reported on), and
// when it reaches stopAccuracy training ends. With a curriculum (stages: easier task options, e.g.
// shorter sequences or fewer tokens to copy), the same check moves it on to the next stage; only
// at the last stage, the target options, does it stop. Every check is recorded (gateCurve), so a
// model that never gets there shows how far it got.
//
// Everything random comes from the Rng passed in (forked by purpose: init, train batches, gate
// checks, eval), so the same seed gives the same model whatever else runs alongside it.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { makeConfig } from '../mamba/config.ts';
import { initMamba, type MambaLM } from '../mamba/model.ts';
import { savePretrained } from '../mamba/pretrained.ts';
import { writeTextAtomic } from '../mamba/safetensors.ts';
import { train, type LossCurve } from '../mamba/train.ts';
import {
  baselineAccuracy,
  getTask,
  IGNORE_INDEX,
  scoredMean,
  type AnyTaskOptions,
  type BaselineResult,
  type Task,
  type TaskBatch,
} from './tasks/index.ts';

export interface ModelShape {
  hiddenSize: number;
  layers: number;
  stateSize: number;
  expand: number;
  convKernel: number;
}

/** What to train on and how: the settings a training call and a serialisable job share. */
export interface TaskTraining {
  task: string;
  /** the target options (the last curriculum stage) */
  taskOptions: AnyTaskOptions;
  /** curriculum stages trained before taskOptions, easiest first (may be empty) */
  stages: AnyTaskOptions[];
  model: ModelShape;
  /** the most optimiser steps (the learning-rate schedule spans these); fewer when it stops early */
  steps: number;
  /** check the accuracy every evalEvery steps (0: never; no curriculum, no early stop) */
  evalEvery: number;
  /** held-out accuracy at which a stage is passed: the next stage starts, or, at the last, training stops */
  stopAccuracy: number;
  /** held-out batches (of batchSize sequences) per check and per evaluated length */
  evalBatches: number;
  batchSize: number;
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  clipNorm: number;
}

export interface TaskTrainOptions extends TaskTraining {
  /** where mamba/train.ts keeps its checkpoint/ and loss.json (resumable) */
  outDir: string;
  log?: (line: string) => void;
  logEvery?: number;
}

/** A Mamba config for a task's vocabulary. */
export function taskModelConfig(vocabSize: number, s: ModelShape) {
  return makeConfig({
    vocab_size: vocabSize,
    hidden_size: s.hiddenSize,
    num_hidden_layers: s.layers,
    state_size: s.stateSize,
    expand: s.expand,
    conv_kernel: s.convKernel,
    pad_token_id: null,
    bos_token_id: null,
    eos_token_id: null,
  });
}

/** Mean cross-entropy of the logits against a task batch's targets (ignored where not scored). */
export function scoredLoss(model: MambaLM, ids: Tensor, batch: TaskBatch): Tensor {
  const targets = mi.tensor(batch.targets, batch.shape, { dtype: 'int32', backend: model.backend });
  return mi.crossEntropy(model.forward(ids), targets, { ignoreIndex: IGNORE_INDEX });
}

function rowsOf(batch: TaskBatch): number[][] {
  const [B, T] = batch.shape;
  return Array.from({ length: B }, (_, b) => Array.from(batch.inputs.subarray(b * T, (b + 1) * T)));
}

/** One accuracy check during training: at `step`, on curriculum stage `stage` (stages.length = the target). */
export interface GatePoint {
  step: number;
  stage: number;
  seqLen: number;
  accuracy: number;
}

export interface TrainedOnTask {
  model: MambaLM;
  curve: LossCurve;
  /** every accuracy check, in order */
  gateCurve: GatePoint[];
  /** optimiser steps taken (o.steps unless it stopped early) */
  stepsTrained: number;
  /** whether the last check reached stopAccuracy at the target options */
  stoppedEarly: boolean;
}

/**
 * Trains a fresh model on the task; returns it with its loss and accuracy curves. Batch k is drawn
 * from rng.fork(`batch${k}`) with the options of the stage it falls in, and the checks' data from
 * rng.fork('gate'), so the same seed gives the same model. Training starts afresh: a checkpoint
 * left in outDir by an interrupted call is removed, because the curriculum's position is not in it.
 * `task` defaults to the registry's o.task (a task built at run time, e.g. a mixture, is passed in).
 */
export async function trainOnTask(o: TaskTrainOptions, rng: mi.Rng, task: Task<AnyTaskOptions> = getTask(o.task)): Promise<TrainedOnTask> {
  const stages = [...o.stages, o.taskOptions];
  for (const s of stages) {
    task.chance(s); // an error naming the option at fault, before any training
    if (s.vocabSize !== o.taskOptions.vocabSize)
      throw new Error(`${o.task}: curriculum stage vocabSize ${s.vocabSize} differs from the task's ${o.taskOptions.vocabSize}`);
  }
  if (!(Number.isInteger(o.evalEvery) && o.evalEvery >= 0))
    throw new Error(`${o.task}: evalEvery must be an integer >= 0, got ${o.evalEvery}`);
  if (o.stages.length && !o.evalEvery) throw new Error(`${o.task}: a curriculum needs evalEvery > 0 to move between stages`);
  await rm(join(o.outDir, 'checkpoint'), { recursive: true, force: true });
  const model = initMamba(taskModelConfig(o.taskOptions.vocabSize, o.model), rng.fork('init'));
  const dataRng = rng.fork('train');
  const gateRng = rng.fork('gate');
  // the stage each step trained on, fixed when the step's batch is first drawn (replays reuse it)
  const stageOfStep: number[] = [];
  let stage = 0;
  const batchAt = new Map<number, TaskBatch>();
  const batchOf = (step: number) => {
    let b = batchAt.get(step);
    if (!b) {
      batchAt.clear();
      stageOfStep[step] ??= stage;
      const opts = stages[stageOfStep[step]];
      b = task.generate(task.trainingOptions?.(opts) ?? opts, dataRng.fork(`batch${step}`), o.batchSize);
      batchAt.set(step, b);
    }
    return b;
  };
  const gateData = stages.map((s, k) => () => heldOutBatches(task, s, gateRng.fork(`stage${k}`), o.evalBatches, o.batchSize));
  const gateCache = new Map<number, TaskBatch[]>();
  const gateCurve: GatePoint[] = [];
  let stoppedEarly = false,
    stepsTrained = o.steps;
  const stop = async (m: MambaLM, step: number) => {
    if (!gateCache.has(stage)) gateCache.set(stage, gateData[stage]());
    const { accuracy } = await scoredAccuracyOf(m, gateCache.get(stage)!);
    gateCurve.push({ step, stage, seqLen: stages[stage].seqLen, accuracy });
    o.log?.(`check step ${step}  stage ${stage}/${stages.length - 1}  length ${stages[stage].seqLen}  accuracy ${accuracy.toFixed(4)}`);
    if (accuracy < o.stopAccuracy) return false;
    if (stage < stages.length - 1) {
      stage++;
      return false;
    }
    stoppedEarly = true;
    stepsTrained = step;
    return true;
  };
  try {
    const curve = await train(model, {
      outDir: o.outDir,
      steps: o.steps,
      lr: o.lr,
      warmupSteps: o.warmupSteps,
      weightDecay: o.weightDecay,
      clipNorm: o.clipNorm,
      minLr: o.lr * 0.05,
      checkpointEvery: Math.max(o.steps, 1),
      logEvery: o.logEvery ?? 50,
      log: o.log ?? (() => undefined),
      batch: (step) => rowsOf(batchOf(step)),
      loss: (m, ids, step) => scoredLoss(m, ids, batchOf(step)),
      stop,
      stopEvery: o.evalEvery,
    });
    return { model, curve, gateCurve, stepsTrained, stoppedEarly };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

export interface AccuracyResult {
  /** hits / scored over all sequences */
  accuracy: number;
  /** per sequence: its accuracy over its own scored positions (the unit a bootstrap resamples) */
  perSequence: number[];
  scored: number;
}

/**
 * Held-out accuracy at the scored positions: argmax of the logits against the targets. The head
 * is applied to the scored positions' final hidden states only, so a long sequence with a few
 * answers (MQAR at 65536 tokens, vocabulary 8192) never holds logits [batch, T, vocab].
 */
export async function scoredAccuracyOf(model: MambaLM, batches: TaskBatch[]): Promise<AccuracyResult> {
  const perSequence: number[] = [];
  let hits = 0,
    scored = 0;
  for (const batch of batches) {
    const [B, T] = batch.shape;
    const rows: number[] = [];
    for (let i = 0; i < B * T; i++) if (batch.targets[i] !== IGNORE_INDEX) rows.push(i);
    if (!rows.length) continue;
    const picked = await mi.tidyAsync(() =>
      mi
        .noGrad(() => {
          const embeds = mi.embedding(model.p('backbone.embeddings.weight'), model.ids(rowsOf(batch)));
          const hidden = mi.reshape(model.hiddenFromEmbeds(embeds), [B * T, model.config.hidden_size]);
          const at = mi.tensor(Int32Array.from(rows), [rows.length], { dtype: 'int32', backend: model.backend });
          return mi.argmax(mi.linear(mi.indexSelect(hidden, 0, at), model.lmHead()), -1);
        })
        .data(),
    );
    const pred = new Map(rows.map((r, k) => [r, picked[k]]));
    for (let b = 0; b < B; b++) {
      let h = 0,
        s = 0;
      for (let t = b * T; t < (b + 1) * T; t++) {
        const target = batch.targets[t];
        if (target === IGNORE_INDEX) continue;
        s++;
        if (pred.get(t) === target) h++;
      }
      if (s) perSequence.push(h / s);
      hits += h;
      scored += s;
    }
  }
  if (!scored) throw new Error('scoredAccuracyOf: the batches have no scored positions');
  return { accuracy: hits / scored, perSequence, scored };
}

/** Per sequence and overall, the model's mean cross-entropy (nats) at the scored positions. */
export async function scoredCrossEntropyOf(
  model: MambaLM,
  batches: readonly TaskBatch[],
): Promise<{ perSequence: number[]; mean: number }> {
  const losses: ArrayLike<number>[] = [];
  for (const batch of batches) {
    losses.push(
      await mi.tidyAsync(() =>
        mi
          .noGrad(() => {
            const targets = mi.tensor(batch.targets, batch.shape, { dtype: 'int32', backend: model.backend });
            return mi.crossEntropy(model.forward(rowsOf(batch)), targets, { ignoreIndex: IGNORE_INDEX, reduction: 'none' });
          })
          .data(),
      ),
    );
  }
  const { perSequence, mean } = scoredMean(batches, (k, i) => losses[k][i], 'scoredCrossEntropyOf');
  return { perSequence, mean };
}

/** `count` held-out batches of the task, from their own stream. */
export function heldOutBatches(
  taskOrName: string | Task<AnyTaskOptions>,
  opts: AnyTaskOptions,
  rng: mi.Rng,
  count: number,
  batchSize: number,
): TaskBatch[] {
  const task = typeof taskOrName === 'string' ? getTask(taskOrName) : taskOrName;
  return Array.from({ length: count }, (_, i) => task.generate(opts, rng.fork(`eval${i}`), batchSize));
}

// ---------------------------------------------------------------------------------------------
// One model as a self-contained, serialisable job (so it can run in a worker thread)

export interface TaskModelJob extends TaskTraining {
  seed: number;
  /** the Rng seed string of this model's streams (init, train batches, eval data) */
  rngSeed: string;
  /** longer sequence lengths to measure length generalisation at */
  evalLengths: number[];
  /** the model's folder: the HF checkpoint, loss.json and record.json end up here */
  dir: string;
}

export interface TaskModelRecord {
  job: TaskModelJob;
  chance: number;
  accuracy: number;
  /** per held-out sequence at the training length */
  perSequence: number[];
  /** the task's simple baselines on the same held-out sequences (per sequence aligned with perSequence) */
  baselines: BaselineResult[];
  lengthAccuracy: { seqLen: number; accuracy: number; perSequence: number[] }[];
  /** the accuracy checks made while training (curriculum stage, length, accuracy) */
  gateCurve: GatePoint[];
  stepsTrained: number;
  stoppedEarly: boolean;
  finalLoss: number;
  trainSeconds: number;
  /** language-modelling tasks (perplexityBaselines): cross-entropy (nats per token) on the held-out
   *  sequences at the training length, the model's and the baselines' (per sequence aligned with perSequence) */
  crossEntropy?: { model: CrossEntropyResult; baselines: (CrossEntropyResult & { name: string; description: string })[] };
}

export interface CrossEntropyResult {
  mean: number;
  perSequence: number[];
}

export const RECORD_FILE = 'record.json';

/** The record of a job already finished in `job.dir` with exactly this job's settings, else null. */
export async function finishedRecord(job: TaskModelJob): Promise<TaskModelRecord | null> {
  try {
    const rec = JSON.parse(await readFile(join(job.dir, RECORD_FILE), 'utf8')) as TaskModelRecord;
    return JSON.stringify(rec.job) === JSON.stringify(job) ? rec : null;
  } catch {
    return null;
  }
}

/**
 * Held-out accuracy of a job's model at one sequence length, on the job's own evaluation stream
 * (fork 'eval' of its Rng, then `len<seqLen>`): the data every later measurement of it reproduces.
 */
export async function evaluateJobAt(
  model: MambaLM,
  job: TaskModelJob,
  seqLen: number,
): Promise<{ seqLen: number; accuracy: number; perSequence: number[] }> {
  const r = await scoredAccuracyOf(model, jobEvalBatches(job, seqLen));
  return { seqLen, accuracy: r.accuracy, perSequence: r.perSequence };
}

/**
 * How many held-out sequences a job is measured on at `seqLen`: evalBatches x batchSize at the
 * training length; at longer lengths as many tokens in all (so measuring at 16x the length costs
 * what the training length does), but at least MIN_LONG_SEQUENCES.
 */
export function evalSequencesAt(job: Pick<TaskModelJob, 'evalBatches' | 'batchSize' | 'taskOptions'>, seqLen: number): number {
  const n = job.evalBatches * job.batchSize;
  if (seqLen <= job.taskOptions.seqLen) return n;
  return Math.max(MIN_LONG_SEQUENCES, Math.ceil((n * job.taskOptions.seqLen) / seqLen));
}
const MIN_LONG_SEQUENCES = 8;

/** The held-out batches a job is measured on at `seqLen` (fork 'eval' of its Rng, then `len<seqLen>`, then `eval<i>` per batch). */
export function jobEvalBatches(job: TaskModelJob, seqLen: number): TaskBatch[] {
  const rng = new mi.Rng(job.rngSeed).fork('eval').fork(`len${seqLen}`);
  const task = getTask(job.task);
  const out: TaskBatch[] = [];
  for (let left = evalSequencesAt(job, seqLen), i = 0; left > 0; i++, left -= job.batchSize) {
    out.push(task.generate({ ...job.taskOptions, seqLen }, rng.fork(`eval${i}`), Math.min(left, job.batchSize)));
  }
  return out;
}

/** The task's simple baselines on the job's held-out batches at the training length, the model's own data. */
export function jobBaselines(job: TaskModelJob): BaselineResult[] {
  const batches = jobEvalBatches(job, job.taskOptions.seqLen);
  return getTask(job.task)
    .baselines(job.taskOptions)
    .map((b) => baselineAccuracy(b, batches));
}

/**
 * Trains one model, saves it in Hugging Face format in job.dir and measures its held-out accuracy
 * at the training length and at job.evalLengths. A job already finished there (record.json with
 * the same settings) is not retrained: its record is returned as it is.
 */
export async function trainAndEvaluate(job: TaskModelJob, onStep?: (step: number) => void): Promise<TaskModelRecord> {
  const done = await finishedRecord(job);
  if (done) return done;
  const rng = new mi.Rng(job.rngSeed);
  const t0 = performance.now();
  const { model, curve, gateCurve, stepsTrained, stoppedEarly } = await trainOnTask(
    {
      ...job,
      outDir: job.dir,
      logEvery: 1,
      log: (line) => {
        const m = /^step (\d+)\//.exec(line);
        if (m && onStep) onStep(Number(m[1]));
      },
    },
    rng,
  );
  try {
    const trainSeconds = (performance.now() - t0) / 1000;
    await savePretrained(model, job.dir);
    const task = getTask(job.task);
    for (const [name, json] of Object.entries(task.checkpointFiles?.(job.taskOptions) ?? {}))
      await writeTextAtomic(join(job.dir, name), `${JSON.stringify(json)}\n`);
    const at = (seqLen: number) => evaluateJobAt(model, job, seqLen);
    const main = await at(job.taskOptions.seqLen);
    const lengthAccuracy = [];
    for (const L of job.evalLengths) lengthAccuracy.push(await at(L));
    const lmBaselines = task.perplexityBaselines?.(job.taskOptions);
    let crossEntropy: TaskModelRecord['crossEntropy'];
    if (lmBaselines) {
      const batches = jobEvalBatches(job, job.taskOptions.seqLen);
      crossEntropy = {
        model: await scoredCrossEntropyOf(model, batches),
        baselines: lmBaselines.map((b) => {
          const { mean, perSequence } = b.crossEntropy(batches);
          return { name: b.name, description: b.description, mean, perSequence };
        }),
      };
    }
    const tail = curve.train.slice(-10);
    const record: TaskModelRecord = {
      job,
      chance: task.chance(job.taskOptions),
      accuracy: main.accuracy,
      perSequence: main.perSequence,
      baselines: jobBaselines(job),
      lengthAccuracy,
      gateCurve,
      stepsTrained,
      stoppedEarly,
      finalLoss: tail.reduce((s, p) => s + p.loss, 0) / Math.max(tail.length, 1),
      trainSeconds,
      ...(crossEntropy ? { crossEntropy } : {}),
    };
    await writeTextAtomic(join(job.dir, RECORD_FILE), `${JSON.stringify(record)}\n`);
    // the optimiser state was only needed to resume an interrupted training run
    await rm(join(job.dir, 'checkpoint'), { recursive: true, force: true });
    return record;
  } finally {
    model.dispose();
  }
}

/** What a model that missed the gate would need, read off its accuracy checks. */
export interface GateOutlook {
  /** the curriculum stage of the last check, and the number of stages (the last is the target) */
  stage: number;
  stages: number;
  /** least-squares slope of accuracy per 1000 steps over the checks of the later half of training at that stage */
  slopePer1000: number;
  /** checks the slope rests on */
  checks: number;
  /** steps after the last check at which the trend line reaches the gate (null: no upward trend, or not at the target stage) */
  moreSteps: number | null;
  text: string;
}

/**
 * A rough, stated outlook for a model below the gate: the trend of its accuracy checks over the
 * later half of its training at its last stage, extrapolated linearly to the gate. Learning curves
 * of these tasks are sigmoid (flat, then a jump), so a flat trend does not prove that more steps
 * cannot help; it says that the run gave no sign of it. A longer run also stretches the learning-
 * rate schedule, which this does not model.
 */
export function gateOutlook(curve: readonly GatePoint[], gate: number, stages: number): GateOutlook {
  if (!curve.length) return { stage: 0, stages, slopePer1000: 0, checks: 0, moreSteps: null, text: 'no accuracy checks were made' };
  const last = curve[curve.length - 1];
  const atStage = curve.filter((p) => p.stage === last.stage);
  const from = atStage[0].step + (last.step - atStage[0].step) / 2;
  const pts = atStage.filter((p) => p.step >= from);
  const mx = pts.reduce((s, p) => s + p.step, 0) / pts.length,
    my = pts.reduce((s, p) => s + p.accuracy, 0) / pts.length;
  const sxx = pts.reduce((s, p) => s + (p.step - mx) ** 2, 0);
  const slope = sxx > 0 ? pts.reduce((s, p) => s + (p.step - mx) * (p.accuracy - my), 0) / sxx : 0;
  const fittedNow = my + slope * (last.step - mx);
  const target = last.stage === stages - 1;
  const moreSteps = target && slope > 0 ? Math.max(0, Math.ceil((gate - fittedNow) / slope)) : null;
  const trend = `accuracy ${slope >= 0 ? '+' : ''}${(slope * 1000).toFixed(3)} per 1000 steps over its last ${pts.length} checks at stage ${last.stage + 1} of ${stages}`;
  const text = !target
    ? `${trend}; it never passed curriculum stage ${last.stage + 1} of ${stages}, so it needs an easier stage, a larger model or more steps at that stage before the target`
    : moreSteps !== null
      ? `${trend}; on that trend it would reach the gate ${gate} about ${moreSteps} steps later (a linear extrapolation of a sigmoid-shaped curve: rough)`
      : `${trend}: no upward trend, so the run gives no sign that more steps alone would reach the gate ${gate}; a larger model, a curriculum or another learning rate is the next thing to try`;
  return { stage: last.stage, stages, slopePer1000: slope * 1000, checks: pts.length, moreSteps, text };
}
