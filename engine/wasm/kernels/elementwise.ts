// The float32 elementwise kernels of engine/cpu/kernels/elementwise.ts in WebAssembly SIMD: unary
// (the ops of engine/elementwise.ts's UNARY table but pow_scalar) and binary with broadcasting
// through strides (every BINARY op but pow). Float32 inputs and outputs only; the rest goes to the
// scalar kernel (accepts false).
//
// Results against the scalar kernels (float64 arithmetic rounded once to float32):
//   bit-identical: neg abs sign square recip sqrt relu step clamp inside affine (affine in float64
//   lanes, a * x + b as the scalar kernel computes it), and every binary op (IEEE float32 add, sub,
//   mul, div of float32 numbers are the float64 result rounded; min, max, comparisons exact);
//   exp log tanh sigmoid silu silu_grad softplus rsqrt: within the ulps engine/wasm/math.ts states.
// Float32 arrays of fewer than 2^29 elements (2 GiB). NaN results are NaN (their bits may differ). clamp's bounds are rounded to float32 (min and max
// commute with rounding); inside's bounds are rounded inwards (lo up, hi down), so that a float32 x
// compares with them as with the float64 bounds.
//
// Binary: the shape is first collapsed (size-1 axes dropped, neighbouring axes merged where both
// inputs' strides allow), then walked as runs of its innermost axis, in WebAssembly (an odometer
// over at most three outer axes: more after collapsing, and accepts is false). A run with inner
// strides (1, 1), (1, 0) or (0, 1) goes four floats at a time; any other a scalar loop.
//
// Splits: both kernels split over ranges of output elements (align 4) when the call is big enough
// for a second thread to pay (2^18 elements for cheap ops, 2^15 for the exp-based ones). Each
// element's result is the same whichever range computes it.
import type { TypedArray } from '../../dtype.ts';
import type { BinaryOp, UnaryOp } from '../../elementwise.ts';
import type { KernelParams } from '../../kernels.ts';
import { type FunctionBuilder, type Local, ModuleBuilder } from '../assembler.ts';
import { kernelModule, type WasmKernel } from '../kernel.ts';
import { i32s, imin, mapLoop } from '../loops.ts';
import { VecMath } from '../math.ts';
import type { WasmHeap } from '../memory.ts';

/** Elements at which a call splits over threads: memory-bound ops, and the exp-based ones. */
export const SPLIT_MIN_LIGHT = 1 << 18;
export const SPLIT_MIN_HEAVY = 1 << 15;

// ---- unary

type UnaryEmit = (m: VecMath, x: Local, a: Local, b: Local) => void;
interface UnaryDef {
  emit: UnaryEmit;
  /** exp-based: more work per element (split sooner) */
  heavy?: boolean;
  /** how alpha and beta reach the lanes: float32 (rounded) or float64 (affine) */
  params?: 'f32' | 'f64';
}

const ONE_BITS = 0x3f800000;

