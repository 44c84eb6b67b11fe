// Gradient-times-activation attribution (a first-order estimate of each coordinate's effect on the
// loss when it is zeroed): per hook and coordinate, the mean over the covered cells of
//     a * d loss / d a
// where the loss is the cross-entropy at the task's scored positions. The gradient with respect
// to an intermediate activation is taken by adding a zero leaf that requires a gradient at the hook
// (x + 0): its gradient is d loss / d x through every later path, and the forward is unchanged.
// hook_h is attributed at the covered positions only (the scan is split there, mamba/hooks.ts).
// Attribution patching (Nanda 2023; Syed et al. 2023) uses the same gradients for the patching
// effect: (clean - corrupted activation) x the gradient of the logit difference at the corrupted run.
// Both run over the batch in chunks of sequences (ATTRIBUTION_TOKENS tokens at most a backward): a
// backward keeps every activation of its forward, and 64 sequences of 256 tokens at once outgrow the
// CPU backend's 4 GiB heap. Each chunk's objective is its part of the whole batch's (the same
// per-cell weights), so the summed gradients, and the scores, are the unchunked ones up to float
// summation order.
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Hook, HookContext } from '../mamba/hooks.ts';
import type { MambaLM } from '../mamba/model.ts';
import { hookDim, isStateHook } from './sites.ts';
import { IGNORE_INDEX, type TaskBatch } from './tasks/index.ts';

export interface AttributionTarget {
  hook: string;
  /** [batch*T] cells to average over (see positionMask) */
  mask: Uint8Array;
}

/**
 * Tokens per backward (chunks of whole sequences, at least one). A state hook at positions splits
 * the scan there and keeps a state per position and sequence, so a chunk's memory grows with its
 * sequences times its positions: on a 64-wide, 2-layer model at the 8 state-hook targets of
 * attributionMaps, 64 x 64 tokens at once peaked at 1.5 GiB of heap (and 32 x 256 ran out), 16 x 64
 * at 0.33 GiB, 4 x 256 at 0.15 GiB, and the smaller chunks ran faster (40 s vs 16 s for 64 x 64).
 */
export const ATTRIBUTION_TOKENS = 1024;

/** Sequences per chunk for a batch of length T under a token budget. */
export function chunkSequences(T: number, maxTokens: number): number {
  return Math.max(1, Math.floor(maxTokens / T));
}

/** Sequences [from, to) of a batch (inputs, targets and every label). */
export function sliceExamples(batch: TaskBatch, from: number, to: number): TaskBatch {
  const [B, T] = batch.shape;
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && to <= B && from < to))
    throw new Error(`sliceExamples: [${from}, ${to}) is not a non-empty range of the batch's ${B} examples`);
  const cut = (a: Int32Array) => a.slice(from * T, to * T);
  return {
    inputs: cut(batch.inputs),
    targets: cut(batch.targets),
    labels: Object.fromEntries(Object.entries(batch.labels).map(([k, v]) => [k, cut(v)])),
    shape: [to - from, T],
  };
}

/** The chunks of a batch: first sequence, the slice, and each target's mask cut to it. */
function* chunks(
  batch: TaskBatch,
  targets: readonly AttributionTarget[],
  maxTokens: number,
  caller: string,
): Generator<{ from: number; part: TaskBatch; parts: AttributionTarget[] }> {
  const [B, T] = batch.shape;
  for (const tg of targets)
    if (tg.mask.length !== B * T) throw new Error(`${caller}: mask for ${tg.hook} has ${tg.mask.length} cells, expected ${B * T}`);
  const n = chunkSequences(T, maxTokens);
  for (let from = 0; from < B; from += n) {
    const to = Math.min(B, from + n);
    const parts = targets.map((tg) => ({ hook: tg.hook, mask: tg.mask.subarray(from * T, to * T) }));
    // a chunk where no target has a cell contributes nothing (and would reach no state hook)
    if (!parts.some((p) => p.mask.some((v) => v))) continue;
    yield { from, part: from === 0 && to === B ? batch : sliceExamples(batch, from, to), parts };
  }
}

/** What a hook saw during a forward pass with gradient leaves: the activation, its leaf, the state position (null: every position). */
interface Seen {
  act: Tensor;
  leaf: Tensor;
  position: number | null;
}

/**
 * Runs the model on `batch` with a zero leaf requiring a gradient added at every target's hook,
 * takes d objective / d leaf for `objective(logits)` (a scalar), and hands each target's
 * (activation, gradient, position) triples to `use`. Inside one tidy scope.
 */
