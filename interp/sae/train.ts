// Training loop for interp/sae.ts: AdamW on mini-batches drawn without replacement (reshuffled
// each epoch), decoder rows held at unit norm, dead-latent tracking, and per architecture one
// remedy for dead latents: AuxK for 'topk', periodic resampling for 'relu'.
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fusedByDefault, Sae, SAE_PARAM_NAMES, scatterRows, type SaeKind, type SaeLogEntry, type SaeParams } from './sae.ts';

export interface TrainSaeOptions {
  kind: SaeKind;
  latents: number;
  /** width of each row; required when activations are a flat Float32Array */
  d?: number;
  /** topk: latents kept per token */
  k?: number;
  /**
   * relu: L1 coefficient on sum(z) per token, in normalised units where E[||x||²] = d (default 1,
   * tuned on the planted-feature test at d = 16; Anthropic's April 2024 update used 5 at this scale)
   */
  l1?: number;
  /** relu: the L1 coefficient ramps linearly from 0 over this fraction of the steps (default 0.05) */
  l1Warmup?: number;
  /** AdamW learning rate (default 1e-3); decays linearly to 0 over the last 20% of the steps */
  lr?: number;
  steps: number;
  batchSize?: number;
  seed?: number | string;
  /** a latent is dead when it has not fired in this many training tokens (default min(n, 100000)) */
  deadWindow?: number;
  /** topk: how many dead latents AuxK may use per token (default max(2k, d/2), at most the dead count) */
  auxK?: number;
  /**
   * topk: weight of the AuxK loss relative to the main loss as a normalised MSE (default 1/32, as in
   * Gao et al.). The main loss here is ||x - x̂||² per token with E||x||² = d, d times Gao et al.'s
   * normalised MSE, so the AuxK term (itself normalised) enters as auxCoef * d * AuxK
   */
  auxCoef?: number;
  /** relu: resample dead latents every this many steps (default steps/8; 0 turns it off) */
  resampleEvery?: number;
  /** relu: no resampling at or after this step (default 60% of the steps), so training can settle */
  resampleUntil?: number;
  onProgress?: (p: SaeProgress) => void;
  /** where the parameters live and the steps run (default: the current backend) */
  backend?: mi.Backend;
  /**
   * run each step as one fused op (mi.sparseAutoencoder) rather than composed ops; the same maths
   * either way (default: fusedByDefault(kind, backend): TopK always, ReLU off the CPU)
   */
  fused?: boolean;
}

export interface SaeProgress extends SaeLogEntry {
  steps: number;
  /** latents resampled at this step (relu) */
  resampled: number;
}

interface Rows {
  data: Float32Array;
  n: number;
  d: number;
}

async function toRows(acts: Float32Array | Tensor, d: number | undefined): Promise<Rows> {
  if (acts instanceof Float32Array) {
    if (!d || !Number.isInteger(d) || acts.length % d !== 0) {
      throw new Error(`trainSae: a Float32Array of ${acts.length} values needs options.d dividing it (got d=${d})`);
    }
    return { data: acts, n: acts.length / d, d };
  }
  if (acts.rank < 2) throw new Error(`trainSae: activations of shape [${acts.shape}] are not [n, d]`);
  const width = acts.shape[acts.rank - 1];
  if (d !== undefined && d !== width) throw new Error(`trainSae: options.d=${d} but activations have width ${width}`);
  return { data: Float32Array.from(await acts.data()), n: acts.size / width, d: width };
}

