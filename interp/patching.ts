// Activation patching: necessity (ablate a site: zero, mean, resample) and sufficiency (patch a
// site's clean-run values into a corrupted run), measured per example at the task's scored
// positions, and compared with matched control sites of the same size on the same hook
// (interp/controls.ts).
//
// Measures, per example (the unit the bootstrap resamples), averaged over its scored positions:
//   accuracy     argmax of the logits = the answer
//   loss         cross-entropy of the answer
//   logit diff   logit(answer) - logit(alternative answer)  (sufficiency: clean vs corrupted answer)
// Sufficiency reports the fraction of the clean-vs-corrupted logit difference the patch restores,
//   (mean LD_patched - mean LD_corrupted) / (mean LD_clean - mean LD_corrupted),
// a ratio of means (per-example ratios blow up where an example's denominator is near zero).
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Hook } from '../mamba/hooks.ts';
import type { MambaLM } from '../mamba/model.ts';
import { mean } from './stats.ts';
import { IGNORE_INDEX, type Task, type TaskBatch } from './tasks/index.ts';
import { siteHooks, stackedSiteHooks, type Edit, type Site } from './sites.ts';

export * from './sites.ts';

/** The scored cells of a batch and who they belong to. */
export interface EvalSet {
  batch: TaskBatch;
  /** flat indices b*T+t of the scored cells */
  rows: Int32Array;
  /** the example of each scored cell */
  example: Int32Array;
  /** the answer at each scored cell (the target) */
  answer: Int32Array;
  /** an alternative answer per scored cell (e.g. the corrupted run's), for logit differences */
  alt?: Int32Array;
}

export function evalSet(batch: TaskBatch, alt?: TaskBatch): EvalSet {
  const [, T] = batch.shape;
  const rows: number[] = [];
  batch.targets.forEach((t, i) => {
    if (t !== IGNORE_INDEX) rows.push(i);
  });
  if (!rows.length) throw new Error('evalSet: the batch has no scored positions');
  const set: EvalSet = {
    batch,
    rows: Int32Array.from(rows),
    example: Int32Array.from(rows, (i) => Math.floor(i / T)),
    answer: Int32Array.from(rows, (i) => batch.targets[i]),
  };
  if (alt) {
    if (alt.targets.length !== batch.targets.length) throw new Error('evalSet: the alternative batch has another shape');
    set.alt = Int32Array.from(rows, (i) => {
      if (alt.targets[i] === IGNORE_INDEX) throw new Error(`evalSet: cell ${i} is scored in the batch but not in the alternative`);
      return alt.targets[i];
    });
  }
  return set;
}

export function idsOf(model: MambaLM, batch: TaskBatch): Tensor {
  return mi.tensor(batch.inputs, batch.shape, { dtype: 'int32', backend: model.backend });
}

export interface Outcome {
  accuracy: Float64Array;
  loss: Float64Array;
  /** when the set has alternative answers */
  logitDiff?: Float64Array;
  /** log-softmax at the scored cells [rows, V], when asked for (KL divergences) */
  logProbs?: Float32Array;
}

/** The examples of a set (0..batch-1), and how many scored cells each has. */
function cellsPerExample(set: EvalSet): Float64Array {
  const n = new Float64Array(set.batch.shape[0]);
  for (const e of set.example) n[e]++;
  return n;
}

/** Averages per-cell values into per-example values (examples with no scored cell are 0 and dropped by callers via `scoredExamples`). */
export function perExample(set: EvalSet, cell: ArrayLike<number>): Float64Array {
  const n = cellsPerExample(set),
    out = new Float64Array(n.length);
  for (let i = 0; i < set.rows.length; i++) out[set.example[i]] += cell[i] / n[set.example[i]];
  return out;
}

