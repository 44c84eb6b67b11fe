// Logit lens and direct logit attribution (DLA) for Mamba, as TransformerLens's
// accumulated_resid / apply_ln_to_stack / logit_attrs define them for transformers.
//
// The residual stream after layer i is resid_i = embed + sum_{j<=i} mixer_j (mamba/model.ts), and the
// logits are RMSNorm_f(resid_last) @ W_U^T. The lens reads every resid_i through the same final norm
// and unembedding. RMSNorm(x) = x * s(x) * w with s(x) = 1 / sqrt(mean(x^2) + eps); its scale is
//  - 'recompute': s of each resid_i itself (nostalgebraist's logit lens: each layer read as if it
//    were the last), or
//  - 'frozen': s of the clean run's final residual at that cell (TransformerLens's
//    apply_ln_to_stack uses the cached ln_final scale this way).
// The last layer gives the model's logits either way. DLA always freezes the scale: then the
// logits are linear in the residual, so the logit difference splits exactly into the embedding's
// part plus one part per mixer (Mamba's head has no bias, and a block writes to the residual only
// through its mixer, so per-layer and per-mixer attribution are the same thing here).
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { IdsLike, MambaLM } from '../mamba/model.ts';

export type NormScale = 'recompute' | 'frozen';

/** A logit difference per example: logit(a) - logit(b) at a position (a number applies to every example). */
export interface LogitDiff {
  position: number | readonly number[];
  a: number | readonly number[];
  b: number | readonly number[];
}

/** The logit difference spelled out per example and checked against the batch. */
export interface ResolvedLogitDiff {
  position: Int32Array;
  a: Int32Array;
  b: Int32Array;
}

export function resolveLogitDiff(model: MambaLM, diff: LogitDiff, batch: number, T: number): ResolvedLogitDiff {
  const V = model.config.vocab_size;
  const spell = (v: number | readonly number[], what: string, limit: number) => {
    const arr = typeof v === 'number' ? new Array<number>(batch).fill(v) : [...v];
    if (arr.length !== batch) throw new Error(`logit difference: ${what} has ${arr.length} entries for ${batch} examples`);
    for (const x of arr)
      if (!Number.isInteger(x) || x < 0 || x >= limit) throw new Error(`logit difference: ${what} ${x} is outside [0, ${limit})`);
    return Int32Array.from(arr);
  };
  return { position: spell(diff.position, 'position', T), a: spell(diff.a, 'token a', V), b: spell(diff.b, 'token b', V) };
}

/** Per example, logit(a) - logit(b) at its position, read from logits [batch,T,V]. */
export async function logitDiffOf(model: MambaLM, logits: Tensor, diff: LogitDiff): Promise<Float64Array> {
  const [B, T, V] = logits.shape;
  const d = resolveLogitDiff(model, diff, B, T);
  const rows = mi.tidy(() =>
    mi.keep(
      mi.indexSelect(
        mi.reshape(logits, [B * T, V]),
        0,
        mi.tensor(
          Int32Array.from(d.position, (p, e) => e * T + p),
          [B],
          { dtype: 'int32', backend: logits.backend },
        ),
      ),
    ),
  );
  const data = await rows.data();
  rows.dispose();
  return Float64Array.from({ length: B }, (_, e) => data[e * V + d.a[e]] - data[e * V + d.b[e]]);
}

export interface AccumulatedResidual {
  /** hook names: hook_embed, then blocks.i.hook_resid_post for each layer */
  labels: string[];
  /** per label [batch,T,d]: the residual, normed (scale and weight of norm_f) when applyLn */
  resid: Tensor[];
  /** per label [batch,T,V]: resid @ W_U^T */
  logits: Tensor[];
}

/**
 * The residual stream after the embeddings and after each layer, through the final RMSNorm (when
 * applyLn, default true; scale 'recompute' by default, see the header) and the unembedding. The
 * tensors are kept out of tidy scopes: the caller disposes them (disposeLens).
 */
export function accumulatedResidual(
  model: MambaLM,
  ids: IdsLike,
  opts: { applyLn?: boolean; scale?: NormScale } = {},
): AccumulatedResidual {
  const { applyLn = true, scale = 'recompute' } = opts;
  if (scale !== 'recompute' && scale !== 'frozen')
    throw new Error(`accumulatedResidual: scale must be 'recompute' or 'frozen', got '${scale}'`);
  const L = model.config.num_hidden_layers;
  const labels = ['hook_embed', ...Array.from({ length: L }, (_, i) => `blocks.${i}.hook_resid_post`)];
  const eps = model.config.layer_norm_epsilon;
  const w = model.p('backbone.norm_f.weight');
  return mi.tidy(() =>
    mi.noGrad(() => {
      const { cache } = model.run(ids, { cache: labels });
      const raw = labels.map((n) => cache.get(n)!);
      const frozen = finalScale(raw[L], eps);
      const resid = raw.map((r) => {
        if (!applyLn) return r;
        return scale === 'recompute' ? mi.rmsNorm(r, w, eps) : mi.mul(mi.mul(r, frozen), w);
      });
      const logits = resid.map((r) => mi.linear(r, model.lmHead()));
      return { labels, resid: resid.map((t) => mi.keep(t)), logits: logits.map((t) => mi.keep(t)) };
    }),
  );
}

