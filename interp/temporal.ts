// Temporal causality in a Mamba model: which input positions an activation at position t depends
// on, and how strongly.
//  - Influence maps: M[t][s] = || d out_t / d x_s ||_F from the engine's Jacobian (reverse mode,
//    batched: the model is batch-polymorphic, so each backward pass yields `chunk` rows). For the
//    residual stream, out = each layer's resid_post (and the final normed hidden state), x = the
//    input embeddings; for a layer's SSM state, out = the states h_t [E,N] of that layer's mixer,
//    x = the mixer's input (the layer's normed residual), i.e. the layer's own temporal mixing.
//  - Hidden attention (Ali et al. 2024, "The Hidden Attention of Mamba Models"): the scan is a
//    causal linear operator per channel, y_t = sum_s alpha[t,s] u_s + D u_t with
//    alpha[t,s] = C_t . (prod_{k in (s,t]} exp(delta_k A)) . delta_s B_s, i.e. the scan's own
//    Jacobian d y_t / d u_s. Computed from the model's hook_delta / hook_B / hook_C by the engine's
//    influence kernel (mi.scanInfluence: every (t, s) in one pass, on the model's backend, in
//    float64 where the backend has it); hiddenAttentionFrom is the same sum as a plain loop.
//  - Decay of influence with distance and the share of influence mass beyond a distance.
import * as mi from '../engine/index.ts';
import type { Rng, Tensor } from '../engine/index.ts';
import type { MambaLM } from '../mamba/model.ts';
import { mean } from './stats.ts';
import { IGNORE_INDEX, NO_LABEL, type TaskBatch } from './tasks/types.ts';

/** Row t, column s: a T x T causal map (zero above the diagonal for a causal model). */
export type TimeMap = number[][];

/**
 * Frobenius norms of the blocks of a Jacobian laid out [groups, T, outInner, T, inInner] (row-major,
 * as mi.jacobian returns for an output [groups, T, outInner] and input [1, T, inInner] with the
 * batch axes dropped): one T x T map per group.
 */
export function blockNorms(J: ArrayLike<number>, groups: number, T: number, outInner: number, inInner: number): TimeMap[] {
  if (J.length !== groups * T * outInner * T * inInner) {
    throw new Error(`blockNorms: ${J.length} values, expected ${groups} x ${T} x ${outInner} x ${T} x ${inInner}`);
  }
  const maps: TimeMap[] = [];
  for (let g = 0; g < groups; g++) {
    const m = Array.from({ length: T }, () => new Array<number>(T).fill(0));
    for (let t = 0; t < T; t++)
      for (let o = 0; o < outInner; o++) {
        const row = ((g * T + t) * outInner + o) * T * inInner;
        for (let s = 0; s < T; s++) {
          let acc = 0;
          const off = row + s * inInner;
          for (let i = 0; i < inInner; i++) acc += J[off + i] * J[off + i];
          m[t][s] += acc;
        }
      }
    maps.push(m.map((r) => r.map(Math.sqrt)));
  }
  return maps;
}

export interface JacobianRunOptions {
  /** Jacobian rows per backward pass (copies of the input per forward; default 256) */
  chunk?: number;
}

export interface ResidualInfluence {
  /** per layer i: || d resid_post_i[t] / d embedding[s] ||_F */
  layers: TimeMap[];
  /** || d (final normed hidden)[t] / d embedding[s] ||_F, the quantity of the fixtures' golden Jacobian */
  final: TimeMap;
}

/** The input embeddings of one sequence, [1, T, d], with no history. */
function embedsOf(model: MambaLM, ids: readonly number[]): Tensor {
  return mi.noGrad(() => mi.embedding(model.p('backbone.embeddings.weight'), model.ids([ids])));
}

