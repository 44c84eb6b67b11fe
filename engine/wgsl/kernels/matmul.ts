// Batched matmul, either operand transposed, batch strides (0: one matrix for every batch). Three
// kernels, chosen by shape (chooseMatmul):
// - skinny (matmul/matvec.ts): M or N at most 8 (decoding, M = 1): each element of the large
//   operand is read once, coalesced, and used for every row of the small side;
// - register-tiled (matmul/tiled.ts): 128 x 128, 128 x 64, 64 x 128 or 64 x 64 tiles, 8 x 8 to
//   4 x 4 per thread, double-buffered workgroup-memory slabs, vec4 loads and stores where the
//   layout allows. The largest tile that still gives TARGET_WORKGROUPS workgroups is taken (big
//   problems get 128 x 128; a 1024^2 output gets 64 x 64 so that a large GPU has work for every
//   core);
// - split-K on top of a tiled kernel when even 64 x 64 tiles give few workgroups and K is long
//   (weight gradients: M x N small, K = batch x length): slices of k into a scratch buffer, then a
//   pass adding them.
import type { KernelParams } from '../../kernels.ts';
import type { BufferInfo, DeviceFacts, KernelPlan, WgslKernel } from '../kernel.ts';
import { checkSize } from '../layout.ts';
import { MATVEC_MAX, matvecPasses } from './matmul/matvec.ts';
import { BK, tiledPasses } from './matmul/tiled.ts';

/** Workgroups that keep a large GPU busy (about two per SM on a 132-SM H100). */
const TARGET_WORKGROUPS = 256;
/** Split-K only below this many workgroups, along k of at least SPLIT_MIN_K, at most MAX_SPLIT ways. */
const SPLIT_BELOW = 128;
const SPLIT_MIN_K = 1024;
const SPLIT_CHUNK_MIN = 256;
const MAX_SPLIT = 16;
/** Scratch of a split, at most (the spec's default maxStorageBufferBindingSize is 128 MiB). */
const SPLIT_SCRATCH_BYTES = 64 << 20;

export type MatmulChoice =
  | { kind: 'matvec' }
  | { kind: 'tiled'; tm: 64 | 128; tn: 64 | 128; split: number; kChunk: number; workgroups: number };

/** k chunks of a split-K into about `ways` parts: chunk lengths are multiples of BK. */
export function splitK(K: number, ways: number): { split: number; kChunk: number } {
  const kChunk = Math.max(BK, Math.ceil(K / Math.max(1, ways) / BK) * BK);
  return { split: Math.max(1, Math.ceil(K / kChunk)), kChunk };
}

const pad = (d: number, t: number) => Math.ceil(d / t) * t;

/**
 * Which kernel (and tile, and split) runs a matmul of this shape: the skinny kernel when M or N is
 * at most MATVEC_MAX; else the largest tile that gives TARGET_WORKGROUPS workgroups (64 x 64 when
 * none does), a side of 128 only where it pads the output little more than a side of 64 (129 rows
 * take 64-row tiles); then split-K when the workgroups are still few and K is long.
 */
export function chooseMatmul(p: { batch: number; M: number; N: number; K: number }, _device?: DeviceFacts): MatmulChoice {
  const { batch, M, N, K } = p;
  if (Math.min(M, N) <= MATVEC_MAX) return { kind: 'matvec' };
  const tiles = (tm: number, tn: number) => batch * Math.ceil(M / tm) * Math.ceil(N / tn);
  const fits = (d: number, t: number) => t === 64 || pad(d, 128) <= 1.15 * pad(d, 64);
  const candidates = (
    [[128, 128], M >= N ? [128, 64] : [64, 128], M >= N ? [64, 128] : [128, 64], [64, 64]] as [64 | 128, 64 | 128][]
  ).filter(([tm, tn]) => fits(M, tm) && fits(N, tn));
  const [tm, tn] = candidates.find(([a, b]) => tiles(a, b) >= TARGET_WORKGROUPS) ?? [64, 64];
  const wgs = tiles(tm, tn);
  let { split, kChunk } = splitK(K, 1);
  if (wgs < SPLIT_BELOW && K >= SPLIT_MIN_K) {
    const byScratch = Math.floor(SPLIT_SCRATCH_BYTES / (4 * batch * M * N));
    const want = Math.min(MAX_SPLIT, Math.ceil(TARGET_WORKGROUPS / wgs), Math.floor(K / SPLIT_CHUNK_MIN), byScratch);
    if (want >= 2) ({ split, kChunk } = splitK(K, want));
  }
  return { kind: 'tiled', tm, tn, split, kChunk, workgroups: wgs * split };
}

/** The matmul kernel with another rule for the kernel (tests force each design on every case). */
export function matmulKernel(choose: typeof chooseMatmul = chooseMatmul): WgslKernel<'matmul'> {
  return (ins, outs, p, device) => matmulPlan(ins, outs, p, device, choose);
}

export const matmul: WgslKernel<'matmul'> = matmulKernel();

function matmulPlan(
  [a, b]: BufferInfo[],
  [out]: BufferInfo[],
  p: KernelParams['matmul'],
  device: DeviceFacts,
  choose: typeof chooseMatmul,
): KernelPlan {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  for (const [name, buf] of [
    ['a', a],
    ['b', b],
    ['out', out],
  ] as const) {
    if (buf.dtype !== 'float32') throw new Error(`matmul: ${name} is ${buf.dtype}; the WebGPU matmul is float32 only`);
  }
  checkSize('matmul', 'a', a, (batch - 1) * aBatchStride + M * K);
  checkSize('matmul', 'b', b, (batch - 1) * bBatchStride + K * N);
  checkSize('matmul', 'out', out, batch * M * N);
  if (batch === 0 || M === 0 || N === 0) return { passes: [] };
  const choice = choose(p, device);
  if (choice.kind === 'matvec' && Math.min(M, N) > MATVEC_MAX)
    throw new Error(`matmul: the skinny kernel takes M or N up to ${MATVEC_MAX}, got ${M} x ${N}`);
  if (choice.kind === 'matvec') return matvecPasses({ batch, M, N, K, transA, transB, aBatch: aBatchStride, bBatch: bBatchStride });
  return tiledPasses({
    tm: choice.tm,
    tn: choice.tn,
    batch,
    M,
    N,
    K,
    transA,
    transB,
    aBatch: aBatchStride,
    bBatch: bBatchStride,
    vecA: (transA ? M % 4 === 0 : K % 4 === 0) && aBatchStride % 4 === 0,
    vecB: (transB ? K % 4 === 0 : N % 4 === 0) && bBatchStride % 4 === 0,
    vecO: N % 4 === 0,
    split: choice.split,
    kChunk: choice.kChunk,
  });
}