const UNARY_DEFS: Partial<Record<UnaryOp, UnaryDef>> = {
  neg: { emit: (m, x) => m.f.f32x4.neg(x) },
  abs: { emit: (m, x) => m.f.f32x4.abs(x) },
  square: { emit: (m, x) => m.f.f32x4.mul(x, x) },
  recip: { emit: (m, x) => m.f.f32x4.div(m.c(1), x) },
  sqrt: { emit: (m, x) => m.f.f32x4.sqrt(x) },
  rsqrt: { emit: (m, x) => m.rsqrt(x) },
  // x > 0 ? x : 0 (NaN and -0 give +0)
  relu: { emit: (m, x) => m.f.v128.and(x, () => m.f.f32x4.gt(x, m.c(0))) },
  step: { emit: (m, x) => m.f.v128.and(() => m.f.f32x4.gt(x, m.c(0)), m.ci(ONE_BITS)) },
  // +-1 for non-zero numbers, x itself for +-0 and NaN
  sign: {
    emit: (m, x) => {
      const f = m.f;
      f.v128.bitselect(
        () => m.copysign(m.c(1), x),
        x,
        () =>
          f.v128.or(
            () => f.f32x4.lt(x, m.c(0)),
            () => f.f32x4.gt(x, m.c(0)),
          ),
      );
    },
  },
  exp: { emit: (m, x) => m.exp(x), heavy: true },
  log: { emit: (m, x) => m.log(x), heavy: true },
  tanh: { emit: (m, x) => m.tanh(x), heavy: true },
  sigmoid: { emit: (m, x) => m.sigmoid(x), heavy: true },
  silu: { emit: (m, x) => m.silu(x), heavy: true },
  silu_grad: { emit: (m, x) => m.siluGrad(x), heavy: true },
  softplus: { emit: (m, x) => m.softplus(x), heavy: true },
  clamp: { emit: (m, x, a, b) => m.f.f32x4.min(() => m.f.f32x4.max(x, a), b), params: 'f32' },
  inside: {
    emit: (m, x, a, b) => {
      const f = m.f;
      f.v128.and(
        () =>
          f.v128.and(
            () => f.f32x4.ge(x, a),
            () => f.f32x4.le(x, b),
          ),
        m.ci(ONE_BITS),
      );
    },
    params: 'f32',
  },
  // a * x + b in float64, as the scalar kernel computes it, rounded once
  affine: {
    emit: (m, x, a, b) => {
      const f = m.f;
      const half = (v: () => void) =>
        f.f32x4.demote_f64x2_zero(() => f.f64x2.add(() => f.f64x2.mul(a, () => f.f64x2.promote_low_f32x4(v)), b));
      f.v128.shuffle32(
        [0, 1, 4, 5],
        () => half(() => f.local.get(x)),
        () => half(() => f.v128.shuffle32([2, 3, 2, 3], x, x)),
      );
    },
    params: 'f64',
  },
};

/** The unary ops this file computes. */
export const WASM_UNARY_OPS = Object.keys(UNARY_DEFS) as UnaryOp[];

function unaryFunction(mb: ModuleBuilder, op: UnaryOp, def: UnaryDef): void {
  // (x, out, n, alpha, beta): byte pointers, element count, the op's two parameters
  mb.function(
    `unary_${op}`,
    ['i32', 'i32', 'i32', 'f64', 'f64'],
    [],
    (f, x, out, n, alpha, beta) => {
      const m = new VecMath(f);
      const a = f.local.declare('v128'),
        b = f.local.declare('v128');
      if (def.params === 'f32') {
        f.local.set(a, () => f.f32x4.splat(() => f.f32.demote_f64(alpha)));
        f.local.set(b, () => f.f32x4.splat(() => f.f32.demote_f64(beta)));
      } else if (def.params === 'f64') {
        f.local.set(a, () => f.f64x2.splat(alpha));
        f.local.set(b, () => f.f64x2.splat(beta));
      }
      mapLoop(f, [x], out, n, 4, ([v]) => def.emit(m, v, a, b));
    },
    { export: true },
  );
}

// ---- binary

interface BinaryDef {
  vec: (f: FunctionBuilder, a: Local, b: Local) => void;
  scalar: (f: FunctionBuilder, a: Local, b: Local) => void;
}

const arith = (op: 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min'): BinaryDef => ({
  vec: (f, a, b) => f.f32x4[op](a, b),
  scalar: (f, a, b) => f.f32[op](a, b),
});
const compare = (op: 'gt' | 'ge' | 'lt' | 'le' | 'eq' | 'ne'): BinaryDef => ({
  vec: (f, a, b) =>
    f.v128.and(
      () => f.f32x4[op](a, b),
      () => f.i32x4.const(ONE_BITS),
    ),
  scalar: (f, a, b) => f.f32.convert_i32_u(() => f.f32[op](a, b)),
});