async function withHookGradients<R>(
  model: MambaLM,
  batch: TaskBatch,
  targets: readonly AttributionTarget[],
  objective: (logits: Tensor) => Tensor,
  use: (seen: { act: ArrayLike<number>; grad: ArrayLike<number>; position: number | null }[][]) => R,
  caller: string,
): Promise<R> {
  const [B, T] = batch.shape;
  const opts = { dtype: model.dtype, backend: model.backend };
  return mi.tidyAsync(async () => {
    // per target: the (activation, zero leaf, position) triples its hooks saw
    const seen: Seen[][] = targets.map(() => []);
    const hooks: Hook[] = targets
      .map((tg, k) => {
        hookDim(model, tg.hook); // an error naming an unknown hook
        if (tg.mask.length !== B * T) throw new Error(`${caller}: mask for ${tg.hook} has ${tg.mask.length} cells, expected ${B * T}`);
        const wrap = (x: Tensor, position: number | null) => {
          const leaf = mi.zeros(x.shape, opts);
          leaf.requiresGrad = true;
          seen[k].push({ act: x, leaf, position });
          return mi.add(x, leaf);
        };
        if (!isStateHook(tg.hook)) return { name: tg.hook, fn: (x: Tensor) => wrap(x, null) };
        const positions: number[] = [];
        for (let t = 0; t < T; t++)
          for (let b = 0; b < B; b++)
            if (tg.mask[b * T + t]) {
              positions.push(t);
              break;
            }
        return { name: tg.hook, positions, fn: (h: Tensor, ctx: HookContext) => wrap(h, ctx.position!) };
      })
      .filter((h) => !h.positions || h.positions.length);
    const ids = mi.tensor(batch.inputs, [B, T], { dtype: 'int32', backend: model.backend });
    const out = objective(model.runWithHooks(ids, hooks));
    if (!out.requiresGrad) throw new Error(`${caller}: no hook was reached`);
    const grads = mi.backwardFrom(out);
    const read: { act: ArrayLike<number>; grad: ArrayLike<number>; position: number | null }[][] = [];
    for (const list of seen) {
      const r: { act: ArrayLike<number>; grad: ArrayLike<number>; position: number | null }[] = [];
      for (const { act, leaf, position } of list)
        r.push({ act: await act.data(), grad: await (grads.get(leaf) ?? mi.zerosLike(leaf)).data(), position });
      read.push(r);
    }
    return use(read);
  });
}

/** Per target: the mean of activation * gradient over its cells, per coordinate ([dim]). */
export async function gradTimesActivation(
  model: MambaLM,
  batch: TaskBatch,
  targets: readonly AttributionTarget[],
  maxTokens = ATTRIBUTION_TOKENS,
): Promise<Float64Array[]> {
  const T = batch.shape[1];
  const scored = (a: Int32Array) => a.reduce((n, t) => n + (t !== IGNORE_INDEX ? 1 : 0), 0);
  const total = scored(batch.targets);
  const sums = targets.map((tg) => new Float64Array(hookDim(model, tg.hook)));
  const cells = targets.map(() => 0);
  for (const { part, parts } of chunks(batch, targets, maxTokens, 'gradTimesActivation')) {
    const [b, t] = part.shape;
    // no scored cell: no loss, a zero gradient, nothing to add (the cells still count)
    if (!scored(part.targets)) {
      parts.forEach((p, k) => {
        cells[k] += p.mask.reduce((n, v) => n + v, 0);
      });
      continue;
    }
    const tgt = () => mi.tensor(part.targets, [b, t], { dtype: 'int32', backend: model.backend });
    await withHookGradients(
      model,
      part,
      parts,
      // the whole batch's mean loss restricted to this chunk: its summed loss over all scored cells
      (logits) => mi.div(mi.crossEntropy(logits, tgt(), { ignoreIndex: IGNORE_INDEX, reduction: 'sum' }), total),
      (seen) =>
        parts.forEach((tg, k) => {
          const dim = sums[k].length,
            sum = sums[k];
          for (const { act: a, grad: g, position } of seen[k]) {
            // a normal hook holds every cell [b,T,dim]; a state hook one position [b,E,N]
            const per = position === null ? T : 1;
            for (let e = 0; e < b; e++) {
              for (let j = 0; j < per; j++) {
                const tt = position ?? j;
                if (!tg.mask[e * T + tt]) continue;
                cells[k]++;
                const o = (e * per + j) * dim;
                for (let c = 0; c < dim; c++) sum[c] += a[o + c] * g[o + c];
              }
            }
          }
        }),
      'gradTimesActivation',
    );
  }
  return sums.map((sum, k) => sum.map((s) => (cells[k] ? s / cells[k] : 0)));
}