/** Influence of each input embedding on every layer's residual stream, for one sequence of ids. */
export async function residualInfluence(
  model: MambaLM,
  ids: readonly number[],
  opts: SketchOptions & { finalOnly?: boolean } = {},
): Promise<ResidualInfluence> {
  const L = model.config.num_hidden_layers,
    d = model.config.hidden_size,
    T = ids.length;
  const names = [...(opts.finalOnly ? [] : Array.from({ length: L }, (_, i) => `blocks.${i}.hook_resid_post`)), 'hook_norm_f'];
  const q = sketchRows(opts, d, 'residualInfluence');
  const J = mi.tidy(() => {
    const x = embedsOf(model, ids);
    const S = q < d ? sketchMatrix(model, d, q, opts.rng!) : null;
    const f = (e: Tensor) => {
      const { cache } = model.runEmbeds(e, { cache: names });
      const out = mi.stack(
        names.map((n) => cache.get(n)!),
        1,
      ); // [k, groups, T, d]
      return S ? mi.matmul(out, S) : out;
    };
    return mi.jacobian(f, x, { batched: true, chunk: opts.chunk });
  });
  try {
    const maps = blockNorms(await J.data(), names.length, T, q, d);
    return { layers: maps.slice(0, names.length - 1), final: maps[names.length - 1] };
  } finally {
    J.dispose();
  }
}

/**
 * Exact rows of the final-hidden influence map: || d (final normed hidden)[t] / d embedding[s] ||_F
 * for the output positions t in `positions` and every s, in a T x T map whose other rows are 0.
 * d Jacobian rows per position (one backward pass for up to chunk / d positions), so the rows a
 * test reads (e.g. the answers') are exact at the cost of a sketch.
 */
export async function outputInfluence(
  model: MambaLM,
  ids: readonly number[],
  positions: readonly number[],
  opts: JacobianRunOptions = {},
): Promise<TimeMap> {
  const d = model.config.hidden_size,
    T = ids.length;
  for (const t of positions)
    if (!(Number.isInteger(t) && t >= 0 && t < T)) throw new Error(`outputInfluence: position ${t} is outside [0, ${T})`);
  const map: TimeMap = Array.from({ length: T }, () => new Array<number>(T).fill(0));
  if (!positions.length) return map;
  const J = mi.tidy(() => {
    const x = embedsOf(model, ids);
    const f = (e: Tensor) => {
      const h = model.runEmbeds(e, { cache: ['hook_norm_f'] }).cache.get('hook_norm_f')!;
      return mi.concat(
        positions.map((t) => mi.slice(h, 1, t, t + 1)),
        1,
      ); // [k, P, d]
    };
    return mi.jacobian(f, x, { batched: true, chunk: opts.chunk });
  });
  try {
    const data = await J.data(); // [P, d, 1, T, d]
    positions.forEach((t, i) => {
      for (let s = 0; s < T; s++) {
        let acc = 0;
        for (let o = 0; o < d; o++) {
          const off = ((i * d + o) * T + s) * d;
          for (let j = 0; j < d; j++) acc += data[off + j] * data[off + j];
        }
        map[t][s] = Math.sqrt(acc);
      }
    });
    return map;
  } finally {
    J.dispose();
  }
}

/**
 * Jacobian rows per output position for the maps drawn and the long-range share: outputs wider than
 * this (hidden size d for the residual stream, E*N for the SSM state) are sketched with a Gaussian
 * matrix (below), which keeps step 8 (steps/step08-temporal.ts) within its time budget on the CPU (the exact
 * residual map costs about 10x). The sketch's error is measured by step 8 on each task's first model
 * against the exact map of one sequence (sketch-error.json) and bounded in the unit tests; the
 * source test reads exact rows (outputInfluence).
 */
export const RESIDUAL_SKETCH = 8;
export const STATE_SKETCH = 16;
export interface SketchOptions extends JacobianRunOptions {
  /**
   * 0 (default): exact. k > 0 (below the output size m): each position's output [m] is first
   * multiplied by a fixed Gaussian matrix [m, k] / sqrt(k), so ||S J||_F estimates ||J||_F
   * (unbiased in the square) with k instead of m Jacobian rows per position; needs `rng`.
   */
  sketch?: number;
  rng?: Rng;
}

export type StateInfluenceOptions = SketchOptions;

/** Rows per position: the sketch size when it is below the output size m, else m (exact). */
function sketchRows(opts: SketchOptions, m: number, who: string): number {
  const k = opts.sketch ?? 0;
  if (!(Number.isInteger(k) && k >= 0)) throw new Error(`${who}: sketch must be a non-negative integer, got ${k}`);
  if (k > 0 && k < m && !opts.rng) throw new Error(`${who}: a sketch needs an rng`);
  return k > 0 && k < m ? k : m;
}

function sketchMatrix(model: MambaLM, m: number, q: number, rng: Rng): Tensor {
  const data = Float64Array.from({ length: m * q }, () => rng.normal() / Math.sqrt(q));
  return mi.tensor(model.dtype === 'float64' ? data : Float32Array.from(data), [m, q], { dtype: model.dtype, backend: model.backend });
}

