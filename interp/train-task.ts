// Training a small Mamba from scratch on a toy task, and measuring it: the loss is cross-entropy at
// the task's scored positions only (targets IGNORE_INDEX elsewhere), so the model is judged on the
// behaviour the task defines rather than on predicting random filler tokens.
//
// Everything random comes from the Rng passed in (forked by purpose: init, train batches, eval),
// so the same seed gives the same model whatever else runs alongside it.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { makeConfig } from '../mamba/config.ts';
import { initMamba, type MambaLM } from '../mamba/model.ts';
import { savePretrained } from '../mamba/pretrained.ts';
import { writeTextAtomic } from '../mamba/safetensors.ts';
import { train, type LossCurve } from '../mamba/train.ts';
import { getTask, IGNORE_INDEX, type AnyTaskOptions, type TaskBatch } from './tasks/index.ts';

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
  taskOptions: AnyTaskOptions;
  model: ModelShape;
  steps: number;
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

/**
 * Trains a fresh model on the task; returns it with its loss curve. Batch k is drawn from
 * rng.fork(`batch${k}`), so a resumed run (mamba/train.ts restores from outDir/checkpoint) sees
 * exactly the batches an uninterrupted one would.
 */
export async function trainOnTask(o: TaskTrainOptions, rng: mi.Rng): Promise<{ model: MambaLM; curve: LossCurve }> {
  const task = getTask(o.task);
  const model = initMamba(taskModelConfig(o.taskOptions.vocabSize, o.model), rng.fork('init'));
  const dataRng = rng.fork('train');
  const batchAt = new Map<number, TaskBatch>();
  const batchOf = (step: number) => {
    let b = batchAt.get(step);
    if (!b) {
      batchAt.clear();
      b = task.generate(o.taskOptions, dataRng.fork(`batch${step}`), o.batchSize);
      batchAt.set(step, b);
    }
    return b;
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
    });
    return { model, curve };
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

/** Held-out accuracy at the scored positions: argmax of the logits against the targets. */
export async function scoredAccuracyOf(model: MambaLM, batches: TaskBatch[]): Promise<AccuracyResult> {
  const perSequence: number[] = [];
  let hits = 0,
    scored = 0;
  for (const batch of batches) {
    const pred = await mi.tidyAsync(() => mi.noGrad(() => mi.argmax(model.forward(rowsOf(batch)), -1)).data());
    const [B, T] = batch.shape;
    for (let b = 0; b < B; b++) {
      let h = 0,
        s = 0;
      for (let t = b * T; t < (b + 1) * T; t++) {
        const target = batch.targets[t];
        if (target === IGNORE_INDEX) continue;
        s++;
        if (pred[t] === target) h++;
      }
      if (s) perSequence.push(h / s);
      hits += h;
      scored += s;
    }
  }
  if (!scored) throw new Error('scoredAccuracyOf: the batches have no scored positions');
  return { accuracy: hits / scored, perSequence, scored };
}

/** `count` held-out batches of the task, from their own stream. */
export function heldOutBatches(taskName: string, opts: AnyTaskOptions, rng: mi.Rng, count: number, batchSize: number): TaskBatch[] {
  const task = getTask(taskName);
  return Array.from({ length: count }, (_, i) => task.generate(opts, rng.fork(`eval${i}`), batchSize));
}

// ---------------------------------------------------------------------------------------------
// One model as a self-contained, serialisable job (so it can run in a worker thread)

export interface TaskModelJob extends TaskTraining {
  seed: number;
  /** the Rng seed string of this model's streams (init, train batches, eval data) */
  rngSeed: string;
  /** held-out batches per length */
  evalBatches: number;
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
  lengthAccuracy: { seqLen: number; accuracy: number; perSequence: number[] }[];
  finalLoss: number;
  trainSeconds: number;
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
  const rng = new mi.Rng(job.rngSeed).fork('eval').fork(`len${seqLen}`);
  const r = await scoredAccuracyOf(model, heldOutBatches(job.task, { ...job.taskOptions, seqLen }, rng, job.evalBatches, job.batchSize));
  return { seqLen, accuracy: r.accuracy, perSequence: r.perSequence };
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
  const { model, curve } = await trainOnTask(
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
    const at = (seqLen: number) => evaluateJobAt(model, job, seqLen);
    const main = await at(job.taskOptions.seqLen);
    const lengthAccuracy = [];
    for (const L of job.evalLengths) lengthAccuracy.push(await at(L));
    const tail = curve.train.slice(-10);
    const record: TaskModelRecord = {
      job,
      chance: task.chance(job.taskOptions),
      accuracy: main.accuracy,
      perSequence: main.perSequence,
      lengthAccuracy,
      finalLoss: tail.reduce((s, p) => s + p.loss, 0) / Math.max(tail.length, 1),
      trainSeconds,
    };
    await writeTextAtomic(join(job.dir, RECORD_FILE), `${JSON.stringify(record)}\n`);
    // the optimiser state was only needed to resume an interrupted training run
    await rm(join(job.dir, 'checkpoint'), { recursive: true, force: true });
    return record;
  } finally {
    model.dispose();
  }
}