const BINARY_DEFS: Partial<Record<BinaryOp, BinaryDef>> = {
  add: arith('add'),
  sub: arith('sub'),
  mul: arith('mul'),
  div: arith('div'),
  maximum: arith('max'),
  minimum: arith('min'),
  gt: compare('gt'),
  ge: compare('ge'),
  lt: compare('lt'),
  le: compare('le'),
  eq: compare('eq'),
  ne: compare('ne'),
};

/** The binary ops this file computes. */
export const WASM_BINARY_OPS = Object.keys(BINARY_DEFS) as BinaryOp[];

/** Outer axes the binary odometer walks (after collapsing: at most 4 axes in all). */
const OUTER = 3;

const BINARY_PARAMS = [
  'a',
  'b',
  'out',
  'count',
  'col',
  'L',
  'sa',
  'sb',
  's1',
  's2',
  'i1',
  'i2',
  'ra',
  'rb',
  'da2',
  'da1',
  'da0',
  'db2',
  'db1',
  'db0',
] as const;

function binaryFunction(mb: ModuleBuilder, op: BinaryOp, def: BinaryDef): void {
  // the walk from output element e0 on, for `count` elements: see BinaryPlan for the parameters
  mb.function(
    `binary_${op}`,
    BINARY_PARAMS.map(() => 'i32' as const),
    [],
    (f, ...params) => {
      const P = Object.fromEntries(BINARY_PARAMS.map((n, i) => [n, params[i]])) as Record<(typeof BINARY_PARAMS)[number], Local>;
      const { a, b, out, count, col, L, sa, sb, s1, s2, i1, i2, ra, rb } = P;
      const { cnt, pa, pb, po, j } = i32s(f, 'cnt', 'pa', 'pb', 'po', 'j');
      const va = f.local.declare('v128'),
        vb = f.local.declare('v128');
      const sx = f.local.declare('f32'),
        sy = f.local.declare('f32');
      const byteAt = (base: Local, off: Local, idx: Local, stride: Local) =>
        f.i32.add(base, () => f.i32.shl(() => f.i32.add(off, () => f.i32.mul(idx, stride)), 2));
      f.block((done) => {
        f.loop((top) => {
          f.local.set(cnt, () => {
            f.i32.sub(L, col);
            f.local.tee(j);
            imin(f, j, count);
          });
          f.local.set(pa, () => byteAt(a, ra, col, sa));
          f.local.set(pb, () => byteAt(b, rb, col, sb));
          f.local.set(po, out);
          const isOne = (s: Local) => f.i32.eq(s, 1);
          const isZero = (s: Local) => f.i32.eqz(s);
          f.if(
            () =>
              f.i32.and(
                () => isOne(sa),
                () => isOne(sb),
              ),
            () => mapLoop(f, [pa, pb], po, cnt, 4, ([x, y]) => def.vec(f, x, y)),
            () =>
              f.if(
                () =>
                  f.i32.and(
                    () => isOne(sa),
                    () => isZero(sb),
                  ),
                () => {
                  f.local.set(vb, () => f.v128.load32_splat(pb));
                  mapLoop(f, [pa], po, cnt, 4, ([x]) => def.vec(f, x, vb));
                },
                () =>
                  f.if(
                    () =>
                      f.i32.and(
                        () => isZero(sa),
                        () => isOne(sb),
                      ),
                    () => {
                      f.local.set(va, () => f.v128.load32_splat(pa));
                      mapLoop(f, [pb], po, cnt, 4, ([y]) => def.vec(f, va, y));
                    },
                    () => {
                      // any other strides: one element at a time
                      f.local.set(sa, () => f.i32.shl(sa, 2));
                      f.local.set(sb, () => f.i32.shl(sb, 2));
                      f.for(j, 0, cnt, 1, () => {
                        f.local.set(sx, () => f.f32.load(pa));
                        f.local.set(sy, () => f.f32.load(pb));
                        f.f32.store(po, () => def.scalar(f, sx, sy));
                        f.local.set(pa, () => f.i32.add(pa, sa));
                        f.local.set(pb, () => f.i32.add(pb, sb));
                        f.local.set(po, () => f.i32.add(po, 4));
                      });
                      f.local.set(sa, () => f.i32.shr_s(sa, 2));
                      f.local.set(sb, () => f.i32.shr_s(sb, 2));
                    },
                  ),
              ),
          );
          f.local.set(out, () => f.i32.add(out, () => f.i32.shl(cnt, 2)));
          f.local.set(count, () => f.i32.sub(count, cnt));
          f.br_if(done, () => f.i32.eqz(count));
          // the next run: the odometer over the outer axes
          f.local.set(col, 0);
          f.local.set(i2, () => f.i32.add(i2, 1));
          f.local.set(ra, () => f.i32.add(ra, P.da2));
          f.local.set(rb, () => f.i32.add(rb, P.db2));
          f.if(
            () => f.i32.eq(i2, s2),
            () => {
              f.local.set(i2, 0);
              f.local.set(ra, () => f.i32.add(ra, P.da1));
              f.local.set(rb, () => f.i32.add(rb, P.db1));
              f.local.set(i1, () => f.i32.add(i1, 1));
              f.if(
                () => f.i32.eq(i1, s1),
                () => {
                  f.local.set(i1, 0);
                  f.local.set(ra, () => f.i32.add(ra, P.da0));
                  f.local.set(rb, () => f.i32.add(rb, P.db0));
                },
              );
            },
          );
          f.br(top);
        });
      });
    },
    { export: true },
  );
}