/**
 * || d h_t / d x_s ||_F for one layer's mixer: h_t [E,N] the SSM state after position t, x_s the
 * mixer's input (normed residual) at s, at the activations of the sequence `ids`.
 */
export async function stateInfluence(
  model: MambaLM,
  ids: readonly number[],
  layer: number,
  opts: StateInfluenceOptions = {},
): Promise<TimeMap> {
  const c = model.config,
    T = ids.length,
    d = c.hidden_size,
    EN = c.intermediate_size * c.state_size;
  if (!(layer >= 0 && layer < c.num_hidden_layers))
    throw new Error(`stateInfluence: layer ${layer} is outside [0, ${c.num_hidden_layers})`);
  const q = sketchRows(opts, EN, 'stateInfluence');
  const normName = `blocks.${layer}.hook_norm`,
    hName = `blocks.${layer}.mixer.hook_h`;
  const J = mi.tidy(() => {
    const embeds = embedsOf(model, ids);
    const x = mi.noGrad(() => model.runEmbeds(embeds, { cache: [normName] }).cache.get(normName)!);
    const S = q < EN ? sketchMatrix(model, EN, q, opts.rng!) : null;
    const f = (xs: Tensor) => {
      const k = xs.shape[0];
      const base = mi.expand(embeds, [k, T, d]);
      const { cache } = model.runEmbeds(base, { hooks: [{ name: normName, fn: () => xs }], cache: [hName] });
      const h = mi.reshape(cache.get(hName)!, [k, T, EN]);
      return S ? mi.matmul(h, S) : h;
    };
    return mi.jacobian(f, x, { batched: true, chunk: opts.chunk });
  });
  try {
    return blockNorms(await J.data(), 1, T, q, d)[0];
  } finally {
    J.dispose();
  }
}

// ---- hidden attention --------------------------------------------------------------------------

/**
 * alpha [E, T, T] (alpha[e*T*T + t*T + s]) from one sequence's delta [T,E], A [E,N], B and C [T,N]
 * (row-major): alpha[e,t,s] = sum_n C_t[n] exp(A[e,n] sum_{k=s+1..t} delta_k[e]) delta_s[e] B_s[n]
 * for s <= t, 0 above the diagonal.
 */
export function hiddenAttentionFrom(
  delta: ArrayLike<number>,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  C: ArrayLike<number>,
  T: number,
  E: number,
  N: number,
): Float64Array {
  if (delta.length !== T * E || A.length !== E * N || B.length !== T * N || C.length !== T * N) {
    throw new Error(
      `hiddenAttentionFrom: sizes delta ${delta.length}, A ${A.length}, B ${B.length}, C ${C.length} do not fit T=${T} E=${E} N=${N}`,
    );
  }
  const alpha = new Float64Array(E * T * T);
  const cum = new Float64Array(N);
  for (let e = 0; e < E; e++) {
    for (let s = 0; s < T; s++) {
      cum.fill(0);
      const ds = delta[s * E + e];
      for (let t = s; t < T; t++) {
        const dt = delta[t * E + e];
        let acc = 0;
        for (let n = 0; n < N; n++) {
          if (t > s) cum[n] += dt * A[e * N + n];
          acc += C[t * N + n] * Math.exp(cum[n]) * B[s * N + n];
        }
        alpha[(e * T + t) * T + s] = ds * acc;
      }
    }
  }
  return alpha;
}

export interface HiddenAttention {
  T: number;
  E: number;
  /** [E, T, T] per-channel matrices */
  alpha: Float64Array;
  /** mean over channels of |alpha[e,t,s]| */
  meanAbs: TimeMap;
  /** the scan input u [T, E], D [E] and the ungated scan output C.h + D u [T, E], for checking */
  u: Float64Array;
  D: Float64Array;
  ssmOut: Float64Array;
}

/** hook_delta, hook_B, hook_C of one layer's mixer and its A, as the influence kernel takes them (float64 where the backend has it). */
function scanFactors(model: MambaLM, cache: Map<string, Tensor>, layer: number) {
  const p = `blocks.${layer}.mixer.`;
  const dtype = model.backend.supports('float64') ? 'float64' : 'float32';
  const as = (t: Tensor) => (t.dtype === dtype ? t : mi.cast(t, dtype));
  const A = mi.noGrad(() => model.layer(layer).A());
  return { delta: as(cache.get(`${p}hook_delta`)!), A: as(A), B: as(cache.get(`${p}hook_B`)!), C: as(cache.get(`${p}hook_C`)!) };
}

