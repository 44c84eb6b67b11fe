// A sparse autoencoder's forward pass and loss as one fused op with its own backward (the kernels
// `sae` and `sae_bwd` of engine/kernels.ts). Per row x [d], with L latents:
//   xc = x - b_dec,  pre = xc W_enc + b_enc
//   relu: z = max(pre, 0)                               recon = z W_dec + b_dec
//   topk: values, indices = top-k of pre, act = max(values, 0)
//                                                       recon = sum_j act_j W_dec[indices_j] + b_dec
//   loss = ||recon - x||^2 + l1 * sum(activations)
//   AuxK (topk): the top kAux pre-activations among dead latents reconstruct the residual x - recon
//                (held constant): auxLoss = ||sum_j max(auxValues_j, 0) W_dec[auxIndices_j] - (x - recon)||^2
// The backward needs only the active latents for topk: k (+ kAux) rows of W_dec per row, and the
// matching columns of W_enc, so dW_dec and dW_enc are sparse sums (every element still written).
import { record } from '../autograd/tape.ts';
import type { SaeKernelParams } from '../kernels.ts';
import { shapeStr } from '../shape.ts';
import { full, type Tensor } from '../tensor.ts';
import { assertFloat, runKernel } from './run.ts';

export interface SparseAutoencoderInputs {
  /** [rows, d] */ x: Tensor;
  /** [d, latents] */ W_enc: Tensor;
  /** [latents] */ b_enc: Tensor;
  /** [latents, d] (row i: latent i's decoder direction) */ W_dec: Tensor;
  /** [d] */ b_dec: Tensor;
  kind: 'relu' | 'topk';
  /** topk: latents kept per row */
  k?: number;
  /** weight of sum(activations) in the loss (default 0) */
  l1?: number;
  /** topk AuxK: 1 for a dead latent, 0 otherwise [latents]; needed when kAux > 0 */
  dead?: Tensor | null;
  /** topk AuxK: dead latents per row used to reconstruct the residual (default 0: none) */
  kAux?: number;
}

export interface SparseAutoencoderOutputs {
  /** relu: latent activations [rows, latents] */
  z?: Tensor;
  /** topk: the k largest pre-activations [rows, k], descending (activations are max(values, 0)) */
  values?: Tensor;
  /** topk: their latents, int32 [rows, k] */
  indices?: Tensor;
  /** [rows, d] */
  recon: Tensor;
  /** per-row loss [rows]: ||recon - x||^2 + l1 * sum(activations) */
  loss: Tensor;
  /** AuxK: [rows, kAux] (-inf where fewer than kAux latents are dead) */
  auxValues?: Tensor;
  /** AuxK: int32 [rows, kAux] */
  auxIndices?: Tensor;
  /** AuxK: per-row ||ehat - (x - recon)||^2 [rows] */
  auxLoss?: Tensor;
}