/** Trains a sparse autoencoder on activations [n, d]; deterministic for a given seed. */
export async function trainSae(activations: Float32Array | Tensor, opts: TrainSaeOptions): Promise<Sae> {
  const { kind, latents, steps } = opts;
  const { data, n, d } = await toRows(activations, opts.d);
  if (kind !== 'relu' && kind !== 'topk') throw new Error(`trainSae: unknown kind '${kind}' (expected relu or topk)`);
  if (!Number.isInteger(latents) || latents < 1) throw new Error(`trainSae: latents must be a positive integer, got ${latents}`);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`trainSae: steps must be a positive integer, got ${steps}`);
  if (n < 1) throw new Error('trainSae: no activations');
  const batchSize = Math.min(opts.batchSize ?? 256, n);
  const rng = new mi.Rng(opts.seed ?? 0);
  const backend = opts.backend ?? mi.getBackend();

  const { xs, scale, mean } = normalise(data, n, d);
  const sae = new Sae({ kind, d, latents, k: opts.k, inputScale: scale }, initParams(d, latents, mean, rng.fork('init'), backend));
  sae.deadWindow = opts.deadWindow ?? Math.min(n, 100_000);
  const { params } = sae;
  const list = SAE_PARAM_NAMES.map((name) => params[name]);
  for (const p of list) p.requiresGrad = true;
  const opt = new mi.AdamW(list, { lr: opts.lr ?? 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });

  const l1 = opts.l1 ?? 1;
  if (!(l1 >= 0)) throw new Error(`trainSae: l1 must be >= 0, got ${l1}`);
  const warmupSteps = Math.max(1, Math.round((opts.l1Warmup ?? 0.05) * steps));
  const auxK = opts.auxK ?? Math.min(latents, Math.max(2 * (opts.k ?? 1), Math.ceil(d / 2)));
  const auxCoef = opts.auxCoef ?? 1 / 32;
  const resampleEvery = opts.resampleEvery ?? Math.max(1, Math.floor(steps / 8));
  const resampleUntil = opts.resampleUntil ?? Math.floor(0.6 * steps);
  const batches = new BatchSampler(n, batchSize, rng.fork('batches'));
  const resampleRng = rng.fork('resample');
  const fused = opts.fused ?? fusedByDefault(kind, backend);

  const baseLr = opt.lr;
  const decayFrom = Math.floor(0.8 * steps);
  try {
    for (let step = 0; step < steps; step++) {
      opt.lr = step < decayFrom ? baseLr : (baseLr * (steps - step)) / (steps - decayFrom);
      const rows = batches.next();
      const xb = mi.tensor(gatherRows(xs, rows, d), [rows.length, d], { backend });
      const dead = deadMask(sae, backend);
      const penalty: Penalty =
        kind === 'relu'
          ? { kind: 'l1', coef: l1 * Math.min(1, (step + 1) / warmupSteps) }
          : // auxCoef * d: the same weight against the main loss as in Gao et al. (see TrainSaeOptions.auxCoef);
            // at auxCoef alone AuxK was d times weaker and revived no dead latents in 400 steps
            { kind: 'auxk', coef: auxCoef * d, dead: dead.mask, kAux: Math.min(auxK, dead.count) };
      const { grads, stats } = mi.tidy(() => (fused ? fusedLossAndGrads : lossAndGrads)(sae, xb, penalty));
      opt.step(grads);
      normaliseRows(params.W_dec);
      const [loss, mse, pen, fired] = await Promise.all(stats.map((t) => t.data()));
      for (const t of [...grads, ...stats, xb, dead.mask]) t.dispose();

      let l0 = 0;
      for (let i = 0; i < latents; i++) {
        l0 += fired[i];
        sae.tokensSinceFired[i] = fired[i] > 0 ? 0 : sae.tokensSinceFired[i] + rows.length;
      }
      let resampled = 0;
      if (kind === 'relu' && resampleEvery > 0 && (step + 1) % resampleEvery === 0 && step + 1 < resampleUntil) {
        resampled = await resampleDead(sae, xs, n, resampleRng, opt);
      }
      const entry: SaeLogEntry = {
        step,
        loss: loss[0],
        mse: mse[0],
        penalty: pen[0],
        l0: l0 / rows.length,
        deadFraction: deadIndices(sae).length / latents,
      };
      sae.history.push(entry);
      opts.onProgress?.({ ...entry, steps, resampled });
    }
  } catch (e) {
    sae.dispose();
    throw e;
  } finally {
    opt.dispose();
    for (const p of list) p.requiresGrad = false;
  }
  return sae;
}

/**
 * The random-init baseline: a TopK SAE of `latents` latents on training rows [n, d], initialised
 * exactly as trainSae initialises one (tied random unit directions, b_dec the data mean, the same
 * input scaling) and never trained. Its k sets its L0, so it can be matched to a trained SAE's.
 */
export async function untrainedSae(
  activations: Float32Array | Tensor,
  opts: { latents: number; k: number; d?: number; seed?: number | string; backend?: mi.Backend },
): Promise<Sae> {
  const { data, n, d } = await toRows(activations, opts.d);
  if (n < 1) throw new Error('untrainedSae: no activations');
  const k = Math.max(1, Math.min(opts.latents, Math.round(opts.k)));
  const { scale, mean } = normalise(data, n, d);
  const rng = new mi.Rng(opts.seed ?? 0);
  const params = initParams(d, opts.latents, mean, rng.fork('init'), opts.backend ?? mi.getBackend());
  return new Sae({ kind: 'topk', d, latents: opts.latents, k, inputScale: scale }, params);
}