const FACTOR_HOOKS = ['hook_delta', 'hook_B', 'hook_C'];

function timeMap(data: ArrayLike<number>, T: number): TimeMap {
  return Array.from({ length: T }, (_, t) => Array.from({ length: T }, (_, s) => data[t * T + s]));
}

/** The hidden attention of one layer for one sequence, from the model's hooks (the influence kernel). */
export async function hiddenAttention(model: MambaLM, ids: readonly number[], layer: number): Promise<HiddenAttention> {
  const c = model.config,
    E = c.intermediate_size,
    T = ids.length;
  checkLayer(model, layer, 'hiddenAttention');
  const p = `blocks.${layer}.mixer.`;
  const names = [...FACTOR_HOOKS, 'hook_conv_act', 'hook_ssm_out'].map((n) => p + n);
  const got = await mi.tidyAsync(async () => {
    const { cache } = mi.noGrad(() => model.runWithCache([ids], names));
    const { norm, alpha } = mi.noGrad(() => mi.scanInfluence({ ...scanFactors(model, cache, layer), returnAlpha: true }));
    const read = async (t: Tensor) => Float64Array.from(await t.data());
    return {
      alpha: await read(alpha!),
      meanAbs: await read(norm),
      u: await read(cache.get(names[3])!),
      ssmOut: await read(cache.get(names[4])!),
      D: await read(model.layer(layer).D),
    };
  });
  return { T, E, alpha: got.alpha, meanAbs: timeMap(got.meanAbs, T), u: got.u, D: got.D, ssmOut: got.ssmOut };
}

/**
 * One layer's hidden-attention map alone, without the per-channel alpha (E times smaller): mean
 * over channels of |alpha[e,t,s]| ('mean_abs', as HiddenAttention.meanAbs) or sqrt(sum_e alpha^2) ('l2').
 */
export async function hiddenAttentionMap(
  model: MambaLM,
  ids: readonly number[],
  layer: number,
  norm: 'mean_abs' | 'l2' = 'mean_abs',
): Promise<TimeMap> {
  checkLayer(model, layer, 'hiddenAttentionMap');
  const names = FACTOR_HOOKS.map((n) => `blocks.${layer}.mixer.${n}`);
  const data = await mi.tidyAsync(async () => {
    const { cache } = mi.noGrad(() => model.runWithCache([ids], names));
    return mi.noGrad(() => mi.scanInfluence({ ...scanFactors(model, cache, layer), norm }).norm).data();
  });
  return timeMap(data, ids.length);
}

function checkLayer(model: MambaLM, layer: number, who: string): void {
  const L = model.config.num_hidden_layers;
  if (!(Number.isInteger(layer) && layer >= 0 && layer < L)) throw new Error(`${who}: layer ${layer} is outside [0, ${L})`);
}

/** y [T, E] = sum_s alpha[e,t,s] u_s[e] + D[e] u_t[e]: the scan output rebuilt from alpha. */
export function applyHiddenAttention(alpha: Float64Array, u: ArrayLike<number>, D: ArrayLike<number>, T: number, E: number): Float64Array {
  const y = new Float64Array(T * E);
  for (let e = 0; e < E; e++)
    for (let t = 0; t < T; t++) {
      let acc = D[e] * u[t * E + e];
      for (let s = 0; s <= t; s++) acc += alpha[(e * T + t) * T + s] * u[s * E + e];
      y[t * E + e] = acc;
    }
  return y;
}

/** One channel's T x T matrix from alpha [E,T,T]. */
export function channelMap(alpha: Float64Array, e: number, T: number): TimeMap {
  return Array.from({ length: T }, (_, t) => Array.from(alpha.subarray((e * T + t) * T, (e * T + t + 1) * T)));
}

// ---- distance --------------------------------------------------------------------------------

/** Mean of map[t][t - d] over t, for each distance d = 0..T-1. */
export function decayCurve(map: TimeMap): number[] {
  const T = map.length;
  return Array.from({ length: T }, (_, d) => {
    let acc = 0;
    for (let t = d; t < T; t++) acc += map[t][t - d];
    return acc / (T - d);
  });
}