export function disposeLens(lens: AccumulatedResidual): void {
  for (const t of [...lens.resid, ...lens.logits]) t.dispose();
}

/** RMSNorm's scale 1 / sqrt(mean(x^2) + eps) per cell [batch,T,1]. */
function finalScale(resid: Tensor, eps: number): Tensor {
  return mi.rsqrt(mi.add(mi.mean(mi.square(resid), -1, true), eps));
}

/** The logit difference per layer of the lens, per example ([label][example]). */
export async function lensLogitDiff(
  model: MambaLM,
  ids: IdsLike,
  diff: LogitDiff,
  scale: NormScale = 'recompute',
): Promise<Float64Array[]> {
  const lens = accumulatedResidual(model, ids, { scale });
  try {
    const out: Float64Array[] = [];
    for (const l of lens.logits) out.push(await logitDiffOf(model, l, diff));
    return out;
  } finally {
    disposeLens(lens);
  }
}

export interface DirectLogitAttribution {
  /** 'hook_embed', then blocks.i.hook_mixer_out */
  labels: string[];
  /** per label, per example: its part of the logit difference (final norm's scale frozen at this run's) */
  perExample: Float64Array[];
  /** per label: the mean over examples */
  mean: number[];
  /** per example: the model's own logit difference, which the parts sum to */
  logitDiff: Float64Array;
}

/**
 * Direct logit attribution of logit(a) - logit(b): per example, component c's part is
 *     s * (c[position] . (w * (W_U[a] - W_U[b])))
 * with s the final norm's scale on this run's final residual at that cell (frozen; see the header).
 * The parts of the embedding and of every mixer sum to the logit difference.
 */
export async function directLogitAttribution(model: MambaLM, ids: IdsLike, diff: LogitDiff): Promise<DirectLogitAttribution> {
  const L = model.config.num_hidden_layers;
  const labels = ['hook_embed', ...Array.from({ length: L }, (_, i) => `blocks.${i}.hook_mixer_out`)];
  const finalName = L ? `blocks.${L - 1}.hook_resid_post` : 'hook_embed';
  const idt = model.ids(ids);
  const [B, T] = idt.shape;
  const d = resolveLogitDiff(model, diff, B, T);
  const D = model.config.hidden_size;
  const { logits, acts } = mi.tidy(() =>
    mi.noGrad(() => {
      const r = model.run(idt, { cache: [...new Set([...labels, finalName])] });
      return { logits: mi.keep(r.logits), acts: new Map([...r.cache].map(([k, v]) => [k, mi.keep(v)])) };
    }),
  );
  try {
    const logitDiff = await logitDiffOf(model, logits, diff);
    const [wU, wF, fin] = await Promise.all([model.lmHead().data(), model.p('backbone.norm_f.weight').data(), acts.get(finalName)!.data()]);
    const eps = model.config.layer_norm_epsilon;
    // per example: the frozen scale times the normed logit-difference direction, s * w * (W_U[a] - W_U[b])
    const dir = new Float64Array(B * D);
    for (let e = 0; e < B; e++) {
      const o = (e * T + d.position[e]) * D;
      let ms = 0;
      for (let j = 0; j < D; j++) ms += fin[o + j] ** 2 / D;
      const s = 1 / Math.sqrt(ms + eps);
      for (let j = 0; j < D; j++) dir[e * D + j] = s * wF[j] * (wU[d.a[e] * D + j] - wU[d.b[e] * D + j]);
    }
    const perExample: Float64Array[] = [];
    for (const name of labels) {
      const a = await acts.get(name)!.data();
      perExample.push(
        Float64Array.from({ length: B }, (_, e) => {
          const o = (e * T + d.position[e]) * D;
          let v = 0;
          for (let j = 0; j < D; j++) v += a[o + j] * dir[e * D + j];
          return v;
        }),
      );
    }
    return { labels, perExample, mean: perExample.map((p) => p.reduce((s, v) => s + v, 0) / B), logitDiff };
  } finally {
    logits.dispose();
    for (const t of acts.values()) t.dispose();
    if (!(ids instanceof mi.Tensor) || idt !== ids) idt.dispose();
  }
}