type Penalty = { kind: 'l1'; coef: number } | { kind: 'auxk'; coef: number; dead: Tensor; kAux: number };

/**
 * One batch: loss = ||x - x̂||² (mean over tokens) + penalty, its gradients (the W_dec one with
 * each row's radial part removed), and the stats read back: [loss, mse, penalty, fired per latent].
 * Composed of plain ops; fusedLossAndGrads is the same by the fused op.
 */
function lossAndGrads(sae: Sae, xb: Tensor, penalty: Penalty): { grads: Tensor[]; stats: Tensor[] } {
  const batch = xb.shape[0];
  const { params } = sae;
  const { pre, z } = sae.encodeNormalised(xb);
  const recon = sae.decodeNormalised(z);
  const mse = mi.div(mi.sum(mi.square(mi.sub(recon, xb))), batch);
  const pen =
    penalty.kind === 'l1'
      ? mi.mul(mi.sum(z), penalty.coef / batch)
      : penalty.kAux > 0
        ? mi.mul(auxKLoss(pre, recon, xb, penalty.dead, penalty.kAux, params.W_dec), penalty.coef)
        : mi.scalar(0, { backend: xb.backend });
  const loss = mi.add(mse, pen);
  return gradsAndStats(sae, loss, [loss, mse, pen], () => mi.sum(mi.gt(z, 0), 0));
}

/**
 * lossAndGrads by one fused op: it gives the per-row losses (with ReLU's L1 term) and TopK's AuxK
 * selection and loss, and its TopK backward touches only the active latents (engine/ops/sae.ts).
 */
function fusedLossAndGrads(sae: Sae, xb: Tensor, penalty: Penalty): { grads: Tensor[]; stats: Tensor[] } {
  const batch = xb.shape[0];
  if (penalty.kind === 'l1') {
    // per-row loss = ||x̂ - x||² + coef * sum(z)
    const out = sae.fused(xb, { l1: penalty.coef });
    const loss = mi.div(mi.sum(out.loss), batch);
    const pen = mi.noGrad(() => mi.mul(mi.sum(out.z!), penalty.coef / batch));
    const mse = mi.noGrad(() => mi.div(mi.sum(mi.square(mi.sub(out.recon, xb))), batch));
    return gradsAndStats(sae, loss, [loss, mse, pen], () => mi.sum(mi.gt(out.z!, 0), 0));
  }
  const out = sae.fused(xb, penalty.kAux > 0 ? { dead: penalty.dead, kAux: penalty.kAux } : {});
  const mse = mi.div(mi.sum(out.loss), batch);
  let pen: Tensor;
  if (penalty.kAux > 0) {
    // AuxK's ||e - ê||² over the batch, normalised by the residual energy ||e||² (a constant)
    const residualEnergy = mi.noGrad(() => mi.maximum(mi.sum(out.loss), 1e-12));
    pen = mi.mul(mi.div(mi.sum(out.auxLoss!), residualEnergy), penalty.coef);
  } else pen = mi.scalar(0, { backend: xb.backend });
  const loss = mi.add(mse, pen);
  const values = out.values!,
    n = values.size;
  const fired = () =>
    mi.reshape(mi.scatterAdd(mi.reshape(mi.gt(values, 0), [n, 1]), mi.reshape(out.indices!, [n]), [sae.latents, 1]), [sae.latents]);
  return gradsAndStats(sae, loss, [loss, mse, pen], fired);
}

/** The parameters' gradients of `loss` (W_dec's without its radial part) and the stats [...scalars, fired per latent]. */
function gradsAndStats(sae: Sae, loss: Tensor, scalars: Tensor[], fired: () => Tensor): { grads: Tensor[]; stats: Tensor[] } {
  const { params } = sae;
  const g = mi.backwardFrom(loss);
  return mi.noGrad(() => {
    const grads = SAE_PARAM_NAMES.map((name) => {
      const grad = g.get(params[name]) ?? mi.zerosLike(params[name]);
      return name === 'W_dec' ? removeRadial(grad, params.W_dec) : grad;
    });
    return { grads, stats: [...scalars, fired()] };
  });
}