/** Runs the model on ids with hooks (no gradient) and measures the scored cells. */
export async function outcome(
  model: MambaLM,
  ids: Tensor,
  set: EvalSet,
  hooks: readonly Hook[],
  opts: { logProbs?: boolean } = {},
): Promise<Outcome> {
  const logits = await mi.tidyAsync(() =>
    scoredLogits(
      model,
      mi.noGrad(() => model.runWithHooks(ids, hooks)),
      set,
    ),
  );
  return scoreLogits(model, logits, set, opts);
}

/** The logits [batch,T,V] at the set's scored cells, read out ([rows * V]). */
function scoredLogits(model: MambaLM, all: Tensor, set: EvalSet): Promise<Float32Array | Float64Array> {
  const V = model.config.vocab_size;
  const flat = mi.reshape(all, [all.size / V, V]);
  const rowsT = mi.tensor(set.rows, [set.rows.length], { dtype: 'int32', backend: model.backend });
  return mi.indexSelect(flat, 0, rowsT).data() as Promise<Float32Array | Float64Array>;
}

/** The argmax and log-sum-exp of logits[offset .. offset + V) (one row of [.., V] logits). */
export function rowArgmaxLse(logits: ArrayLike<number>, offset: number, V: number): { arg: number; lse: number } {
  let max = -Infinity,
    arg = 0;
  for (let v = 0; v < V; v++)
    if (logits[offset + v] > max) {
      max = logits[offset + v];
      arg = v;
    }
  let z = 0;
  for (let v = 0; v < V; v++) z += Math.exp(logits[offset + v] - max);
  return { arg, lse: max + Math.log(z) };
}

/** Accuracy, loss and logit difference per example from the logits at the scored cells. */
function scoreLogits(model: MambaLM, logits: ArrayLike<number>, set: EvalSet, opts: { logProbs?: boolean } = {}): Outcome {
  const V = model.config.vocab_size;
  const S = set.rows.length;
  const acc = new Float64Array(S),
    loss = new Float64Array(S),
    ld = set.alt ? new Float64Array(S) : null;
  const lp = opts.logProbs ? new Float32Array(S * V) : null;
  for (let i = 0; i < S; i++) {
    const o = i * V;
    const { arg, lse } = rowArgmaxLse(logits, o, V);
    acc[i] = arg === set.answer[i] ? 1 : 0;
    loss[i] = lse - logits[o + set.answer[i]];
    if (ld) ld[i] = logits[o + set.answer[i]] - logits[o + set.alt![i]];
    if (lp) for (let v = 0; v < V; v++) lp[o + v] = logits[o + v] - lse;
  }
  return {
    accuracy: perExample(set, acc),
    loss: perExample(set, loss),
    ...(ld ? { logitDiff: perExample(set, ld) } : {}),
    ...(lp ? { logProbs: lp } : {}),
  };
}

/** Per example, the mean over its scored cells of KL(reference || other) from log-probabilities [rows, V]. */
export function klPerExample(set: EvalSet, reference: Float32Array, other: Float32Array, V: number): Float64Array {
  const S = set.rows.length,
    kl = new Float64Array(S);
  for (let i = 0; i < S; i++) {
    let s = 0;
    for (let v = 0; v < V; v++) {
      const p = reference[i * V + v];
      s += Math.exp(p) * (p - other[i * V + v]);
    }
    kl[i] = Math.max(s, 0);
  }
  return perExample(set, kl);
}

/** The named activations of a clean forward pass, kept out of tidy scopes (the caller disposes them). */
export function cacheActivations(model: MambaLM, ids: Tensor, hooks: readonly string[]): Map<string, Tensor> {
  return mi.tidy(() => {
    const { cache } = mi.noGrad(() => model.run(ids, { cache: [...new Set(hooks)] }));
    const out = new Map<string, Tensor>();
    for (const h of new Set(hooks)) out.set(h, mi.keep(cache.get(h)!));
    return out;
  });
}

