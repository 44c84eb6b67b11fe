// The kernel contract between the ops (engine/ops) and the backends (engine/cpu, engine/wgsl).
// Every op front-end reduces its work to one or more of these kernels; each backend implements
// every kernel with the same inputs, outputs and parameters. Buffers are contiguous, row-major.
// Outputs are allocated by the caller and must be completely written by the kernel (tests poison
// them with NaN first).
import type { BinaryOp, UnaryOp } from './elementwise.ts';

export type ReduceOp = 'sum' | 'max' | 'min';

/** Flags and sizes of the fused Mamba selective scan (see engine/ops/scan.ts for the maths). */
export interface ScanParams {
  batch: number;
  T: number;
  E: number;
  N: number;
  hasD: boolean; // y += D * x
  hasZ: boolean; // y *= silu(z)
  hasH0: boolean; // initial state [batch, E, N]
  hasDeltaBias: boolean; // delta = delta_in + bias[E] before the optional softplus
  deltaSoftplus: boolean; // delta = softplus(delta_in (+ bias))
  saveStates: boolean; // also write all states hs [batch, T, E, N]
}

/**
 * The scan's flag-dependent list by name: its inputs [x, delta, A, B, C, (D), (z), (h0),
 * (deltaBias)], or scan_bwd's gradient outputs, which come in the same order; `rest` is what
 * follows (scan_bwd's dy, (dhT), (dhs)). Absent entries are undefined.
 */
export interface ScanArrays<T> {
  x: T;
  delta: T;
  A: T;
  B: T;
  C: T;
  D?: T;
  z?: T;
  h0?: T;
  deltaBias?: T;
  rest: T[];
}

/** Names the entries of a scan list (ScanArrays), the one walk of the flags every backend reads it by. */
export function scanArrays<T>(list: T[], p: ScanParams): ScanArrays<T> {
  let i = 5;
  const [x, delta, A, B, C] = list;
  const D = p.hasD ? list[i++] : undefined;
  const z = p.hasZ ? list[i++] : undefined;
  const h0 = p.hasH0 ? list[i++] : undefined;
  const deltaBias = p.hasDeltaBias ? list[i++] : undefined;
  return { x, delta, A, B, C, D, z, h0, deltaBias, rest: list.slice(i) };
}

/**
 * Sizes and flags of the fused sparse autoencoder (see engine/ops/sae.ts for the maths). With
 * xc = x - b_dec and pre = xc W_enc + b_enc (per row):
 *   relu: z = max(pre, 0), recon = z W_dec + b_dec
 *   topk: values, indices = the k largest pre-activations of the row (descending; ties to the
 *         lower index; NaN largest, -0 as +0), act = max(values, 0),
 *         recon = sum_j act_j W_dec[indices_j] + b_dec
 *   loss[r] = ||recon - x||^2 + l1 * sum(latent activations of the row)
 *   AuxK (topk, kAux > 0): auxValues, auxIndices = the kAux largest of (dead[l] != 0 ? pre : -inf),
 *         ehat = sum_j max(auxValues_j, 0) W_dec[auxIndices_j] (no bias),
 *         auxLoss[r] = ||ehat - (x - recon)||^2, the residual x - recon held constant (stop-gradient).
 */
export interface SaeKernelParams {
  rows: number;
  d: number;
  latents: number;
  kind: 'relu' | 'topk';
  /** topk: latents kept per row (ignored by relu) */
  k: number;
  /** weight of the L1 term of the loss (0: none) */
  l1: number;
  /** topk: AuxK latents per row among the dead ones (0: no AuxK); relu: must be 0 */
  kAux: number;
}

/** Sizes of the hidden-attention (influence) kernel; see engine/ops/influence.ts. */
export interface InfluenceParams {
  batch: number;
  T: number;
  E: number;
  N: number;
  /** the map over channels: mean |alpha| ('mean_abs') or sqrt(sum alpha^2) ('l2') */
  norm: 'mean_abs' | 'l2';
  /** also write alpha [batch, E, T, T] */
  saveAlpha: boolean;
}

