// Measuring and reading a trained SAE: reconstruction metrics (L0, FVU, dead latents), latents
// over a data set, correlation with per-token task variables, top-activating examples, matching
// decoder directions to known directions, and a hook that splices the SAE into a model.
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { Sae } from './sae.ts';

/** Activations as a flat row-major Float32Array [n, d] (d = sae.d) or a tensor [..., d]. */
export type ActivationRows = Float32Array | Tensor;

async function rowsOf(acts: ActivationRows, d: number, who: string): Promise<Float32Array> {
  const data = acts instanceof Float32Array ? acts : Float32Array.from(await acts.data());
  if (!(acts instanceof Float32Array) && acts.shape[acts.rank - 1] !== d) {
    throw new Error(`${who}: activations of shape [${acts.shape}] do not end in the SAE width ${d}`);
  }
  if (data.length % d !== 0) throw new Error(`${who}: ${data.length} values are not rows of width ${d}`);
  return data;
}

/** Runs f over the rows in batches, each as a tensor [rows, d]; f's result is read back. */
async function mapBatches(sae: Sae, data: Float32Array, d: number, batchSize: number, f: (x: Tensor) => Tensor): Promise<Float32Array[]> {
  const backend = sae.params.W_enc.backend;
  const out: Float32Array[] = [];
  for (let start = 0; start < data.length; start += batchSize * d) {
    const chunk = data.subarray(start, Math.min(data.length, start + batchSize * d));
    out.push(
      await mi.tidyAsync(async () => {
        const y = mi.noGrad(() => f(mi.tensor(chunk, [chunk.length / d, d], { backend })));
        return Float32Array.from(await y.data());
      }),
    );
  }
  return out;
}

/** Latent activations of every row: Float32Array [n, latents]. */
export async function encodeAll(sae: Sae, acts: ActivationRows, batchSize = 1024): Promise<Float32Array> {
  const data = await rowsOf(acts, sae.d, 'encodeAll');
  const parts = await mapBatches(sae, data, sae.d, batchSize, (x) => sae.encode(x));
  const z = new Float32Array((data.length / sae.d) * sae.latents);
  let o = 0;
  for (const p of parts) {
    z.set(p, o);
    o += p.length;
  }
  return z;
}

export interface SaeMetrics {
  /** mean number of active latents per row */
  l0: number;
  /** fraction of variance unexplained: sum ||x - x̂||² / sum ||x - mean(x)||² (raw units), mean(x) over these rows */
  fvu: number;
  /** 1 - fvu (SAELens' explained_variance, pooled over the rows and channels) */
  explainedVariance: number;
  /** mean ||x - x̂||² per row (raw units) */
  mse: number;
  /** fraction of latents that fired on no row of this data */
  deadFraction: number;
  /** per latent, the fraction of rows it fired on */
  firingRate: Float64Array;
}

/** Reconstruction and sparsity metrics of the SAE on a data set. */
export async function saeMetrics(sae: Sae, acts: ActivationRows, batchSize = 1024): Promise<SaeMetrics> {
  const { d, latents } = sae;
  const data = await rowsOf(acts, d, 'saeMetrics');
  const n = data.length / d;
  if (n === 0) throw new Error('saeMetrics: no rows');
  const z = await encodeAll(sae, data, batchSize);
  const recon = await mapBatches(sae, data, d, batchSize, (x) => sae.forward(x));
  const flat = new Float32Array(data.length);
  let o = 0;
  for (const part of recon) {
    flat.set(part, o);
    o += part.length;
  }
  const r = reconstructionMetrics(data, flat, d);
  const fired = new Float64Array(latents);
  let active = 0;
  for (let i = 0; i < z.length; i++)
    if (z[i] > 0) {
      fired[i % latents]++;
      active++;
    }
  let dead = 0;
  for (let l = 0; l < latents; l++) {
    if (fired[l] === 0) dead++;
    fired[l] /= n;
  }
  return {
    l0: active / n,
    ...r,
    deadFraction: dead / latents,
    firingRate: fired,
  };
}