/** Per coordinate, the mean of an activation [batch,T,...] over the cells of a mask. */
export async function maskedMean(act: Tensor, mask: Uint8Array): Promise<Float32Array> {
  const data = await act.data();
  const cells = mask.length,
    dim = act.size / cells;
  const sum = new Float64Array(dim);
  let n = 0;
  for (let c = 0; c < cells; c++) {
    if (!mask[c]) continue;
    n++;
    for (let j = 0; j < dim; j++) sum[j] += data[c * dim + j];
  }
  if (!n) throw new Error('maskedMean: the mask covers no cell');
  return Float32Array.from(sum, (s) => s / n);
}

/** The activation with its examples rolled by `shift` (example b gets example b+shift's values): resampling from another example. */
export function rolledBatch(act: Tensor, shift = 1): Tensor {
  const B = act.shape[0];
  const idx = Int32Array.from({ length: B }, (_, b) => (b + shift) % B);
  return mi.tidy(() => mi.keep(mi.indexSelect(act, 0, mi.tensor(idx, [B], { dtype: 'int32', backend: act.backend }))));
}

export type AblationKind = 'zero' | 'mean' | 'resample';

/** What each ablation replaces the site's coordinates with, built from the clean activations at its hook. */
export async function ablationEdit(kind: AblationKind, clean: Tensor, mask: Uint8Array, resampled?: Tensor): Promise<Edit> {
  if (kind === 'zero') return { kind: 'zero' };
  if (kind === 'mean') return { kind: 'constant', value: await maskedMean(clean, mask) };
  if (!resampled) throw new Error('ablationEdit: resample needs the rolled activations (rolledBatch)');
  return { kind: 'activations', value: resampled };
}

/** Per example: accuracy drop and loss increase when the site is ablated. */
export interface NecessityEffect {
  accuracyDrop: Float64Array;
  lossIncrease: Float64Array;
}

export async function ablate(
  model: MambaLM,
  ids: Tensor,
  set: EvalSet,
  base: Outcome,
  site: Site,
  mask: Uint8Array,
  edit: Edit,
): Promise<NecessityEffect> {
  const o = await outcome(model, ids, set, siteHooks(model, site, mask, set.batch.shape, edit));
  return {
    accuracyDrop: base.accuracy.map((a, i) => a - o.accuracy[i]),
    lossIncrease: o.loss.map((l, i) => l - base.loss[i]),
  };
}

/**
 * Sufficiency: the corrupted run with the site's clean values patched in. `set` = evalSet(clean,
 * corrupted): answers are the clean ones, alternatives the corrupted ones, so the logit difference
 * is clean minus corrupted answer; cleanLd and corruptLd are that difference on the clean and the
 * corrupted inputs. Per example: the logit difference gained over the corrupted run (numerator)
 * and the clean-vs-corrupted gap (denominator).
 */
export interface SufficiencyEffect {
  gained: Float64Array;
  gap: Float64Array;
}

export async function patchClean(
  model: MambaLM,
  corruptIds: Tensor,
  set: EvalSet,
  cleanLd: Float64Array,
  corruptLd: Float64Array,
  site: Site,
  mask: Uint8Array,
  cleanAct: Tensor,
): Promise<SufficiencyEffect> {
  if (!set.alt) throw new Error('patchClean: the set needs the corrupted answers as alternatives (evalSet(clean, corrupted))');
  const o = await outcome(model, corruptIds, set, siteHooks(model, site, mask, set.batch.shape, { kind: 'activations', value: cleanAct }));
  return { gained: o.logitDiff!.map((v, i) => v - corruptLd[i]), gap: cleanLd.map((v, i) => v - corruptLd[i]) };
}

/** The fraction restored, ratio of means (see the header). */
export function fractionRestored(gained: ArrayLike<number>, gap: ArrayLike<number>): number {
  const g = mean(gap);
  return g === 0 ? 0 : mean(gained) / g;
}