const module = kernelModule('elementwise', (shared) => {
  const mb = new ModuleBuilder();
  mb.importMemory({ initial: 0, maximum: 65536, shared });
  for (const [op, def] of Object.entries(UNARY_DEFS)) unaryFunction(mb, op as UnaryOp, def);
  for (const [op, def] of Object.entries(BINARY_DEFS)) binaryFunction(mb, op as BinaryOp, def);
  return mb;
});

/** Arrays of fewer elements (byte counts stay below 2^31 for the loops' signed compares). */
export const MAX_ELEMENTS = 2 ** 29;

const isF32 = (xs: TypedArray[]) => xs.every((x) => x instanceof Float32Array && x.length < MAX_ELEMENTS);

// ---- the float32 bounds of clamp and inside

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);

/** The float32 number next to float32 v towards +inf (v finite or -inf). */
function nextUp(v: number): number {
  if (v === 0) return 2 ** -149;
  F[0] = v;
  U[0] += v > 0 ? 1 : -1;
  return F[0];
}

/** The smallest float32 >= v (v itself for NaN and infinities). */
export function f32AtLeast(v: number): number {
  const r = Math.fround(v);
  return r < v ? nextUp(r) : r;
}

/** The largest float32 <= v. */
export function f32AtMost(v: number): number {
  return -f32AtLeast(-v);
}

/** alpha and beta as the function takes them. */
function unaryParams(p: KernelParams['unary']): [number, number] {
  if (p.op === 'inside') return [f32AtLeast(p.alpha), f32AtMost(p.beta)];
  return [p.alpha, p.beta];
}

function unaryRange(heap: WasmHeap, [x]: TypedArray[], [out]: TypedArray[], p: KernelParams['unary'], r0: number, r1: number): void {
  if (r1 <= r0) return;
  const [alpha, beta] = unaryParams(p);
  const fn = module(heap)[`unary_${p.op}`];
  fn(heap.offsetOf(x) + 4 * r0, heap.offsetOf(out) + 4 * r0, r1 - r0, alpha, beta);
}

export const unary: WasmKernel<'unary'> = {
  accepts: (ins, outs, p) => isF32(ins) && isF32(outs) && UNARY_DEFS[p.op] !== undefined,
  run: (heap, ins, outs, p) => unaryRange(heap, ins, outs, p, 0, p.size),
  split: {
    range: (p) => (p.size >= (UNARY_DEFS[p.op]?.heavy ? SPLIT_MIN_HEAVY : SPLIT_MIN_LIGHT) ? { n: p.size, align: 4 } : null),
    part: (heap, ins, outs, p, r0, r1) => unaryRange(heap, ins, outs, p, r0, r1),
  },
};