/**
 * Attribution patching: the first-order estimate, per coordinate, of what patching that coordinate's
 * clean value into the corrupted run (at the target's cells) gains in the logit difference
 *     sum over cells of (a_clean - a_corrupted) * d metric / d a   at the corrupted run
 * where the metric is the mean over examples of each example's mean over its scored cells of
 * logit(clean answer) - logit(corrupted answer): the same quantity `patchClean` measures as `gained`
 * averaged over examples, so prediction and real patch are in the same units. `clean` holds the
 * clean run's full activation [batch,T,...] at each target's hook.
 */
export async function attributionPatching(
  model: MambaLM,
  corrupt: TaskBatch,
  cleanTargets: Int32Array,
  targets: readonly AttributionTarget[],
  clean: readonly Tensor[],
  maxTokens = ATTRIBUTION_TOKENS,
): Promise<Float64Array[]> {
  const [B, T] = corrupt.shape;
  const V = model.config.vocab_size;
  if (clean.length !== targets.length)
    throw new Error(`attributionPatching: ${clean.length} clean activations for ${targets.length} targets`);
  if (cleanTargets.length !== B * T)
    throw new Error(`attributionPatching: clean targets have ${cleanTargets.length} cells, expected ${B * T}`);
  // the metric's weight on each (cell, token): +w at the clean answer, -w at the corrupted one
  const perEx = new Float64Array(B);
  for (let i = 0; i < B * T; i++) if (corrupt.targets[i] !== IGNORE_INDEX) perEx[Math.floor(i / T)]++;
  const nEx = perEx.reduce((n, c) => n + (c ? 1 : 0), 0);
  if (!nEx) throw new Error('attributionPatching: the batch has no scored positions');
  const weights = model.dtype === 'float64' ? new Float64Array(B * T * V) : new Float32Array(B * T * V);
  for (let i = 0; i < B * T; i++) {
    const alt = corrupt.targets[i];
    if (alt === IGNORE_INDEX) continue;
    const ans = cleanTargets[i];
    if (ans === IGNORE_INDEX) throw new Error(`attributionPatching: cell ${i} is scored in the corrupted batch but not in the clean one`);
    const w = 1 / (perEx[Math.floor(i / T)] * nEx);
    weights[i * V + ans] += w;
    weights[i * V + alt] -= w;
  }
  const cleanData = await Promise.all(clean.map((c) => c.data()));
  targets.forEach((tg, k) => {
    if (cleanData[k].length !== B * T * hookDim(model, tg.hook))
      throw new Error(`attributionPatching: the clean activation at ${tg.hook} is not [${B}, ${T}, ${hookDim(model, tg.hook)}]`);
  });
  const outs = targets.map((tg) => new Float64Array(hookDim(model, tg.hook)));
  // the metric is a sum over cells with fixed weights: each chunk's part adds up to the whole
  for (const { from, part, parts } of chunks(corrupt, targets, maxTokens, 'attributionPatching')) {
    const b = part.shape[0];
    const w = weights.subarray(from * T * V, (from + b) * T * V);
    await withHookGradients(
      model,
      part,
      parts,
      (logits) => mi.sum(mi.mul(logits, mi.tensor(w, [b, T, V], { dtype: model.dtype, backend: model.backend }))),
      (seen) =>
        parts.forEach((tg, k) => {
          const dim = outs[k].length,
            cd = cleanData[k],
            out = outs[k];
          for (const { act: a, grad: g, position } of seen[k]) {
            const per = position === null ? T : 1;
            for (let e = 0; e < b; e++)
              for (let j = 0; j < per; j++) {
                const t = position ?? j;
                if (!tg.mask[e * T + t]) continue;
                const o = (e * per + j) * dim,
                  oc = ((from + e) * T + t) * dim;
                for (let c = 0; c < dim; c++) out[c] += (cd[oc + c] - a[o + c]) * g[o + c];
              }
          }
        }),
      'attributionPatching',
    );
  }
  return outs;
}

/** The k indices of largest |value| (ties by index), sorted ascending. */
export function topByMagnitude(values: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b)
    .slice(0, Math.min(k, values.length))
    .sort((a, b) => a - b);
}

/** Jaccard overlap |A ∩ B| / |A ∪ B| of two index sets (1 for two empty sets). */
export function jaccard(a: readonly number[], b: readonly number[]): number {
  const A = new Set(a),
    B = new Set(b);
  let inter = 0;
  for (const x of A) if (B.has(x)) inter++;
  const union = A.size + B.size - inter;
  return union ? inter / union : 1;
}

/** Pearson correlation of two equal-length samples (0 when either is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (n !== b.length || n < 2) throw new Error(`pearson: needs two samples of the same length >= 2, got ${n} and ${b.length}`);
  let ma = 0,
    mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}