/** Scales rows so the mean squared norm is d; returns the scaled copy, the scale and the scaled mean row. */
function normalise(data: Float32Array, n: number, d: number): { xs: Float32Array; scale: number; mean: Float32Array } {
  let sq = 0;
  for (let i = 0; i < data.length; i++) sq += data[i] * data[i];
  const meanSq = sq / n;
  if (!(meanSq > 0) || !Number.isFinite(meanSq))
    throw new Error(`trainSae: activations have mean squared norm ${meanSq}; cannot normalise`);
  const scale = Math.sqrt(d / meanSq);
  const xs = Float32Array.from(data, (v) => v * scale);
  const acc = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) acc[j] += xs[r * d + j];
  return { xs, scale, mean: Float32Array.from(acc, (v) => v / n) };
}

/**
 * Decoder rows: random unit directions; encoder: their transpose (the "tied" initialisation of Gao
 * et al. and Anthropic's later updates, which starts every latent near a useful direction);
 * b_dec: the data mean (a cheap stand-in for the geometric median); b_enc: zero.
 */
function initParams(d: number, latents: number, mean: Float32Array, rng: mi.Rng, backend: mi.Backend): SaeParams {
  const wDec = new Float32Array(latents * d);
  for (let i = 0; i < latents; i++) {
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = rng.normal();
      wDec[i * d + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < d; j++) wDec[i * d + j] /= norm;
  }
  const wEnc = new Float32Array(d * latents);
  for (let i = 0; i < latents; i++) for (let j = 0; j < d; j++) wEnc[j * latents + i] = wDec[i * d + j];
  return {
    W_enc: mi.keep(mi.tensor(wEnc, [d, latents], { backend })),
    b_enc: mi.keep(mi.zeros([latents], { backend })),
    W_dec: mi.keep(mi.tensor(wDec, [latents, d], { backend })),
    b_dec: mi.keep(mi.tensor(Float32Array.from(mean), [d], { backend })),
  };
}

/** Epochs of shuffled row indices, cut into batches (a batch may span the end of an epoch). */
class BatchSampler {
  private order: number[] = [];
  private pos = 0;
  constructor(
    private readonly n: number,
    private readonly size: number,
    private readonly rng: mi.Rng,
  ) {}
  next(): number[] {
    const out: number[] = [];
    while (out.length < this.size) {
      if (this.pos >= this.order.length) {
        this.order = this.rng.permutation(this.n);
        this.pos = 0;
      }
      out.push(this.order[this.pos++]);
    }
    return out;
  }
}

function gatherRows(xs: Float32Array, rows: number[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => out.set(xs.subarray(r * d, r * d + d), i * d));
  return out;
}

function deadIndices(sae: Sae): number[] {
  const dead: number[] = [];
  sae.tokensSinceFired.forEach((t, i) => {
    if (t >= sae.deadWindow) dead.push(i);
  });
  return dead;
}

/** 1 for each dead latent, 0 for the rest, as a tensor [latents]; and how many are dead. */
function deadMask(sae: Sae, backend: mi.Backend): { mask: Tensor; count: number } {
  const m = new Float32Array(sae.latents);
  const dead = deadIndices(sae);
  for (const i of dead) m[i] = 1;
  return { mask: mi.tensor(m, [sae.latents], { backend }), count: dead.length };
}

/**
 * AuxK (Gao et al. 2024): reconstruct the main model's residual e = x - x̂ (a constant target) from
 * the top-kAux pre-activations among dead latents alone, as a normalised MSE ||e - ê||² / ||e||².
 * Its gradient reaches only dead latents, pulling them toward what the live ones miss.
 */
export function auxKLoss(pre: Tensor, recon: Tensor, xb: Tensor, dead: Tensor, kAux: number, W_dec: Tensor): Tensor {
  const residual = mi.noGrad(() => mi.sub(xb, recon));
  const residualEnergy = mi.noGrad(() => mi.maximum(mi.sum(mi.square(residual)), 1e-12));
  const deadPre = mi.where(dead, pre, -1e30);
  const { values, indices } = mi.topk(deadPre, kAux);
  const zAux = scatterRows(mi.relu(values), indices, pre.shape[1]);
  const auxRecon = mi.matmul(zAux, W_dec);
  return mi.div(mi.sum(mi.square(mi.sub(auxRecon, residual))), residualEnergy);
}

/** g minus, for each row, its component along the (unit) decoder row: the step keeps norms at first order. */
function removeRadial(g: Tensor, W_dec: Tensor): Tensor {
  return mi.sub(g, mi.mul(mi.sum(mi.mul(g, W_dec), 1, true), W_dec));
}