/** FVU, explained variance and MSE of any reconstruction `recon` of rows `data` [n, d] (an SAE's, PCA's). */
export function reconstructionMetrics(
  data: Float32Array,
  recon: Float32Array,
  d: number,
): { fvu: number; explainedVariance: number; mse: number } {
  if (recon.length !== data.length) throw new Error(`reconstructionMetrics: ${recon.length} reconstructed values for ${data.length}`);
  const n = data.length / d;
  const mean = new Float64Array(d);
  for (let i = 0; i < data.length; i++) mean[i % d] += data[i] / n;
  let errSq = 0,
    varSq = 0;
  for (let i = 0; i < data.length; i++) {
    errSq += (data[i] - recon[i]) ** 2;
    varSq += (data[i] - mean[i % d]) ** 2;
  }
  const fvu = varSq > 0 ? errSq / varSq : errSq > 0 ? Infinity : 0;
  return { fvu, explainedVariance: 1 - fvu, mse: errSq / n };
}

/**
 * SAELens' feature density: per latent, log10 of the fraction of rows it fires on, plus 1e-10 so
 * that a dead latent sits at -10 rather than -Infinity; and its histogram in bins of `width`
 * decades from -10 to 0 (the last bin includes 0). Latents firing on about every token (density
 * near 1) or never are the usual pathologies.
 */
export function featureDensity(
  firingRate: ArrayLike<number>,
  width = 0.5,
): { log10: Float64Array; bins: { lo: number; hi: number; count: number }[] } {
  const log10 = Float64Array.from(firingRate, (f) => Math.log10(f + 1e-10));
  const nBins = Math.round(10 / width);
  const bins = Array.from({ length: nBins }, (_, i) => ({ lo: -10 + i * width, hi: -10 + (i + 1) * width, count: 0 }));
  for (const v of log10) bins[Math.min(nBins - 1, Math.max(0, Math.floor((v + 10) / width)))].count++;
  return { log10, bins };
}

/**
 * Pearson correlation of each latent (columns of z [n, latents]) with a per-row task variable
 * (a label, a probe target, a 0/1 indicator). A latent or label that is constant gives 0.
 */
export function latentCorrelations(z: Float32Array, latents: number, labels: ArrayLike<number>): Float64Array {
  const n = labels.length;
  if (z.length !== n * latents)
    throw new Error(`latentCorrelations: ${z.length} latent values are not ${n} rows (labels) x ${latents} latents`);
  let ly = 0;
  for (let r = 0; r < n; r++) ly += labels[r];
  ly /= n;
  const mz = new Float64Array(latents),
    sxy = new Float64Array(latents),
    sxx = new Float64Array(latents);
  for (let i = 0; i < z.length; i++) mz[i % latents] += z[i] / n;
  let syy = 0;
  for (let r = 0; r < n; r++) {
    const dy = labels[r] - ly;
    syy += dy * dy;
    for (let l = 0; l < latents; l++) {
      const dx = z[r * latents + l] - mz[l];
      sxy[l] += dx * dy;
      sxx[l] += dx * dx;
    }
  }
  return Float64Array.from(sxy, (s, l) => (sxx[l] > 0 && syy > 0 ? s / Math.sqrt(sxx[l] * syy) : 0));
}

/** The latents ordered by |correlation| with the labels, strongest first (at most `count`). */
export function topCorrelatedLatents(
  z: Float32Array,
  latents: number,
  labels: ArrayLike<number>,
  count = 10,
): { latent: number; r: number }[] {
  const r = latentCorrelations(z, latents, labels);
  return Array.from(r, (v, latent) => ({ latent, r: v }))
    .sort((a, b) => Math.abs(b.r) - Math.abs(a.r) || a.latent - b.latent)
    .slice(0, count);
}

