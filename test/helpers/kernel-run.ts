// Running one kernel directly on a backend, and the comparisons of the kernel parity cases
// (test/engine/kernel-cases.ts). Browser-safe: the cases are bundled into a page by esbuild, so
// nothing here may import node:*.
import type { Backend, Buffer } from '../../engine/backend.ts';
import { arrayFor, type DType, type TypedArray } from '../../engine/dtype.ts';
import type { UnaryOp } from '../../engine/elementwise.ts';
import type { KernelName, KernelParams } from '../../engine/kernels.ts';

/** What an int32 output starts as, so an element a kernel fails to write is a mismatch (float: NaN). */
export const INT_POISON = -987654321;

/** One output of a kernel run: its dtype and size, and optionally what it holds before the run. */
export interface OutSpec {
  dtype: DType;
  size: number;
  init?: TypedArray;
}

/** What running kernels on a backend needs of it: a Backend, or a reference that only runs kernels. */
export type KernelBackend = Pick<Backend, 'alloc' | 'write' | 'read' | 'run' | 'free'>;

export const f32 = (size: number): OutSpec => ({ dtype: 'float32', size });
export const i32 = (size: number): OutSpec => ({ dtype: 'int32', size });

/**
 * Runs one kernel on a backend and reads its outputs back. Inputs are int32 if given as Int32Array,
 * float32 otherwise; outputs start as `init` or poison (NaN, or INT_POISON for int32). Buffers are
 * freed even when the kernel throws.
 */
export async function runKernel<K extends KernelName>(
  b: KernelBackend,
  kernel: K,
  inputs: TypedArray[],
  outs: OutSpec[],
  params: KernelParams[K],
): Promise<TypedArray[]> {
  const bufs: Buffer[] = [];
  try {
    const ins = inputs.map((a) => {
      const buf = b.alloc(a instanceof Int32Array ? 'int32' : 'float32', a.length);
      bufs.push(buf);
      b.write(buf, a);
      return buf;
    });
    const obufs = outs.map((o) => {
      const buf = b.alloc(o.dtype, o.size);
      bufs.push(buf);
      b.write(buf, o.init ?? arrayFor(o.dtype, o.size).fill(o.dtype === 'int32' ? INT_POISON : NaN));
      return buf;
    });
    b.run(kernel, ins, obufs, params);
    return await Promise.all(obufs.map((o) => b.read(o)));
  } finally {
    for (const x of bufs) b.free(x);
  }
}

/**
 * The worst relative error |got - want| / (|want| + scale) over the elements, and where (at = -1
 * when none is off, or when the lengths differ: then worst is Infinity). NaN in both is a match; a
 * NaN error counts as Infinity. `scale` may vary by element.
 */
export function worstRelativeError(
  got: TypedArray,
  want: TypedArray,
  scale: number | ((i: number) => number),
): { worst: number; at: number } {
  if (got.length !== want.length) return { worst: Infinity, at: -1 };
  const sc = typeof scale === 'number' ? () => scale : scale;
  let worst = 0,
    at = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i],
      w = want[i];
    if ((Number.isNaN(w) && Number.isNaN(g)) || w === g) continue;
    const err = Math.abs(g - w) / (Math.abs(w) + sc(i));
    if (!(err <= worst)) {
      worst = Number.isNaN(err) ? Infinity : err;
      at = i;
    }
  }
  return { worst, at };
}

/**
 * Relative per element with a floor of 1% of the tensor's largest magnitude: every element must have
 * |got - want| <= tol * (|want| + 1e-2 * max|want|), so an element that cancels to near zero is
 * judged against the scale of its tensor. NaN on either side is a mismatch. Gives the worst ratio
 * |got - want| / (|want| + 1e-2 * max|want|) and where (at = -1 when the lengths differ).
 */
export function worstRelativeToMax(got: TypedArray, want: TypedArray, tol: number): { ok: boolean; worst: number; at: number } {
  if (got.length !== want.length) return { ok: false, worst: Infinity, at: -1 };
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let ok = true,
    worst = 0,
    at = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const bound = Math.abs(want[i]) + 1e-2 * scale;
    if (!(err <= tol * bound)) ok = false;
    const ratio = err === 0 ? 0 : Number.isNaN(err) ? Infinity : err / bound;
    if (ratio > worst) {
      worst = ratio;
      at = i;
    }
  }
  if (!ok && !(worst > tol)) worst = Infinity; // a NaN in the reference
  return { ok, worst, at };
}

/** Inputs in each unary op's domain, and looser scales where WGSL's builtins allow more error. */
export function unaryCase(op: UnaryOp): { x: (v: number) => number; alpha: number; beta: number; scale: number } {
  const positive = (v: number) => Math.abs(v) + 0.1;
  switch (op) {
    case 'log':
    case 'sqrt':
    case 'rsqrt':
    case 'recip':
      return { x: positive, alpha: 0, beta: 0, scale: 1 };
    // pow is exp2(b * log2(a)) in WGSL: its error grows with the exponent
    case 'pow_scalar':
      return { x: positive, alpha: 2.5, beta: 0, scale: 10 };
    case 'clamp':
    case 'inside':
      return { x: (v) => v, alpha: -0.5, beta: 0.7, scale: 1 };
    case 'affine':
      return { x: (v) => v, alpha: 1.5, beta: -0.25, scale: 1 };
    default:
      return { x: (v) => v, alpha: 0, beta: 0, scale: 1 };
  }
}