/** Share of the causal influence mass (s <= t) that lies at distance t - s >= minDistance. */
export function longRangeFraction(map: TimeMap, minDistance: number): number {
  let far = 0,
    all = 0;
  map.forEach((row, t) => {
    for (let s = 0; s <= t; s++) {
      all += Math.abs(row[s]);
      if (t - s >= minDistance) far += Math.abs(row[s]);
    }
  });
  return all > 0 ? far / all : 0;
}

/** Largest |map[t][s]| above the diagonal (s > t), relative to the largest entry overall: 0 for a causal map. */
export function acausalMass(map: TimeMap): number {
  let above = 0,
    max = 0;
  map.forEach((row, t) =>
    row.forEach((v, s) => {
      max = Math.max(max, Math.abs(v));
      if (s > t) above = Math.max(above, Math.abs(v));
    }),
  );
  return max > 0 ? above / max : 0;
}

/** Elementwise mean of equally sized maps. */
export function meanMap(maps: readonly TimeMap[]): TimeMap {
  if (!maps.length) throw new Error('meanMap: no maps');
  return maps[0].map((row, t) => row.map((_, s) => maps.reduce((a, m) => a + m[t][s], 0) / maps.length));
}

// ---- influence at the answer's source -----------------------------------------------------------

/** One scored position of a task sequence and the position its answer is read from. */
export interface AnswerSource {
  /** the sequence (row of the batch) */
  seq: number;
  /** the position whose output is the answer */
  answer: number;
  /** where the answer comes from: induction the token after the previous trigger, selective copying the data token, MQAR the value after the key */
  source: number;
}

/** The (answer, source) pairs of a task batch, from its labels (sourcePos; MQAR keyPos + 1). */
export function answerSources(batch: TaskBatch): AnswerSource[] {
  const [B, T] = batch.shape;
  const src = batch.labels.sourcePos,
    key = batch.labels.keyPos;
  if (!src && !key) throw new Error('answerSources: the batch has neither a sourcePos nor a keyPos label');
  const out: AnswerSource[] = [];
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      const s = src ? src[i] : key[i] === NO_LABEL ? NO_LABEL : key[i] + 1;
      if (s !== NO_LABEL && batch.targets[i] !== IGNORE_INDEX) out.push({ seq: b, answer: t, source: s });
    }
  return out;
}

export interface SourcePeak {
  /** per pair: its distance answer - source, matched controls, log influence at the source minus the mean log influence over its controls, and the source's percentile among them */
  pairs: (AnswerSource & { distance: number; controls: number; logRatio: number; percentile: number })[];
  /** pairs left out: no matched control at their distance */
  skipped: number;
  /** mean log ratio over pairs (> 0: the answer depends more on its source than on other positions at the same distance) */
  value: number;
  /** mean percentile of the source among its controls (ties count half; 0.5 under the null) */
  percentile: number;
  /** null draws (of nPerm) whose mean log ratio is >= the observed: a rank, p = (1 + ge) / (1 + nPerm) */
  ge: number;
  nPerm: number;
  p: number;
}

/**
 * Does the influence on each answer peak at its source? For a pair (answer p, source s) at distance
 * d = p - s, the matched controls are the entries map[p'][p' - d] of every answer position p' (of
 * any sequence; maps[seq][t][s], one map per sequence) whose position d back is not its source:
 * answer rows, so a position that reads its state more than others do cannot make the difference,
 * and the same distance, so neither can the decay of influence with distance. Null (the source is
 * one more position at its distance): each pair's source is replaced by a uniformly drawn member of
 * its pool (source and controls), independently per pair; the rank of the observed mean log ratio
 * among nPerm such draws is the one-sided test. Pairs with no control at their distance are left out.
 * `stratum` (e.g. the token's class in the task's vocabulary) matches controls further: a control
 * must be in the source's stratum, so that a source that is always a content token is not compared
 * with trigger or BOS positions, whose embeddings differ.
 */