/**
 * A corrupted copy of a batch with a different answer at every scored position: the token the
 * answer is copied from (found through `source`, a label giving its position at the scored cells,
 * plus offset) is replaced, in the whole sequence, by another token of the same vocabulary range,
 * and the targets follow. The sequence up to the source position is unchanged.
 */
export function corruptAnswers(
  // biome-ignore lint/suspicious/noExplicitAny: any task, with its own options type
  task: Task<any>,
  // biome-ignore lint/suspicious/noExplicitAny: the options of that task
  taskOptions: any,
  batch: TaskBatch,
  source: { label: string; offset?: number },
  rng: mi.Rng,
): TaskBatch {
  const [B, T] = batch.shape;
  const lab = batch.labels[source.label];
  if (!lab) throw new Error(`corruptAnswers: ${task.name} batches have no label '${source.label}'`);
  const ranges = task.vocabulary(taskOptions);
  const out: TaskBatch = { inputs: batch.inputs.slice(), targets: batch.targets.slice(), labels: batch.labels, shape: [B, T] };
  for (let b = 0; b < B; b++) {
    const swap = new Map<number, number>();
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (batch.targets[i] === IGNORE_INDEX || lab[i] < 0) continue;
      const src = b * T + lab[i] + (source.offset ?? 0);
      const old = batch.inputs[src];
      if (old !== batch.targets[i])
        throw new Error(`corruptAnswers: ${task.name} ${source.label} does not point at the answer (example ${b}, position ${t})`);
      if (!swap.has(old)) {
        const r = ranges.find((e) => e.first <= old && old <= e.last);
        if (!r || r.last === r.first) throw new Error(`corruptAnswers: token ${old} has no vocabulary range with an alternative`);
        let v = rng.int(r.first, r.last);
        if (v >= old) v++;
        swap.set(old, v);
      }
    }
    // the source cells and every later copy of the answer change together (a later trigger's follower in induction)
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (batch.targets[i] !== IGNORE_INDEX && swap.has(batch.targets[i])) out.targets[i] = swap.get(batch.targets[i])!;
      const lbl = batch.targets[i] !== IGNORE_INDEX ? lab[i] : -1;
      if (lbl >= 0) {
        const src = b * T + lbl + (source.offset ?? 0);
        out.inputs[src] = swap.get(batch.inputs[src]) ?? out.inputs[src];
        if (t + 1 < T && batch.inputs[i + 1] === batch.targets[i]) out.inputs[i + 1] = swap.get(batch.targets[i])!;
      }
    }
  }
  return out;
}

/** Where each task's answer is copied from, as a label at the scored positions (plus offset). */
export const ANSWER_SOURCE: Record<string, { label: string; offset?: number }> = {
  induction: { label: 'sourcePos' },
  'selective-copying': { label: 'sourcePos' },
  mqar: { label: 'keyPos', offset: 1 },
  'repeated-tokens': { label: 'sourcePos' },
};

/**
 * An effect next to its controls (interp/controls.ts ControlTest adds the control distribution and
 * its floor): the circuit's estimate and interval, the controls' mean and spread, circuit minus
 * control with its interval, and the p-value.
 */
export interface Comparison {
  estimate: number;
  interval: [number, number];
  control: number;
  controlInterval: [number, number];
  /** circuit minus control */
  difference: number;
  differenceInterval: [number, number];
  p: number;
}

/**
 * The real patching effect of each coordinate alone: the mean over examples of the logit
 * difference gained when only that coordinate's clean values are patched into the corrupted run at
 * the mask's cells (what attributionPatching predicts to first order). One forward per coordinate.
 */
