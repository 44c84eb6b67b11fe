// Timings of the fused SAE and influence kernels for bench/webgpu.ts, each beside the path it
// replaces: one TopK SAE training step (forward, per-row loss, backward) by mi.sparseAutoencoder
// vs the same step composed of matmul, topk and scatter-add (what interp/sae ran before, and what a
// plain PyTorch TopK SAE does: a dense decode and dense gradients); and the hidden-attention map
// of a scan by mi.scanInfluence vs the autograd Jacobian of the scan and vs the plain-JS loop.
import { median } from './median.ts';
import * as mi from '../../engine/index.ts';
import type { Backend } from '../../engine/backend.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { hiddenAttentionFrom } from '../../interp/temporal.ts';

export interface SaeShape {
  rows: number;
  d: number;
  latents: number;
  k: number;
}

const uniform = (rng: mi.Rng, n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform());

/** Median ms of one TopK SAE training step (loss and all four parameter gradients) on `be`. */
export async function saeStepMs(be: Backend, s: SaeShape, path: 'fused' | 'composed', iters: number): Promise<number> {
  const { rows, d, latents: L, k } = s;
  const rng = new mi.Rng(`bench/sae ${rows}x${d}x${L}`);
  const t = (a: Float32Array, shape: number[]) => mi.keep(mi.tensor(a, shape, { backend: be }));
  const x = t(uniform(rng, rows * d, -1, 1), [rows, d]);
  const P = {
    W_enc: t(uniform(rng, d * L, -0.1, 0.1), [d, L]),
    b_enc: t(uniform(rng, L, -0.01, 0.01), [L]),
    W_dec: t(uniform(rng, L * d, -0.1, 0.1), [L, d]),
    b_dec: t(uniform(rng, d, -0.1, 0.1), [d]),
  };
  const params = Object.values(P);
  for (const p of params) p.requiresGrad = true;
  const loss = (): Tensor => {
    if (path === 'fused') return mi.div(mi.sum(mi.sparseAutoencoder({ x, ...P, kind: 'topk', k }).loss), rows);
    const pre = mi.add(mi.matmul(mi.sub(x, P.b_dec), P.W_enc), P.b_enc);
    const { values, indices } = mi.topk(pre, k);
    const flat = mi.reshape(mi.add(indices, mi.mul(mi.reshape(mi.arange(rows, { backend: be }), [rows, 1]), L)), [rows * k]);
    const z = mi.reshape(mi.scatterAdd(mi.reshape(mi.relu(values), [rows * k, 1]), flat, [rows * L, 1]), [rows, L]);
    const recon = mi.add(mi.matmul(z, P.W_dec), P.b_dec);
    return mi.div(mi.sum(mi.square(mi.sub(recon, x))), rows);
  };
  const call = async () => {
    mi.tidy(() => {
      mi.backwardFrom(loss());
    });
    await be.flush();
  };
  try {
    await call(); // compile pipelines outside the timing
    return await median(`sae step ${path} ${be.name}`, call, iters);
  } finally {
    for (const p of params) p.requiresGrad = false;
    for (const a of [x, ...params]) a.dispose();
  }
}

export interface ScanShape {
  T: number;
  E: number;
  N: number;
}

function scanFactors(be: Backend, { T, E, N }: ScanShape) {
  const rng = new mi.Rng(`bench/influence T${T} E${E}`);
  const t = (a: Float32Array, shape: number[]) => mi.keep(mi.tensor(a, shape, { backend: be }));
  return {
    delta: t(uniform(rng, T * E, 0.01, 0.3), [1, T, E]),
    A: t(uniform(rng, E * N, -2, -0.1), [E, N]),
    B: t(uniform(rng, T * N, -1, 1), [1, T, N]),
    C: t(uniform(rng, T * N, -1, 1), [1, T, N]),
  };
}

/** Median ms of the mean |alpha| map of one sequence, by `how`, read back to the host. */
export async function influenceMs(be: Backend, shape: ScanShape, how: 'kernel' | 'jacobian' | 'loop', iters: number): Promise<number> {
  const { T, E, N } = shape;
  const f = scanFactors(be, shape);
  const call = async () => {
    if (how === 'kernel') {
      await mi.tidyAsync(() => mi.scanInfluence(f).norm.data());
      return;
    }
    if (how === 'loop') {
      const [delta, A, B, C] = await Promise.all([f.delta, f.A, f.B, f.C].map((x) => x.data()));
      const alpha = hiddenAttentionFrom(delta, A, B, C, T, E, N);
      const map = new Float64Array(T * T);
      for (let e = 0; e < E; e++) for (let i = 0; i < T * T; i++) map[i] += Math.abs(alpha[e * T * T + i]) / E;
      return;
    }
    // d y / d x of the scan (one backward pass per output element), then its channel diagonal
    const J = await mi.tidyAsync(async () => {
      const x = mi.zeros([1, T, E], { backend: be });
      return mi.jacobian((xs: Tensor) => mi.selectiveScan({ x: xs, ...f }).y, x).data();
    });
    const map = new Float64Array(T * T);
    for (let t = 0; t < T; t++)
      for (let e = 0; e < E; e++) for (let s = 0; s <= t; s++) map[t * T + s] += Math.abs(J[((t * E + e) * T + s) * E + e]) / E;
  };
  try {
    await call();
    return await median(`influence ${how} ${be.name}`, call, iters);
  } finally {
    for (const a of Object.values(f)) a.dispose();
  }
}
