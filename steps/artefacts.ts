// The artefacts steps hand to each other: file layout and record types inside the run directory,
// with the loaders later steps use. Paths in records are relative to the producing step's folder.
//
// step-01-train/
//   models.json                  TrainedModel[]
//   models/<task>-s<seed>/       Hugging Face checkpoint (config.json + model.safetensors), loss.json
// step-02-collect/
//   collections.json             Collection[]
//   acts/<task>-s<seed>/tokens.safetensors   inputs, targets [batch, T] int32 and one int32 [batch, T]
//                                            tensor per task label ("label.<name>")
//   acts/<task>-s<seed>/<hook>.<k>.safetensors   shard k of that hook's activations: tensor "acts"
//                                            [rows, dim] float32, rows = (batch, position) pairs in
//                                            row-major order (hook_h: dim = E*N, and only the rows
//                                            of the first config.collect.stateBatches batches)
//   stats.json                   per collection and hook: per-channel mean, variance, norm, sparsity
// step-03-sae/   saes.json: SaeRecord[];  saes/<task>-s<seed>/<hook>-<kind>.safetensors (W_enc, b_enc, W_dec, b_dec);
//                 sweep.json: the TopK sweep over sae.sweepHooks (first seed of each task; not claims)
// step-04-probes/ probes.json: ProbeRecord[]
// step-05-circuits/ circuits.json: Circuit[]
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as mi from '../engine/index.ts';
import { openSafetensors } from '../mamba/safetensors.ts';
import { loadPretrained } from '../mamba/pretrained.ts';
import type { MambaLM } from '../mamba/model.ts';
import type { Sae } from '../interp/sae/index.ts';
import { loadSae } from '../interp/sae/io.ts';
import type { CopyingRecord } from './copying.ts';
import { readJson } from './files.ts';
import { stepDirName, stepInfo } from './table.ts';

export const TRAIN_DIR = stepDirName(stepInfo('train'));
export const COLLECT_DIR = stepDirName(stepInfo('collect'));
export const SAE_DIR = stepDirName(stepInfo('sae'));
export const PROBES_DIR = stepDirName(stepInfo('probes'));
export const CIRCUITS_DIR = stepDirName(stepInfo('circuits'));

export interface TrainedModel {
  task: string;
  seed: number;
  /** checkpoint folder, relative to step-01-train/ */
  dir: string;
  /** the options the task generator was called with (vocabSize, seqLen, ...) at training length */
  taskOptions: Record<string, number>;
  chance: number;
  /** held-out accuracy at the training length, over the scored positions */
  accuracy: number;
  /** held-out accuracy at other lengths (length generalisation) */
  lengthAccuracy: { seqLen: number; accuracy: number }[];
  /** the task's simple baselines on the same held-out sequences, strongest first */
  baselines: { name: string; accuracy: number }[];
  /** the learning gate (config.train.gate) and whether accuracy reached it: steps 2-11 study passed models only */
  gate: number;
  passed: boolean;
  /** optimiser steps taken (fewer than train.steps when it reached train.stopAccuracy) */
  stepsTrained: number;
  finalLoss: number;
  trainSeconds: number;
  /** language models (a text task): held-out perplexity at the training length, and the n-gram
   *  baselines' on the same windows; the gate is perplexity below all of them (steps/models.ts) */
  perplexity?: number;
  perplexityBaselines?: { name: string; perplexity: number }[];
  /** language models: copying on repeated random tokens and its gate (steps/copying.ts); a model that
   *  passes both gates is also studied as repeated-tokens-s<seed> */
  copying?: CopyingRecord;
}

export interface Collection {
  task: string;
  seed: number;
  /** folder relative to step-02-collect/ */
  dir: string;
  batch: number;
  seqLen: number;
  hooks: { name: string; dim: number; rows: number; shards: string[] }[];
  labels: string[];
}

export interface SaeRecord {
  task: string;
  seed: number;
  hook: string;
  kind: 'relu' | 'topk';
  /** relative to step-03-sae/ */ file: string;
  latents: number;
  l0: number;
  fvu: number;
  deadFraction: number;
  lossClean: number;
  lossSpliced: number;
  lossZeroAblated: number;
  lossRecovered: number;
  /** per task label: the latents most correlated with it */
  topLatents: Record<string, { latent: number; r: number }[]>;
  /** topk: latents kept per token */ k?: number;
  /** 95% bootstrap interval of lossRecovered over held-out sequences */ lossRecoveredInterval?: [number, number];
  /** loss with the hook mean-ablated, and the loss recovered by that (a baseline the SAE should beat) */
  lossMeanAblated?: number;
  meanAblationRecovered?: number;
  /** scored accuracy, clean and with the SAE spliced in */ accuracyClean?: number;
  accuracySpliced?: number;
}