export function sourcePeak(
  maps: readonly TimeMap[],
  pairs: readonly AnswerSource[],
  rng: Rng,
  nPerm: number,
  stratum: (seq: number, pos: number) => number = () => 0,
): SourcePeak {
  if (!(Number.isInteger(nPerm) && nPerm >= 1)) throw new Error(`sourcePeak: nPerm must be a positive integer, got ${nPerm}`);
  for (const q of pairs)
    if (!(q.answer - q.source >= 1 && q.answer < maps[q.seq].length))
      throw new Error(`sourcePeak: pair ${JSON.stringify(q)} is not causal or outside the map`);
  const isPair = new Set(pairs.map((q) => `${q.seq},${q.answer},${q.source}`));
  const answers = [...new Map(pairs.map((q) => [`${q.seq},${q.answer}`, q])).values()];
  const log = (v: number) => Math.log(Math.max(v, 1e-300));
  const pools = new Map<string, Float64Array>(); // (distance, stratum) -> log values of its controls
  const poolAt = (d: number, k: number) => {
    let pool = pools.get(`${d},${k}`);
    if (!pool) {
      const vals: number[] = [];
      for (const a of answers) {
        const s = a.answer - d;
        if (s >= 0 && stratum(a.seq, s) === k && !isPair.has(`${a.seq},${a.answer},${s}`)) vals.push(log(maps[a.seq][a.answer][s]));
      }
      pool = Float64Array.from(vals);
      pools.set(`${d},${k}`, pool);
    }
    return pool;
  };
  const rows = pairs.flatMap((q) => {
    const d = q.answer - q.source;
    const pool = poolAt(d, stratum(q.seq, q.source));
    if (!pool.length) return [];
    const x = log(maps[q.seq][q.answer][q.source]);
    let sum = 0,
      below = 0;
    for (const v of pool) {
      sum += v;
      below += v < x ? 1 : v === x ? 0.5 : 0;
    }
    return [{ ...q, distance: d, controls: pool.length, x, mu: sum / pool.length, pool, percentile: below / pool.length }];
  });
  if (!rows.length) throw new Error('sourcePeak: no (answer, source) pair with a matched control');
  const value = mean(rows.map((r) => r.x - r.mu));
  let ge = 0;
  for (let i = 0; i < nPerm; i++) {
    let acc = 0;
    for (const r of rows) {
      const n = r.pool.length;
      const j = rng.int(0, n + 1);
      const y = j === n ? r.x : r.pool[j];
      // the drawn member against the rest of its pool (the source moves into the controls)
      acc += y - (r.mu * n + r.x - y) / n;
    }
    if (acc / rows.length >= value - 1e-12) ge++;
  }
  return {
    pairs: rows.map(({ seq, answer, source, distance, controls, x, mu, percentile }) => ({
      seq,
      answer,
      source,
      distance,
      controls,
      logRatio: x - mu,
      percentile,
    })),
    skipped: pairs.length - rows.length,
    value,
    percentile: mean(rows.map((r) => r.percentile)),
    ge,
    nPerm,
    p: (1 + ge) / (1 + nPerm),
  };
}

// ---- sketch error ---------------------------------------------------------------------------------

/**
 * The stated error of a k-row Gaussian sketch: ||S^T J||_F^2 is unbiased for ||J||_F^2 with
 * relative standard deviation sqrt(2 / (k r)), r = ||J||_F^4 / ||J^T J||_F^2 >= 1 the block's
 * effective rank, so at most sqrt(2 / k) (rank 1).
 */
export function sketchErrorBound(k: number): number {
  return Math.sqrt(2 / k);
}

export interface SketchError {
  /** causal entries compared (exact > 0) */
  entries: number;
  /** root mean square of ŝ^2 / s^2 - 1 over entries (the quantity the bound is about) */
  rmsSquare: number;
  /** mean of ŝ^2 / s^2 (1 if unbiased) */
  meanRatio: number;
  /** median and largest |ŝ / s - 1| */
  medianRel: number;
  maxRel: number;
}

/** A sketched map against the exact one, over the causal entries (s <= t) where the exact map is positive. */
export function sketchError(exact: TimeMap, sketched: TimeMap): SketchError {
  const sq: number[] = [],
    rel: number[] = [];
  exact.forEach((row, t) => {
    for (let s = 0; s <= t; s++)
      if (row[s] > 0) {
        const r = sketched[t][s] / row[s];
        sq.push(r * r);
        rel.push(Math.abs(r - 1));
      }
  });
  if (!sq.length) throw new Error('sketchError: no positive entry in the exact map');
  rel.sort((a, b) => a - b);
  return {
    entries: sq.length,
    rmsSquare: Math.sqrt(mean(sq.map((v) => (v - 1) ** 2))),
    meanRatio: mean(sq),
    medianRel: rel[Math.floor(rel.length / 2)],
    maxRel: rel[rel.length - 1],
  };
}