/** Rows where `latent` is most active (activation > 0), strongest first; ties by lower row index. */
export function topActivating(z: Float32Array, latents: number, latent: number, count = 10): { indices: number[]; values: number[] } {
  if (!(latent >= 0 && latent < latents)) throw new Error(`topActivating: latent ${latent} out of range [0, ${latents})`);
  const hits: [number, number][] = [];
  for (let r = 0, n = z.length / latents; r < n; r++) {
    const v = z[r * latents + latent];
    if (v > 0) hits.push([r, v]);
  }
  hits.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const top = hits.slice(0, count);
  return { indices: top.map((h) => h[0]), values: top.map((h) => h[1]) };
}

/** The decoder directions (rows of W_dec) as unit vectors, Float32Array [latents, d]. */
export async function decoderDirections(sae: Sae): Promise<Float32Array> {
  const w = Float32Array.from(await sae.params.W_dec.data());
  const { d } = sae;
  for (let l = 0; l < sae.latents; l++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += w[l * d + j] ** 2;
    const norm = Math.sqrt(s) || 1;
    for (let j = 0; j < d; j++) w[l * d + j] /= norm;
  }
  return w;
}

/**
 * For each known direction (rows of `directions` [count, d]), the latent whose decoder direction
 * has the highest cosine similarity with it, and that cosine. Used to check that an SAE found
 * planted features, or to compare two SAEs' dictionaries.
 */
export async function matchDirections(sae: Sae, directions: Float32Array): Promise<{ latent: number; cosine: number }[]> {
  const { d, latents } = sae;
  if (directions.length % d !== 0) throw new Error(`matchDirections: ${directions.length} values are not rows of width ${d}`);
  const w = await decoderDirections(sae);
  const out: { latent: number; cosine: number }[] = [];
  for (let f = 0; f < directions.length / d; f++) {
    let norm = 0;
    for (let j = 0; j < d; j++) norm += directions[f * d + j] ** 2;
    norm = Math.sqrt(norm) || 1;
    let best = { latent: -1, cosine: -Infinity };
    for (let l = 0; l < latents; l++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += w[l * d + j] * directions[f * d + j];
      if (dot / norm > best.cosine) best = { latent: l, cosine: dot / norm };
    }
    out.push(best);
  }
  return out;
}

/**
 * A hook for a model's activation [..., d] that replaces it with the SAE's reconstruction, for
 * "loss recovered" measurements. With addError the SAE's error x - x̂ is added back (so the output
 * equals x, but gradients and interventions flow through the latents): a sanity check for hooks.
 */
export function spliceHook(sae: Sae, opts: { addError?: boolean } = {}): (t: Tensor) => Tensor {
  return (t) => {
    const recon = sae.forward(t);
    if (!opts.addError) return recon;
    const error = mi.noGrad(() => mi.sub(t, recon));
    return mi.add(recon, error);
  };
}

/**
 * SAELens' kl_div_score: (KL_ablated - KL_spliced) / KL_ablated, with each KL the divergence of
 * the model's next-token distribution from the clean one (KL(clean || condition)). 1 = the SAE
 * changes no prediction, 0 = as bad as ablating the hook.
 */
export function klDivScore({ spliced, ablated }: { spliced: number; ablated: number }): number {
  if (!(ablated > 0)) throw new Error(`klDivScore: the ablated KL is ${ablated}; the score needs it above 0`);
  return (ablated - spliced) / ablated;
}

/**
 * Fraction of the loss gap closed by the SAE: (ablated - spliced) / (ablated - clean), with clean
 * the model's own loss, spliced the loss with the SAE reconstruction spliced in, and ablated the
 * loss with the activation zero- or mean-ablated. 1 = perfect, 0 = no better than ablation.
 */
export function lossRecovered({ clean, spliced, ablated }: { clean: number; spliced: number; ablated: number }): number {
  if (ablated === clean) throw new Error(`lossRecovered: ablated loss equals clean loss (${clean}); the gap is zero`);
  return (ablated - spliced) / (ablated - clean);
}

/** SAELens' ce_loss_score: lossRecovered under its name (zero- or mean-ablation, as the caller's `ablated` says). */
export const ceLossScore = lossRecovered;
