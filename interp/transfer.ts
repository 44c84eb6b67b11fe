// Transfer between tasks, posed so that the comparison has a basis.
//
// Inside one model trained on a mixture of tasks (interp/tasks/mixture.ts) every task uses the
// same coordinates, so "task A's circuit / features / probe, used on task B" is well posed:
//  - circuits: A's channels at the last residual output (attribution patching on A's sequences)
//    mean-ablated at B's answer cells, against channel sets matched in activation variance there
//    (interp/controls.ts) and next to B's own circuit;
//  - features: one SAE on the pooled residual of all tasks; the latents whose ablation hurts A's
//    answers most, ablated on B, against latents of matched firing density on B;
//  - probes: a probe of the answer bit fitted on A's rows, scored on B's rows.
// The last residual is followed only by the final norm and the LM head, which act position by
// position, so every edit there is measured by running that tail on the answer cells alone
// (scoredResidual / tailOutcome): the same numbers as a hooked forward, at a fraction of the cost,
// which is what lets each claim rank among thousands of controls.
//
// Between separately trained models there is no shared basis until one is fitted
// (interp/align.ts); the probe and SAE helpers here take activations of either kind.
import * as mi from '../engine/index.ts';
import type { Rng } from '../engine/random.ts';
import type { MambaLM } from '../mamba/model.ts';
import { attributionPatching, chunkSequences, sliceExamples } from './attribution.ts';
import { cacheActivations, corruptAnswers, idsOf, logitsFromLastResidual, positionMask, rowArgmaxLse } from './patching.ts';
import { balancedRows, groupedSplit } from './probe-eval.ts';
import { logisticProbeCV, predictLogistic, type LogisticProbe, type Matrix } from './probes.ts';
import type { Sae } from './sae/sae.ts';
import { quantile } from './stats.ts';
import { IGNORE_INDEX, type Task, type TaskBatch } from './tasks/index.ts';

// ---------------------------------------------------------------------------------------------
// The answer cells of the last residual, and the model's tail

/** The last layer's residual output at a batch's scored cells, with what each cell should answer. */
export interface AnswerCells {
  /** [cells, d] */
  resid: Float32Array;
  d: number;
  /** the target at each cell */
  answer: Int32Array;
  /** the sequence of each cell (0..examples-1) */
  example: Int32Array;
  examples: number;
}

export const lastResidualHook = (model: MambaLM) => `blocks.${model.config.num_hidden_layers - 1}.hook_resid_post`;

/**
 * Tokens a forward of lastResidualData takes at most (whole sequences, at least one): the head's
 * logits [tokens, V] come with every forward, and step 11's mixture at --preset paper's sizes (64
 * sequences of 4096 tokens, vocabulary 8195) would make 8.6 GB of them at once, past the CPU heap
 * and a WebGPU binding; 16384 tokens keep them at 0.54 GB.
 */
export const LAST_RESIDUAL_TOKENS = 16384;

/** The last layer's residual output of every cell of a batch, [batch*T, d], in the model's dtype, in chunks of sequences. */
async function lastResidualData(model: MambaLM, batch: TaskBatch, maxTokens: number): Promise<Float32Array | Float64Array> {
  const hook = lastResidualHook(model);
  const [B, T] = batch.shape;
  const d = model.config.hidden_size;
  const out = model.dtype === 'float64' ? new Float64Array(B * T * d) : new Float32Array(B * T * d);
  const per = chunkSequences(T, maxTokens);
  for (let from = 0; from < B; from += per) {
    const ids = idsOf(model, sliceExamples(batch, from, Math.min(B, from + per)));
    const act = cacheActivations(model, ids, [hook]).get(hook)!;
    try {
      out.set(await act.data(), from * T * d);
    } finally {
      act.dispose();
      ids.dispose();
    }
  }
  return out;
}