export interface ProbeRecord {
  task: string;
  seed: number;
  hook: string;
  features: 'activations' | 'sae';
  label: string;
  kind: 'lasso' | 'elasticnet' | 'logistic';
  metric: 'r2' | 'accuracy';
  heldOut: number;
  chance: number;
  /** nonzero dimensions (columns of the features) and their coefficients, aligned */
  selected: number[];
  coefficients: number[];
  /** the variable probed (label, or e.g. "copyToken>=9" for the upper-half bit of a token label) */ variable?: string;
  /** 95% interval over test rows */ interval?: [number, number];
  /** the same probe on a control task (step 4: Hewitt & Liang, a random label per token-position type) */ control?: number;
  controlInterval?: [number, number];
  /** one-sided paired permutation p on the test sequences, probe vs its comparison (step 4: ProbeRow.against) */ p?: number;
  nTrain?: number;
  nTest?: number;
  /** features: 'sae': which SAE's latents */ saeKind?: 'relu' | 'topk';
}

/** A set of activation coordinates: one hook, some positions, some channels or a subspace. */
export interface Circuit {
  task: string;
  seed: number;
  id: string;
  /** hook name, e.g. blocks.1.hook_resid_post, blocks.0.mixer.hook_h */
  hook: string;
  /** 'scored' (the task's scored positions), 'all', explicit positions, or per example the
   *  position a task label gives at the scored positions plus offset (interp/sites.ts PositionSpec),
   *  e.g. { label: 'sourcePos' }: where induction's copied token sits */
  positions: 'scored' | 'all' | number[] | { label: string; offset?: number };
  /** channel indices (into the hook's last axis; for hook_h the flattened E*N state index) */
  channels: number[];
  /** or orthonormal directions [k][dim] spanning a subspace (then channels is empty) */
  directions?: number[][];
  /** where it came from: sae, probe, attribution, combined */
  source: string;
  /** random controls of the same size (channel sets or subspaces) */
  controls: { channels: number[]; directions?: number[][] }[];
  /** the selection score of each channel / direction (e.g. mean grad x activation), same order */
  scores?: number[];
}

export function loadTrainedModels(runDir: string): TrainedModel[] {
  return readJson<TrainedModel[]>(join(runDir, TRAIN_DIR, 'models.json'));
}

export async function loadTrainedModel(runDir: string, m: TrainedModel, opts: { backend?: mi.Backend } = {}): Promise<MambaLM> {
  return loadPretrained(join(runDir, TRAIN_DIR, m.dir), opts);
}

/** An SAE step 3 trained (safetensors with its config as metadata). */
export async function loadSaeRecord(runDir: string, rec: SaeRecord, opts: { backend?: mi.Backend } = {}): Promise<Sae> {
  return loadSae(join(runDir, SAE_DIR, rec.file), opts);
}

export function loadSaeRecords(runDir: string): SaeRecord[] {
  return readJson<SaeRecord[]>(join(runDir, SAE_DIR, 'saes.json'));
}

export function loadProbeRecords(runDir: string): ProbeRecord[] {
  return readJson<ProbeRecord[]>(join(runDir, PROBES_DIR, 'probes.json'));
}

export function loadCollections(runDir: string): Collection[] {
  return readJson<Collection[]>(join(runDir, COLLECT_DIR, 'collections.json'));
}

/** All rows of one hook of one collection, concatenated over shards: [rows, dim]. */
export async function loadActivations(
  runDir: string,
  c: Collection,
  hook: string,
): Promise<{ data: Float32Array; rows: number; dim: number }> {
  const h = c.hooks.find((x) => x.name === hook);
  if (!h) throw new Error(`collection ${c.task}-s${c.seed} has no hook ${hook} (has ${c.hooks.map((x) => x.name).join(', ')})`);
  const data = new Float32Array(h.rows * h.dim);
  let off = 0;
  for (const shard of h.shards) {
    const f = await openSafetensors(join(runDir, COLLECT_DIR, c.dir, shard));
    try {
      const rec = await f.read('acts');
      data.set(rec.data as Float32Array, off);
      off += rec.data.length;
    } finally {
      await f.close();
    }
  }
  if (off !== data.length)
    throw new Error(`collection ${c.task}-s${c.seed} hook ${hook}: shards hold ${off} values, expected ${data.length}`);
  return { data, rows: h.rows, dim: h.dim };
}

/** The token ids, targets and labels of a collection, each [batch, T] int32. */
/** Per collected sequence of a real-text collection (--text): its file, document and first token's offset. */
export const SOURCES_FILE = 'sources.json';
export interface SequenceSource {
  source: string;
  doc: number;
  start: number;
}

/** Where each sequence of collection `c` came from, or null for a task's generated sequences. */
export function loadSources(runDir: string, c: Collection): SequenceSource[] | null {
  const p = join(runDir, COLLECT_DIR, c.dir, SOURCES_FILE);
  return existsSync(p) ? readJson<SequenceSource[]>(p, `collection ${c.dir}: ${SOURCES_FILE}`) : null;
}

export async function loadTokens(
  runDir: string,
  c: Collection,
): Promise<{ inputs: Int32Array; targets: Int32Array; labels: Record<string, Int32Array> }> {
  const f = await openSafetensors(join(runDir, COLLECT_DIR, c.dir, 'tokens.safetensors'));
  try {
    const inputs = (await f.read('inputs')).data as Int32Array;
    const targets = (await f.read('targets')).data as Int32Array;
    const labels: Record<string, Int32Array> = {};
    for (const name of c.labels) labels[name] = (await f.read(`label.${name}`)).data as Int32Array;
    return { inputs, targets, labels };
  } finally {
    await f.close();
  }
}