function normaliseRows(w: Tensor): void {
  mi.noGrad(() =>
    mi.tidy(() => {
      const norms = mi.sqrt(mi.sum(mi.square(w), 1, true));
      w.assign(mi.div(w, mi.maximum(norms, 1e-12)));
    }),
  );
}

/**
 * Resampling (Anthropic, "Towards Monosemanticity", simplified): each dead latent gets a new
 * decoder direction, the normalised residual x - x̂ of an input drawn with probability proportional
 * to its squared loss² from up to 1024 random training rows; its encoder column is that direction
 * times 0.2 x the mean norm of live encoder columns; its b_enc is 0. Returns how many were resampled.
 * The optimiser's moments for the rewritten entries are zeroed, so stale momentum does not undo them.
 */
async function resampleDead(sae: Sae, xs: Float32Array, n: number, rng: mi.Rng, opt: mi.AdamW): Promise<number> {
  const { d, latents } = sae;
  const dead = deadIndices(sae);
  if (!dead.length) return 0;
  const { W_enc, b_enc, W_dec } = sae.params;
  const rows = rng.sample(n, Math.min(n, 1024));
  const residual = await mi.tidyAsync(async () => {
    const xb = mi.tensor(gatherRows(xs, rows, d), [rows.length, d], { backend: W_enc.backend });
    const recon = mi.noGrad(() => sae.reconstructNormalised(xb));
    return mi.noGrad(() => mi.sub(xb, recon)).data();
  });
  const weights = new Float64Array(rows.length);
  let total = 0;
  for (let r = 0; r < rows.length; r++) {
    let l = 0;
    for (let j = 0; j < d; j++) l += residual[r * d + j] ** 2;
    weights[r] = l * l;
    total += weights[r];
  }
  if (!(total > 0)) return 0;
  const [wEnc, bEnc, wDec] = await Promise.all([W_enc.data(), b_enc.data(), W_dec.data()]);
  const isDead = new Set(dead);
  let aliveNorm = 0;
  for (let i = 0; i < latents; i++) {
    if (isDead.has(i)) continue;
    let s = 0;
    for (let j = 0; j < d; j++) s += wEnc[j * latents + i] ** 2;
    aliveNorm += Math.sqrt(s);
  }
  aliveNorm = latents > dead.length ? aliveNorm / (latents - dead.length) : 1;
  for (const i of dead) {
    let u = rng.uniform() * total,
      r = 0;
    while (r < rows.length - 1 && u >= weights[r]) u -= weights[r++];
    let norm = 0;
    for (let j = 0; j < d; j++) norm += residual[r * d + j] ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let j = 0; j < d; j++) {
      const v = residual[r * d + j] / norm;
      wDec[i * d + j] = v;
      wEnc[j * latents + i] = v * 0.2 * aliveNorm;
    }
    bEnc[i] = 0;
    sae.tokensSinceFired[i] = 0;
  }
  mi.tidy(() => {
    const backend = W_enc.backend;
    W_enc.assign(mi.tensor(wEnc, W_enc.shape, { backend }));
    b_enc.assign(mi.tensor(bEnc, b_enc.shape, { backend }));
    W_dec.assign(mi.tensor(wDec, W_dec.shape, { backend }));
  });
  await zeroMoments(opt, sae, dead);
  return dead.length;
}

/** Zeroes AdamW's m and v for the W_enc columns, b_enc entries and W_dec rows of `latents`. */
async function zeroMoments(opt: mi.AdamW, sae: Sae, latents: number[]): Promise<void> {
  const { d, latents: m } = sae;
  const state = opt.state();
  try {
    const fresh = await Promise.all(
      [...state.m, ...state.v].map(async (t, i) => {
        const a = Float32Array.from(await t.data());
        const param = SAE_PARAM_NAMES[i % SAE_PARAM_NAMES.length];
        for (const l of latents) {
          if (param === 'W_enc') for (let j = 0; j < d; j++) a[j * m + l] = 0;
          else if (param === 'b_enc') a[l] = 0;
          else if (param === 'W_dec') a.fill(0, l * d, l * d + d);
        }
        return mi.tensor(a, t.shape, { backend: t.backend });
      }),
    );
    const P = SAE_PARAM_NAMES.length;
    opt.loadState({ step: state.step, m: fresh.slice(0, P), v: fresh.slice(P) });
    for (const t of fresh) t.dispose();
  } finally {
    for (const t of [...state.m, ...state.v]) t.dispose();
  }
}