export async function patchEachCoordinate(
  model: MambaLM,
  corruptIds: Tensor,
  set: EvalSet,
  cleanLd: Float64Array,
  corruptLd: Float64Array,
  hook: string,
  mask: Uint8Array,
  cleanAct: Tensor,
  coordinates: readonly number[],
): Promise<Float64Array> {
  const effects = await patchCleanMany(
    model,
    corruptIds,
    set,
    cleanLd,
    corruptLd,
    coordinates.map((c) => ({ hook, channels: [c] })),
    mask,
    cleanAct,
  );
  const out = Float64Array.from(effects, (e) => mean(e.gained));
  return out;
}

/**
 * Tokens per stacked forward when several sites share one (outcomeMany); 0: one site per forward.
 * Off by default: on the CPU backend stacking 8 sites (64 x 64 tokens each, hidden 64) measured no
 * gain (390 vs 227 ms per site at the residual, 2047 vs 559 ms at hook_h, on a loaded 2-core
 * machine), and a forward keeps all its activations until its scope ends (65536 tokens exhausted
 * the 4 GiB heap).
 */
export const STACK_TOKENS = 0;

/** The set repeated n times along the batch (block k: examples k*B..k*B+B-1). */
function stackSet(set: EvalSet, n: number): EvalSet {
  const [B, T] = set.batch.shape;
  const tile = (a: Int32Array) => {
    const out = new Int32Array(a.length * n);
    for (let k = 0; k < n; k++) out.set(a, k * a.length);
    return out;
  };
  const S = set.rows.length;
  const shifted = (a: Int32Array, step: number) => {
    const out = new Int32Array(S * n);
    for (let k = 0; k < n; k++) for (let i = 0; i < S; i++) out[k * S + i] = a[i] + k * step;
    return out;
  };
  return {
    batch: {
      inputs: tile(set.batch.inputs),
      targets: tile(set.batch.targets),
      labels: Object.fromEntries(Object.entries(set.batch.labels).map(([k, v]) => [k, tile(v)])),
      shape: [n * B, T],
    },
    rows: shifted(set.rows, B * T),
    example: shifted(set.example, B),
    answer: tile(set.answer),
    ...(set.alt ? { alt: tile(set.alt) } : {}),
  };
}

/**
 * The last layer's residual output is followed only by the final norm and the LM head
 * (mamba/model.ts runEmbeds), so an edit there needs no new forward through the layers: the run's
 * activation there is cached once and each site's edit goes through the tail alone, the same
 * arithmetic as the hooked forward (four of a model's six circuits sit there; step 6 ranks each
 * among 100 controls). The test checks it against the full forward.
 */
export function isLastResidual(model: MambaLM, hook: string): boolean {
  return hook === `blocks.${model.config.num_hidden_layers - 1}.hook_resid_post`;
}

/** Logits from the last layer's residual output [batch,T,d]: final RMSNorm then the LM head. */
export function logitsFromLastResidual(model: MambaLM, resid: Tensor): Tensor {
  return mi.linear(mi.rmsNorm(resid, model.p('backbone.norm_f.weight'), model.config.layer_norm_epsilon), model.lmHead());
}

/** outcomeMany's sites at the last residual: one forward for the activation, then the tail per site. */
async function outcomeManyAtLastResidual(
  model: MambaLM,
  ids: Tensor,
  set: EvalSet,
  sites: readonly Site[],
  mask: Uint8Array,
  edit: Edit,
): Promise<Outcome[]> {
  const hook = sites[0].hook;
  const base = cacheActivations(model, ids, [hook]).get(hook)!;
  const layer = model.config.num_hidden_layers - 1;
  try {
    const out: Outcome[] = [];
    for (const s of sites) {
      const logits = await mi.tidyAsync(() =>
        mi.noGrad(() => {
          let r = base;
          for (const h of siteHooks(model, s, mask, set.batch.shape, edit)) r = h.fn(r, { name: h.name, layer, offset: 0 }) ?? r;
          return scoredLogits(model, logitsFromLastResidual(model, r), set);
        }),
      );
      out.push(scoreLogits(model, logits, set));
    }
    return out;
  } finally {
    base.dispose();
  }
}