export interface KernelParams {
  /** out[i] = value. outputs: [out] */
  fill: { size: number; value: number };
  /** out[i] = f(in[i], alpha, beta). inputs: [x] outputs: [out] (same dtype) */
  unary: { op: UnaryOp; size: number; alpha: number; beta: number };
  /** out[idx] = f(a[idx . aStrides], b[idx . bStrides]) over `shape` (broadcast by stride 0). */
  binary: { op: BinaryOp; shape: number[]; aStrides: number[]; bStrides: number[] };
  /** out = cond != 0 ? a : b, broadcast by strides. inputs: [cond, a, b] */
  where: { shape: number[]; cStrides: number[]; aStrides: number[]; bStrides: number[] };
  /** dtype conversion (float to int truncates toward zero). inputs: [x] outputs: [out] */
  cast: { size: number };
  /**
   * Strided copy: for every index idx of `shape`,
   * out[outOffset + idx . outStrides] = in[inOffset + idx . inStrides].
   * Serves permute, slice, expand, concat (writing into a region of a bigger output). Elements of
   * `out` outside the written region are left as they are.
   */
  copy: { shape: number[]; inStrides: number[]; inOffset: number; outStrides: number[]; outOffset: number };
  /** x viewed as [outer, len, inner]; out[o, i] = reduce over k of x[o, k, i]. */
  reduce: { op: ReduceOp; outer: number; len: number; inner: number };
  /** int32 out[o, i] = first k maximising x[o, k, i]. */
  argmax: { outer: number; len: number; inner: number };
  /**
   * out[b] = op(a[b]) @ op(bm[b]) with op = transpose when asked. a is [M,K] ([K,M] if transA),
   * bm is [K,N] ([N,K] if transB); batch b starts at b*aBatchStride / b*bBatchStride (0 = broadcast).
   * out is [batch, M, N].
   */
  matmul: { batch: number; M: number; N: number; K: number; transA: boolean; transB: boolean; aBatchStride: number; bBatchStride: number };
  /** inputs: [table [rows, cols], idx int32 [n]] out [n, cols] = table[idx]. */
  gather: { n: number; rows: number; cols: number };
  /** inputs: [g [n, cols], idx int32 [n]] out [rows, cols] = sum of g rows by index (out fully overwritten). */
  scatter_add: { n: number; rows: number; cols: number };
  /** inputs: [idx int32 [n]] out [n, depth] (float). Out-of-range indices give a zero row. */
  onehot: { n: number; depth: number };
  /** Row-wise softmax or log-softmax of x [rows, cols]. */
  softmax: { rows: number; cols: number; log: boolean };
  /** inputs: [y (the forward output), dy] out dx. softmax: y*(dy - sum(dy*y)); log: dy - exp(y)*sum(dy). */
  softmax_bwd: { rows: number; cols: number; log: boolean };
  /** inputs: [logits [rows, cols], targets int32 [rows]] out loss [rows] (0 where target == ignoreIndex). */
  cross_entropy: { rows: number; cols: number; ignoreIndex: number };
  /** inputs: [logits, targets, g [rows]] out dlogits = (softmax - onehot) * g[row]; 0 rows where ignored. */
  cross_entropy_bwd: { rows: number; cols: number; ignoreIndex: number };
  /** inputs: [x [rows, cols], w [cols]] outputs: [y, rstd [rows]]; y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps). */
  rmsnorm: { rows: number; cols: number; eps: number };
  /** inputs: [x, w, rstd, dy] outputs: [dx, dw]. */
  rmsnorm_bwd: { rows: number; cols: number };
  /**
   * Causal depthwise conv over time. inputs: [x [batch, T, C], w [C, K], (bias [C])] out [batch, T, C]:
   * y[b,t,c] = bias[c] + sum_k w[c,k] * x[b, t-K+1+k, c] (zero before t = 0).
   */
  conv1d: { batch: number; T: number; C: number; K: number; hasBias: boolean };
  /** inputs: [x, w, dy] outputs: [dx, dw, (dbias)]. */
  conv1d_bwd: { batch: number; T: number; C: number; K: number; hasBias: boolean };
  /** Largest k of each row of x [rows, cols], in descending order (ties: lower index first). outputs: [values, indices int32]. */
  topk: { rows: number; cols: number; k: number };
  /**
   * Selective scan. inputs: [x, delta, A, B, C, (D), (z), (h0), (deltaBias)] in that order, present
   * by flag; x, delta, z [batch,T,E]; A [E,N]; B, C [batch,T,N]; D, deltaBias [E]; h0 [batch,E,N].
   * outputs: [y [batch,T,E], hT [batch,E,N], (hs [batch,T,E,N] when saveStates)].
   */
  scan: ScanParams;
  /**
   * inputs: the forward inputs, then dy, then (dhT) and (dhs) by flag.
   * outputs: [dx, ddelta (w.r.t. the delta input), dA, dB, dC, (dD), (dz), (dh0), (ddeltaBias)].
   */
  scan_bwd: ScanParams & { hasDhT: boolean; hasDhs: boolean };
  /**
   * Fused sparse autoencoder forward (SaeKernelParams). inputs: [x [rows,d], W_enc [d,L], b_enc [L],
   * W_dec [L,d], b_dec [d], (dead [L] when kAux > 0)]. outputs, relu: [z [rows,L], recon [rows,d],
   * loss [rows]]; topk: [values [rows,k], indices int32 [rows,k], recon, loss, (auxValues
   * [rows,kAux], auxIndices int32 [rows,kAux], auxLoss [rows] when kAux > 0)].
   */
  sae: SaeKernelParams;
  /**
   * Its backward. inputs: [x, W_enc, b_enc, W_dec, b_dec, latents (relu: z; topk: values, indices),
   * recon, (auxValues, auxIndices when kAux > 0), gloss [rows], (gAuxLoss [rows] when kAux > 0),
   * (grecon [rows,d] when hasGRecon), (glatents when hasGLatents: gz [rows,L] or gvalues [rows,k])].
   * outputs: [dx, dW_enc, db_enc, dW_dec, db_dec]. For topk only the active latents' rows of dW_dec
   * and columns of dW_enc are nonzero (every element is still written).
   */
  sae_bwd: SaeKernelParams & { hasGRecon: boolean; hasGLatents: boolean };
  /**
   * Hidden attention of one selective scan: inputs [delta [batch,T,E] (the step, after any
   * softplus), A [E,N], B [batch,T,N], C [batch,T,N]]; outputs [norm [batch,T,T], (alpha
   * [batch,E,T,T] when saveAlpha)] with, for s <= t (0 for s > t),
   *   alpha[b,e,t,s] = sum_n C[b,t,n] (prod_{r=s+1..t} exp(delta[b,r,e] A[e,n])) delta[b,s,e] B[b,s,n]
   * and norm[b,t,s] = mean_e |alpha[b,e,t,s]| or sqrt(sum_e alpha[b,e,t,s]^2).
   */
  influence: InfluenceParams;
}

export type KernelName = keyof KernelParams;