/**
 * A binary call's shape collapsed: size-1 axes dropped, and axis d merged into d + 1 where both
 * inputs' strides allow (stride[d] = stride[d + 1] * shape[d + 1]; the output is contiguous).
 * Scalars become one axis of size 1.
 */
export interface Collapsed {
  shape: number[];
  aStrides: number[];
  bStrides: number[];
}

export function collapse(shape: readonly number[], aStrides: readonly number[], bStrides: readonly number[]): Collapsed {
  const s: number[] = [],
    sa: number[] = [],
    sb: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const k = s.length - 1;
    // the previous kept axis (outer) merges with this one (inner) when it steps over it exactly
    if (k >= 0 && sa[k] === aStrides[d] * shape[d] && sb[k] === bStrides[d] * shape[d]) {
      s[k] *= shape[d];
      sa[k] = aStrides[d];
      sb[k] = bStrides[d];
    } else {
      s.push(shape[d]);
      sa.push(aStrides[d]);
      sb.push(bStrides[d]);
    }
  }
  if (!s.length) return { shape: [1], aStrides: [0], bStrides: [0] };
  return { shape: s, aStrides: sa, bStrides: sb };
}

/** Whether the collapsed shape fits the odometer (and the sizes fit i32 element offsets). */
function binaryFits(p: KernelParams['binary']): boolean {
  const c = collapse(p.shape, p.aStrides, p.bStrides);
  return c.shape.length <= OUTER + 1;
}

/** The walk's parameters from output element e0 on, for count elements (BINARY_PARAMS after the pointers). */
function binaryArgs(c: Collapsed, e0: number, count: number): number[] {
  // padded to OUTER outer axes of size 1 in front
  const pad = OUTER + 1 - c.shape.length;
  const s = [...Array(pad).fill(1), ...c.shape],
    sa = [...Array(pad).fill(0), ...c.aStrides],
    sb = [...Array(pad).fill(0), ...c.bStrides];
  const L = s[OUTER];
  const col = e0 % L;
  let row = Math.floor(e0 / L);
  const idx = [0, 0, 0];
  for (let d = OUTER - 1; d >= 0; d--) {
    idx[d] = row % s[d];
    row = Math.floor(row / s[d]);
  }
  let ra = 0,
    rb = 0;
  for (let d = 0; d < OUTER; d++) {
    ra += idx[d] * sa[d];
    rb += idx[d] * sb[d];
  }
  return [
    count,
    col,
    L,
    sa[OUTER],
    sb[OUTER],
    s[1],
    s[2],
    idx[1],
    idx[2],
    ra,
    rb,
    sa[2],
    sa[1] - s[2] * sa[2],
    sa[0] - s[1] * sa[1],
    sb[2],
    sb[1] - s[2] * sb[2],
    sb[0] - s[1] * sb[1],
  ];
}

const sizeOf = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

function binaryRange(heap: WasmHeap, [a, b]: TypedArray[], [out]: TypedArray[], p: KernelParams['binary'], r0: number, r1: number): void {
  if (r1 <= r0) return;
  const c = collapse(p.shape, p.aStrides, p.bStrides);
  const fn = module(heap)[`binary_${p.op}`];
  fn(heap.offsetOf(a), heap.offsetOf(b), heap.offsetOf(out) + 4 * r0, ...binaryArgs(c, r0, r1 - r0));
}

export const binary: WasmKernel<'binary'> = {
  accepts: (ins, outs, p) => isF32(ins) && isF32(outs) && BINARY_DEFS[p.op] !== undefined && binaryFits(p),
  run: (heap, ins, outs, p) => binaryRange(heap, ins, outs, p, 0, sizeOf(p.shape)),
  split: {
    range: (p) => {
      const n = sizeOf(p.shape);
      return n >= SPLIT_MIN_LIGHT ? { n, align: 4 } : null;
    },
    part: (heap, ins, outs, p, r0, r1) => binaryRange(heap, ins, outs, p, r0, r1),
  },
};