/** The last layer's residual output of every cell of a batch, [batch*T, d] (forwards of at most maxTokens tokens). */
export async function lastResidual(model: MambaLM, batch: TaskBatch, maxTokens = LAST_RESIDUAL_TOKENS): Promise<Float32Array> {
  const data = await lastResidualData(model, batch, maxTokens);
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

/** The scored cells of a batch, from its last residual (computed, or given as `all` [batch*T, d]). */
export async function answerCells(model: MambaLM, batch: TaskBatch, all?: Float32Array): Promise<AnswerCells> {
  const [B, T] = batch.shape;
  const d = model.config.hidden_size;
  const acts = all ?? (await lastResidual(model, batch));
  if (acts.length !== B * T * d) throw new Error(`answerCells: ${acts.length} activations for a [${B}, ${T}] batch of width ${d}`);
  const cells: number[] = [];
  batch.targets.forEach((t, i) => {
    if (t !== IGNORE_INDEX) cells.push(i);
  });
  if (!cells.length) throw new Error('answerCells: the batch has no scored positions');
  const resid = new Float32Array(cells.length * d);
  cells.forEach((c, k) => resid.set(acts.subarray(c * d, (c + 1) * d), k * d));
  return {
    resid,
    d,
    answer: Int32Array.from(cells, (c) => batch.targets[c]),
    example: Int32Array.from(cells, (c) => Math.floor(c / T)),
    examples: B,
  };
}

/** Per sequence: the mean answer loss and accuracy over its cells, from residuals [cells, d] (default: the cells' own). */
export async function tailOutcome(
  model: MambaLM,
  cells: AnswerCells,
  resid: Float32Array = cells.resid,
): Promise<{ loss: Float64Array; accuracy: Float64Array }> {
  return (await tailOutcomes(model, cells, resid, 1))[0];
}

/** tailOutcome for `blocks` residual sets stacked in one array [blocks * cells, d], in one pass of the tail. */
export async function tailOutcomes(
  model: MambaLM,
  cells: AnswerCells,
  stacked: Float32Array,
  blocks: number,
): Promise<{ loss: Float64Array; accuracy: Float64Array }[]> {
  const S = cells.answer.length,
    V = model.config.vocab_size;
  if (stacked.length !== blocks * S * cells.d)
    throw new Error(`tailOutcome: ${stacked.length} values for ${blocks} x ${S} cells of width ${cells.d}`);
  const logits = await mi.tidyAsync(() =>
    mi.noGrad(() =>
      logitsFromLastResidual(model, mi.tensor(stacked, [blocks, S, cells.d], { backend: model.backend, dtype: model.dtype })).data(),
    ),
  );
  const count = new Float64Array(cells.examples);
  for (let i = 0; i < S; i++) count[cells.example[i]]++;
  for (let e = 0; e < cells.examples; e++) if (!count[e]) throw new Error(`tailOutcome: sequence ${e} has no scored cell`);
  return Array.from({ length: blocks }, (_, k) => {
    const loss = new Float64Array(cells.examples),
      accuracy = new Float64Array(cells.examples);
    for (let i = 0; i < S; i++) {
      const o = (k * S + i) * V;
      const { arg, lse } = rowArgmaxLse(logits, o, V);
      const e = cells.example[i];
      loss[e] += (lse - logits[o + cells.answer[i]]) / count[e];
      accuracy[e] += (arg === cells.answer[i] ? 1 : 0) / count[e];
    }
    return { loss, accuracy };
  });
}

/** The cells' residuals with `channels` set to their mean over the cells (mean ablation). */
export function meanAblated(cells: AnswerCells, channels: readonly number[]): Float32Array {
  const { d } = cells,
    S = cells.answer.length;
  const out = cells.resid.slice();
  for (const j of channels) {
    if (!(Number.isInteger(j) && j >= 0 && j < d)) throw new Error(`meanAblated: channel ${j} is not in [0, ${d})`);
    let m = 0;
    for (let i = 0; i < S; i++) m += cells.resid[i * d + j] / S;
    for (let i = 0; i < S; i++) out[i * d + j] = m;
  }
  return out;
}

/** Per-channel variance of the cells' residuals (what matched channel controls are stratified by). */
export function channelVariance(cells: AnswerCells): Float64Array {
  const { d } = cells,
    S = cells.answer.length;
  const mean = new Float64Array(d),
    v = new Float64Array(d);
  for (let i = 0; i < S; i++) for (let j = 0; j < d; j++) mean[j] += cells.resid[i * d + j] / S;
  for (let i = 0; i < S; i++) for (let j = 0; j < d; j++) v[j] += (cells.resid[i * d + j] - mean[j]) ** 2 / S;
  return v;
}

/** Per sequence, how much each edit of the residuals raises the answer loss over the unedited cells. */
export async function lossIncreases(
  model: MambaLM,
  cells: AnswerCells,
  edits: readonly (() => Float32Array)[],
  chunk = TAIL_CHUNK,
): Promise<Float64Array[]> {
  const base = (await tailOutcome(model, cells)).loss;
  const size = cells.resid.length;
  const out: Float64Array[] = [];
  // several edits a pass of the tail: its fixed cost per call is most of the time on these small shapes
  for (let from = 0; from < edits.length; from += chunk) {
    const k = Math.min(chunk, edits.length - from);
    const stacked = new Float32Array(k * size);
    for (let j = 0; j < k; j++) stacked.set(edits[from + j](), j * size);
    for (const o of await tailOutcomes(model, cells, stacked, k)) out.push(o.loss.map((v, i) => v - base[i]));
  }
  return out;
}

/** Edits per pass of the tail in lossIncreases. */
export const TAIL_CHUNK = 64;

// ---------------------------------------------------------------------------------------------
// Circuits: attribution patching at the last residual

/**
 * Attribution patching ((clean - corrupted) x gradient of the clean-vs-corrupted logit difference,
 * interp/attribution.ts) per channel of the last residual at the scored cells: the score step 5
 * selects its residual circuits by. `task` and `taskOptions` give the vocabulary ranges the
 * corruption swaps answers within (a mixture batch is corrupted with its component's task).
 */
export async function lastResidualAttribution(
  model: MambaLM,
  // biome-ignore lint/suspicious/noExplicitAny: any task, with its own options type
  task: Task<any>,
  taskOptions: Record<string, number>,
  batch: TaskBatch,
  source: { label: string; offset?: number },
  rng: Rng,
  maxTokens = LAST_RESIDUAL_TOKENS,
): Promise<Float64Array> {
  const hook = lastResidualHook(model);
  const corrupt = corruptAnswers(task, taskOptions, batch, source, rng);
  // the clean run's residual, made in chunks (lastResidualData), whole for attributionPatching
  const clean = mi.tensor(await lastResidualData(model, batch, maxTokens), [...batch.shape, model.config.hidden_size], {
    dtype: model.dtype,
    backend: model.backend,
  });
  try {
    const [values] = await attributionPatching(model, corrupt, batch.targets, [{ hook, mask: positionMask('scored', batch) }], [clean]);
    return values;
  } finally {
    clean.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Features: SAE latents at the answer cells

/** An SAE's latents at the cells and its decoder rows in raw units (a latent's contribution is z_l x row_l). */
export interface CellLatents {
  /** [cells, latents] */
  z: Float32Array;
  latents: number;
  /** [latents, d], W_dec / inputScale */
  decoder: Float32Array;
}

export async function cellLatents(sae: Sae, cells: AnswerCells): Promise<CellLatents> {
  if (sae.d !== cells.d) throw new Error(`cellLatents: SAE of width ${sae.d} on residuals of width ${cells.d}`);
  const z = await mi.tidyAsync(() =>
    sae.encode(mi.tensor(cells.resid, [cells.answer.length, cells.d], { backend: sae.params.W_dec.backend })).data(),
  );
  const W = await sae.params.W_dec.data();
  return { z: Float32Array.from(z), latents: sae.latents, decoder: Float32Array.from(W, (w) => w / sae.config.inputScale) };
}

/** The cells' residuals with the latents' contributions removed (each latent set to 0; the SAE's error term stays). */
export function latentsAblated(cells: AnswerCells, lat: CellLatents, latents: readonly number[]): Float32Array {
  const { d } = cells,
    S = cells.answer.length,
    L = lat.latents;
  const out = cells.resid.slice();
  for (const l of latents) {
    if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`latentsAblated: latent ${l} is not in [0, ${L})`);
    for (let i = 0; i < S; i++) {
      const z = lat.z[i * L + l];
      if (z) for (let j = 0; j < d; j++) out[i * d + j] -= z * lat.decoder[l * d + j];
    }
  }
  return out;
}

/** Per latent: the fraction of cells it fires on. */
export function firingDensity(lat: CellLatents): Float64Array {
  const S = lat.z.length / lat.latents,
    f = new Float64Array(lat.latents);
  for (let i = 0; i < S; i++) for (let l = 0; l < lat.latents; l++) if (lat.z[i * lat.latents + l] > 0) f[l] += 1 / S;
  return f;
}

/** Per latent: the mean answer-loss increase when it alone is ablated (latents that never fire here: 0, no pass). */
export async function latentImportance(model: MambaLM, cells: AnswerCells, lat: CellLatents): Promise<Float64Array> {
  const density = firingDensity(lat);
  const live = [...density.keys()].filter((l) => density[l] > 0);
  const effects = await lossIncreases(
    model,
    cells,
    live.map((l) => () => latentsAblated(cells, lat, [l])),
  );
  const out = new Float64Array(lat.latents);
  live.forEach((l, k) => {
    out[l] = effects[k].reduce((s, v) => s + v, 0) / effects[k].length;
  });
  return out;
}

/** The k largest values' indices (ties by index), largest first. */
export function topK(values: ArrayLike<number>, k: number): number[] {
  return Array.from(values, (v, i) => [v, i])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}

// ---------------------------------------------------------------------------------------------
// SAE reconstruction on another model's (aligned or raw) activations

export interface RowErrors {
  /** squared reconstruction error per row */
  err: Float64Array;
  /** squared distance of the row from the data's column means (FVU's denominator) */
  total: Float64Array;
}

/** Per-row reconstruction errors of an SAE on activations [rows, d]. */
export async function saeRowErrors(sae: Sae, data: Float32Array, batchSize = 1024): Promise<RowErrors> {
  const d = sae.d,
    n = data.length / d;
  if (!Number.isInteger(n) || n === 0) throw new Error(`saeRowErrors: ${data.length} values are not rows of width ${d}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < data.length; i++) mean[i % d] += data[i] / n;
  const out: RowErrors = { err: new Float64Array(n), total: new Float64Array(n) };
  for (let r0 = 0; r0 < n; r0 += batchSize) {
    const rows = Math.min(batchSize, n - r0);
    const chunk = data.subarray(r0 * d, (r0 + rows) * d);
    const recon = await mi.tidyAsync(() => sae.forward(mi.tensor(chunk, [rows, d], { backend: sae.params.W_dec.backend })).data());
    for (let r = 0; r < rows; r++) {
      let e = 0,
        t = 0;
      for (let j = 0; j < d; j++) {
        const x = chunk[r * d + j];
        e += (x - recon[r * d + j]) ** 2;
        t += (x - mean[j]) ** 2;
      }
      out.err[r0 + r] = e;
      out.total[r0 + r] = t;
    }
  }
  return out;
}

const sumAt = (x: ArrayLike<number>, idx: ArrayLike<number> | null) => {
  let s = 0;
  if (idx) for (let i = 0; i < idx.length; i++) s += x[idx[i]];
  else for (let i = 0; i < x.length; i++) s += x[i];
  return s;
};

/** Fraction of variance unexplained over the rows `idx` (all rows when null). */
export function fvuOf(e: RowErrors, idx: ArrayLike<number> | null = null): number {
  const t = sumAt(e.total, idx);
  return t > 0 ? sumAt(e.err, idx) / t : NaN;
}

export interface Estimate {
  estimate: number;
  interval: [number, number];
}

/**
 * A statistic of row indices, with a percentile bootstrap over rows (or over groups of rows, e.g.
 * sequences, when `groupOf` is given: whole groups are resampled).
 */
export function bootstrapRows(
  n: number,
  stat: (idx: ArrayLike<number> | null) => number,
  rng: Rng,
  nBoot: number,
  groupOf?: ArrayLike<number>,
): Estimate {
  const estimate = stat(null);
  if (!Number.isFinite(estimate)) return { estimate, interval: [NaN, NaN] };
  const groups: number[][] = [];
  if (groupOf) {
    for (let r = 0; r < n; r++) {
      groups[groupOf[r]] ??= [];
      groups[groupOf[r]].push(r);
    }
  }
  const g = groups.filter(Boolean);
  const reps = new Float64Array(nBoot);
  for (let b = 0; b < nBoot; b++) {
    let idx: number[];
    if (groupOf) {
      idx = [];
      for (let k = 0; k < g.length; k++) idx.push(...g[rng.int(0, g.length)]);
    } else idx = Array.from({ length: n }, () => rng.int(0, n));
    reps[b] = stat(idx);
  }
  const s = reps.filter(Number.isFinite).sort();
  return { estimate, interval: s.length ? [quantile(s, 0.025, true), quantile(s, 0.975, true)] : [NaN, NaN] };
}

/** Per group (sequence): the sum of x over its rows divided by the sum of `den` (a per-sequence FVU, accuracy, ...). */
export function perGroup(x: ArrayLike<number>, den: ArrayLike<number>, groupOf: ArrayLike<number>): Float64Array {
  const num = new Map<number, number>(),
    d = new Map<number, number>();
  for (let i = 0; i < x.length; i++) {
    num.set(groupOf[i], (num.get(groupOf[i]) ?? 0) + x[i]);
    d.set(groupOf[i], (d.get(groupOf[i]) ?? 0) + den[i]);
  }
  return Float64Array.from(
    [...num.keys()].sort((a, b) => a - b),
    (g) => num.get(g)! / d.get(g)!,
  );
}

// ---------------------------------------------------------------------------------------------
// Probes of the answer bit

/** The label holding each task's answer token, and the vocabulary range the answers come from. */
const ANSWER: Record<string, { label: string; vocab: string }> = {
  induction: { label: 'copyToken', vocab: 'content' },
  'selective-copying': { label: 'copyToken', vocab: 'data' },
  mqar: { label: 'value', vocab: 'values' },
};

export interface SharedVariable {
  name: string;
  /** flat cell indices b*T + t of the rows */
  rows: Int32Array;
  values: Float64Array;
  cut: number;
}

/**
 * The answer bit at the scored positions of a task's labels ([batch*T]): 1 when the answer token
 * is in the upper half [cut, last] of the task's answer range, else 0. `task` gives the range.
 */
export function answerUpperHalf(
  // biome-ignore lint/suspicious/noExplicitAny: any task, with its own options type
  task: Task<any>,
  taskOptions: Record<string, number>,
  labels: Record<string, ArrayLike<number>>,
): SharedVariable {
  const spec = ANSWER[task.name];
  if (!spec)
    throw new Error(`answerUpperHalf: no answer variable defined for task '${task.name}' (have ${Object.keys(ANSWER).join(', ')})`);
  const entry = task.vocabulary(taskOptions).find((v: { name: string }) => v.name === spec.vocab);
  if (!entry) throw new Error(`answerUpperHalf: task '${task.name}' has no vocabulary entry '${spec.vocab}'`);
  const lab = labels[spec.label];
  if (!lab) throw new Error(`answerUpperHalf: labels of '${task.name}' have no '${spec.label}'`);
  const cut = Math.ceil((entry.first + entry.last + 1) / 2);
  const rows: number[] = [];
  for (let r = 0; r < lab.length; r++) if (lab[r] >= 0) rows.push(r);
  return {
    name: `${spec.label}>=${cut}`,
    rows: Int32Array.from(rows),
    values: Float64Array.from(rows, (r) => (lab[r] >= cut ? 1 : 0)),
    cut,
  };
}

export interface ProbeSource {
  /** activations [batch*T, d] of every cell */
  acts: Float32Array;
  d: number;
  /** the sequence length: row r of the variable belongs to sequence floor(r / seqLen) */
  seqLen: number;
  variable: SharedVariable;
}

export interface ProbeOptions {
  maxRows: number;
  folds: number;
  nLambda: number;
  nBoot: number;
  testFraction?: number;
}

/** A probe of a source's variable and its shuffled-label control, fitted on some sequences; the rest held out. */
export interface FittedProbe {
  source: ProbeSource;
  probe: LogisticProbe;
  control: LogisticProbe;
  /** indices into source.variable of the held-out rows (whole sequences no training row shares) */
  testRows: number[];
  nTrain: number;
  trainSequences: number;
  testSequences: number;
}

export interface ProbeScore {
  /** the probe, and the shuffled-label probe, on the scored rows (bootstrap over sequences) */
  accuracy: Estimate;
  control: Estimate;
  /** per sequence of the scored rows: the probe's and the control's accuracy (paired, the unit of a test) */
  perSequence: Float64Array;
  controlPerSequence: Float64Array;
  chance: number;
  rows: number;
  sequences: number;
}

function rowsOf(src: ProbeSource, idx: readonly number[]): Matrix {
  const { d } = src,
    data = new Float64Array(idx.length * d);
  idx.forEach((i, k) => {
    const r = src.variable.rows[i];
    for (let j = 0; j < d; j++) data[k * d + j] = src.acts[r * d + j];
  });
  return { data, rows: idx.length, cols: d };
}

const sequenceOf = (src: ProbeSource, idx: readonly number[]) => Int32Array.from(idx, (i) => Math.floor(src.variable.rows[i] / src.seqLen));

/**
 * An L1 logistic probe (lambda by k-fold CV) fitted on class-balanced rows of some sequences, a
 * shuffled-label control fitted on the same rows, and the held-out rows: whole sequences
 * (probe-eval.ts groupedSplit), so no held-out row shares a context with a training row.
 */
export function fitTransferProbe(a: ProbeSource, rng: Rng, opts: ProbeOptions): FittedProbe {
  const picked = balancedRows(a.variable, opts.maxRows, rng.fork('rows'));
  const split = groupedSplit(sequenceOf(a, picked), opts.testFraction ?? 0.3, rng.fork('split'));
  const train = split.train.map((k) => picked[k]),
    testRows = split.test.map((k) => picked[k]);
  if (testRows.length < 4 || train.length < 2 * opts.folds)
    throw new Error(
      `fitTransferProbe ${a.variable.name}: ${picked.length} balanced rows are too few for ${opts.folds}-fold CV and a held-out split`,
    );
  const X = rowsOf(a, train);
  const y = Int32Array.from(train, (i) => a.variable.values[i]);
  const shuffled = Int32Array.from(rng.fork('shuffle').permutation(y.length), (k) => y[k]);
  // a probe that reads one bit needs a good fit, not the last digit
  const cv = { nFolds: opts.folds, nLambda: opts.nLambda, tol: 1e-4, maxSweeps: 300, maxOuter: 15 };
  return {
    source: a,
    probe: logisticProbeCV(X, y, rng.fork('cv'), cv),
    control: logisticProbeCV(X, shuffled, rng.fork('cv-control'), cv),
    testRows,
    nTrain: train.length,
    trainSequences: split.trainSequences.length,
    testSequences: split.testSequences.length,
  };
}

/**
 * A fitted probe and its control on rows `idx` of a source (indices into its variable, e.g. another
 * fit's testRows), each source's own variable as the truth; bootstrap over sequences.
 */
export function scoreTransferProbe(fit: FittedProbe, b: ProbeSource, idx: readonly number[], rng: Rng, nBoot: number): ProbeScore {
  if (fit.source.d !== b.d) throw new Error(`scoreTransferProbe: activation widths differ (${fit.source.d} vs ${b.d})`);
  if (idx.length < 4) throw new Error(`scoreTransferProbe ${b.variable.name}: ${idx.length} rows are too few`);
  const X = rowsOf(b, idx);
  const truth = idx.map((i) => b.variable.values[i]);
  const hit = (p: LogisticProbe) => {
    const pred = predictLogistic(p, X);
    return Float64Array.from(truth, (t, k) => (pred[k] === t ? 1 : 0));
  };
  const cB = hit(fit.probe),
    cC = hit(fit.control);
  const seq = sequenceOf(b, idx);
  const ones = new Float64Array(idx.length).fill(1);
  const acc = (x: Float64Array) => (r: ArrayLike<number> | null) => sumAt(x, r) / (r ? r.length : x.length);
  return {
    accuracy: bootstrapRows(idx.length, acc(cB), rng.fork('boot'), nBoot, seq),
    control: bootstrapRows(idx.length, acc(cC), rng.fork('boot-control'), nBoot, seq),
    perSequence: perGroup(cB, ones, seq),
    controlPerSequence: perGroup(cC, ones, seq),
    chance: 0.5,
    rows: idx.length,
    sequences: new Set(seq).size,
  };
}