function expect(name: string, t: Tensor, shape: number[]): void {
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`sparseAutoencoder: ${name} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
  }
}

/** The fused SAE forward and per-row loss; differentiable in x, W_enc, b_enc, W_dec and b_dec. */
export function sparseAutoencoder(inp: SparseAutoencoderInputs): SparseAutoencoderOutputs {
  const { x, W_enc, b_enc, W_dec, b_dec, kind } = inp;
  if (kind !== 'relu' && kind !== 'topk') throw new Error(`sparseAutoencoder: unknown kind '${kind}' (expected relu or topk)`);
  if (x.rank !== 2) throw new Error(`sparseAutoencoder: x has shape ${shapeStr(x.shape)}, expected [rows, d]`);
  const [rows, d] = x.shape;
  if (W_enc.rank !== 2) throw new Error(`sparseAutoencoder: W_enc has shape ${shapeStr(W_enc.shape)}, expected [d, latents]`);
  const latents = W_enc.shape[1];
  expect('W_enc', W_enc, [d, latents]);
  expect('b_enc', b_enc, [latents]);
  expect('W_dec', W_dec, [latents, d]);
  expect('b_dec', b_dec, [d]);
  const k = kind === 'topk' ? (inp.k ?? 0) : 0;
  if (kind === 'topk' && !(Number.isInteger(k) && k >= 1 && k <= latents)) {
    throw new Error(`sparseAutoencoder: topk needs an integer k in [1, ${latents}], got ${inp.k}`);
  }
  const kAux = inp.kAux ?? 0;
  if (kAux !== 0 && kind !== 'topk') throw new Error(`sparseAutoencoder: kAux=${kAux} needs kind 'topk'`);
  if (!(Number.isInteger(kAux) && kAux >= 0 && kAux <= latents)) {
    throw new Error(`sparseAutoencoder: kAux must be an integer in [0, ${latents}], got ${kAux}`);
  }
  if (kAux > 0 && !inp.dead) throw new Error(`sparseAutoencoder: kAux=${kAux} needs the dead mask`);
  if (inp.dead) expect('dead', inp.dead, [latents]);
  const l1 = inp.l1 ?? 0;
  if (!Number.isFinite(l1)) throw new Error(`sparseAutoencoder: l1 must be a finite number, got ${l1}`);
  const params = [x, W_enc, b_enc, W_dec, b_dec];
  const inputs = kAux > 0 ? [...params, inp.dead!] : params;
  assertFloat('sparseAutoencoder', ...inputs);
  for (const t of inputs) {
    if (t.dtype !== x.dtype) throw new Error(`sparseAutoencoder: mixed dtypes ${x.dtype} and ${t.dtype}`);
  }
  const dtype = x.dtype;
  const p: SaeKernelParams = { rows, d, latents, kind, k, l1, kAux };
  const recon = { shape: [rows, d], dtype };
  const loss = { shape: [rows], dtype };
  if (kind === 'relu') {
    const [z, r, l] = runKernel('sae', inputs, [{ shape: [rows, latents], dtype }, recon, loss], p);
    record('sparseAutoencoder', params, [z, r, l], ([gz, gr, gl]) =>
      backwardOf(p, params, [z, r], [], gl ?? undefined, undefined, gr ?? undefined, gz ?? undefined),
    );
    return { z, recon: r, loss: l };
  }
  const outSpecs = [{ shape: [rows, k], dtype }, { shape: [rows, k], dtype: 'int32' as const }, recon, loss];
  if (kAux > 0) outSpecs.push({ shape: [rows, kAux], dtype }, { shape: [rows, kAux], dtype: 'int32' }, loss);
  const [values, indices, r, l, auxValues, auxIndices, auxLoss] = runKernel('sae', inputs, outSpecs, p);
  const recorded = kAux > 0 ? [values, r, l, auxLoss] : [values, r, l];
  record('sparseAutoencoder', params, recorded, ([gv, gr, gl, ga]) =>
    backwardOf(
      p,
      params,
      [values, indices, r],
      kAux > 0 ? [auxValues, auxIndices] : [],
      gl ?? undefined,
      ga ?? undefined,
      gr ?? undefined,
      gv ?? undefined,
    ),
  );
  return { values, indices, recon: r, loss: l, auxValues, auxIndices, auxLoss };
}

/** The gradients of x, W_enc, b_enc, W_dec, b_dec by the sae_bwd kernel; absent loss cotangents are zero. */
function backwardOf(
  p: SaeKernelParams,
  params: Tensor[],
  saved: Tensor[],
  aux: Tensor[],
  gloss: Tensor | undefined,
  gaux: Tensor | undefined,
  grecon: Tensor | undefined,
  glatents: Tensor | undefined,
): Tensor[] {
  const x = params[0];
  const made: Tensor[] = [];
  const zeros = () => {
    const t = full([p.rows], 0, { dtype: x.dtype, backend: x.backend });
    made.push(t);
    return t;
  };
  const ins = [...params, ...saved, ...aux, gloss ?? zeros()];
  if (p.kAux > 0) ins.push(gaux ?? zeros());
  if (grecon) ins.push(grecon);
  if (glatents) ins.push(glatents);
  try {
    return runKernel(
      'sae_bwd',
      ins,
      params.map((t) => ({ shape: t.shape, dtype: t.dtype })),
      { ...p, hasGRecon: !!grecon, hasGLatents: !!glatents },
    );
  } finally {
    for (const t of made) t.dispose();
  }
}