/**
 * The outcome of the run on `ids` under each site's edit, several channel sites per forward
 * (stacked along the batch, at most STACK_TOKENS tokens a forward; subspace sites one by one), or
 * at the last residual output through the model's tail alone (outcomeManyAtLastResidual). Equal to outcome(model, ids, set, siteHooks(model, site, ...)) per site.
 */
export async function outcomeMany(
  model: MambaLM,
  ids: Tensor,
  set: EvalSet,
  sites: readonly Site[],
  mask: Uint8Array,
  edit: Edit,
  maxTokens = STACK_TOKENS,
): Promise<Outcome[]> {
  if (sites.length && sites.every((s) => s.hook === sites[0].hook) && isLastResidual(model, sites[0].hook))
    return outcomeManyAtLastResidual(model, ids, set, sites, mask, edit);
  const [B, T] = set.batch.shape;
  const out: Outcome[] = new Array(sites.length);
  const stackable = sites.map((s, i) => ({ s, i })).filter(({ s }) => !s.directions?.length && edit.kind !== 'offset');
  for (const { s, i } of sites.map((s, i) => ({ s, i })).filter(({ s }) => s.directions?.length || edit.kind === 'offset'))
    out[i] = await mi.tidyAsync(() => outcome(model, ids, set, siteHooks(model, s, mask, set.batch.shape, edit)));
  const chunk = Math.max(1, Math.floor(maxTokens / (B * T)));
  const inputs = (await ids.data()) as Int32Array;
  for (let from = 0; from < stackable.length; from += chunk) {
    const group = stackable.slice(from, from + chunk);
    const n = group.length;
    const stacked = stackSet(set, n);
    const tiled = new Int32Array(n * B * T);
    for (let k = 0; k < n; k++) tiled.set(inputs, k * B * T);
    const o = await mi.tidyAsync(() => {
      const sIds = mi.tensor(tiled, [n * B, T], { dtype: 'int32', backend: model.backend });
      return outcome(
        model,
        sIds,
        stacked,
        stackedSiteHooks(
          model,
          group.map((g) => g.s),
          mask,
          set.batch.shape,
          edit,
        ),
      );
    });
    group.forEach(({ i }, k) => {
      const part = (a: Float64Array) => a.slice(k * B, (k + 1) * B);
      out[i] = { accuracy: part(o.accuracy), loss: part(o.loss), ...(o.logitDiff ? { logitDiff: part(o.logitDiff) } : {}) };
    });
  }
  return out;
}

/** ablate() for many sites (outcomeMany). */
export async function ablateMany(
  model: MambaLM,
  ids: Tensor,
  set: EvalSet,
  base: Outcome,
  sites: readonly Site[],
  mask: Uint8Array,
  edit: Edit,
): Promise<NecessityEffect[]> {
  return (await outcomeMany(model, ids, set, sites, mask, edit)).map((o) => ({
    accuracyDrop: base.accuracy.map((a, i) => a - o.accuracy[i]),
    lossIncrease: o.loss.map((l, i) => l - base.loss[i]),
  }));
}

/** patchClean() for many sites (outcomeMany). */
export async function patchCleanMany(
  model: MambaLM,
  corruptIds: Tensor,
  set: EvalSet,
  cleanLd: Float64Array,
  corruptLd: Float64Array,
  sites: readonly Site[],
  mask: Uint8Array,
  cleanAct: Tensor,
): Promise<SufficiencyEffect[]> {
  if (!set.alt) throw new Error('patchCleanMany: the set needs the corrupted answers as alternatives (evalSet(clean, corrupted))');
  const gap = cleanLd.map((v, i) => v - corruptLd[i]);
  return (await outcomeMany(model, corruptIds, set, sites, mask, { kind: 'activations', value: cleanAct })).map((o) => ({
    gained: o.logitDiff!.map((v, i) => v - corruptLd[i]),
    gap,
  }));
}
