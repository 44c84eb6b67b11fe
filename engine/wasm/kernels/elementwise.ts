// The float32 elementwise kernels of engine/cpu/kernels/elementwise.ts in WebAssembly SIMD: unary
// (the ops of engine/elementwise.ts's UNARY table but pow_scalar), binary with broadcasting through
// strides (every BINARY op but pow), and where (float32 or int32 condition). Float32 arrays of fewer
// than 2^29 elements (2 GiB) only; the rest goes to the scalar kernel (accepts false). fill and cast
// stay scalar (TypedArray.fill is native; cast is rare).
//
// Results against the scalar kernels (float64 arithmetic rounded once to float32):
//   bit-identical: neg abs sign square recip sqrt relu step clamp inside affine (affine in float64
//   lanes, a * x + b as the scalar kernel computes it), every binary op (IEEE float32 add, sub, mul,
//   div of float32 numbers are the float64 result rounded; min, max, comparisons exact), where;
//   exp log tanh sigmoid silu silu_grad softplus rsqrt: within the ulps engine/wasm/math.ts states.
// NaN results are NaN (their bits may differ). clamp's bounds are rounded to float32 (min and max
// commute with rounding); inside's bounds are rounded inwards (lo up, hi down), so that a float32 x
// compares with them as with the float64 bounds.
//
// Binary and where: the shape is first collapsed (size-1 axes dropped, neighbouring axes merged
// where every input's strides allow), then walked as runs of its innermost axis, in WebAssembly (an
// odometer over at most three outer axes: more after collapsing, and accepts is false). A run whose
// inputs all have inner stride 1 or 0 (broadcast: a splat), at least one 1, goes four floats at a
// time; any other a scalar loop.
//
// Splits: all three split over ranges of output elements (align 4) when the call is big enough
// for a second thread to pay (2^18 elements; 2^15 for the exp-based unary ops). Each element's
// result is the same whichever range computes it.
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

/**
 * An op over strided inputs (binary, where): vec(xs) on loaded vectors, scalar(xs) on scalars
 * loaded by load(k) (default f32.load), both leaving the result on the stack.
 */
interface StridedDef {
  inputs: number;
  vec: (f: FunctionBuilder, xs: Local[]) => void;
  scalar: (f: FunctionBuilder, xs: Local[]) => void;
  /** the scalar type of input k (default f32) */
  type?: (k: number) => 'f32' | 'i32';
}

const arith = (op: 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min'): StridedDef => ({
  inputs: 2,
  vec: (f, [a, b]) => f.f32x4[op](a, b),
  scalar: (f, [a, b]) => f.f32[op](a, b),
});
const compare = (op: 'gt' | 'ge' | 'lt' | 'le' | 'eq' | 'ne'): StridedDef => ({
  inputs: 2,
  vec: (f, [a, b]) =>
    f.v128.and(
      () => f.f32x4[op](a, b),
      () => f.i32x4.const(ONE_BITS),
    ),
  scalar: (f, [a, b]) => f.f32.convert_i32_u(() => f.f32[op](a, b)),
});

const BINARY_DEFS: Partial<Record<BinaryOp, StridedDef>> = {
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

/** where(cond, a, b) = cond != 0 ? a : b, for a float32 or an int32 cond (NaN != 0; -0 == 0). */
const whereDef = (cond: 'f32' | 'i32'): StridedDef => ({
  inputs: 3,
  vec: (f, [c, a, b]) =>
    f.v128.bitselect(a, b, () =>
      cond === 'f32' ? f.f32x4.ne(c, () => f.f32x4.const(0)) : f.v128.not(() => f.i32x4.eq(c, () => f.i32x4.const(0))),
    ),
  scalar: (f, [c, a, b]) => f.select(a, b, () => (cond === 'f32' ? f.f32.ne(c, 0) : f.i32.ne(c, 0))),
  type: (k) => (k === 0 ? cond : 'f32'),
});

/** Outer axes the odometer walks (after collapsing: at most 4 axes in all). */
const OUTER = 3;

/** The walk's parameters after out: shared, then per input (see stridedArgs). */
const WALK = ['count', 'col', 'L', 's1', 's2', 'i1', 'i2'] as const;
const PER_INPUT = ['p', 's', 'r', 'd2', 'd1', 'd0'] as const;

/** The input kinds of a run that goes four floats at a time: 1 contiguous, 0 broadcast (a splat); not all 0. */
function vectorKinds(inputs: number): number[][] {
  const out: number[][] = [];
  for (let m = (1 << inputs) - 1; m > 0; m--) out.push(Array.from({ length: inputs }, (_, k) => (m >> (inputs - 1 - k)) & 1));
  return out;
}

/**
 * The strided walk from output element e0 on, for `count` elements: runs of the innermost axis
 * (length L, starting at column col), an odometer over three outer axes (sizes s0 (unused), s1,
 * s2; indices i1, i2). Input k: pointer p, inner stride s, the element offset r of the current
 * row's start, and the steps d2, d1, d0 added to r when i2 steps, wraps into i1, wraps into i0.
 */
function stridedFunction(mb: ModuleBuilder, name: string, def: StridedDef): void {
  const n = def.inputs;
  const names = ['out', ...WALK, ...Array.from({ length: n }, (_, k) => PER_INPUT.map((q) => `in${k}_${q}`)).flat()];
  mb.function(
    name,
    names.map(() => 'i32' as const),
    [],
    (f, ...params) => {
      const P = Object.fromEntries(names.map((q, i) => [q, params[i]])) as Record<string, Local>;
      const { out, count, col, L, s1, s2, i1, i2 } = P;
      const inp = Array.from(
        { length: n },
        (_, k) => Object.fromEntries(PER_INPUT.map((q) => [q, P[`in${k}_${q}`]])) as Record<(typeof PER_INPUT)[number], Local>,
      );
      const { cnt, po, j } = i32s(f, 'cnt', 'po', 'j');
      const ptr = inp.map(() => f.local.declare('i32'));
      const splat = inp.map(() => f.local.declare('v128'));
      const sc = inp.map((_, k) => f.local.declare(def.type?.(k) ?? 'f32'));
      const kindIs = (s: Local, kind: number) => (kind ? f.i32.eq(s, 1) : f.i32.eqz(s));
      const allOf = (conds: (() => void)[]) => {
        conds[0]();
        for (let k = 1; k < conds.length; k++) {
          conds[k]();
          f.i32.and();
        }
      };
      const scalarRun = () => {
        for (const q of inp) f.local.set(q.s, () => f.i32.shl(q.s, 2));
        f.for(j, 0, cnt, 1, () => {
          inp.forEach((_, k) => {
            f.local.set(sc[k], () => (sc[k].type === 'i32' ? f.i32.load(ptr[k]) : f.f32.load(ptr[k])));
          });
          f.f32.store(po, () => def.scalar(f, sc));
          inp.forEach((q, k) => {
            f.local.set(ptr[k], () => f.i32.add(ptr[k], q.s));
          });
          f.local.set(po, () => f.i32.add(po, 4));
        });
        for (const q of inp) f.local.set(q.s, () => f.i32.shr_s(q.s, 2));
      };
      // the runs that go four at a time, one branch each; then the scalar loop
      const dispatch = (kinds: number[][]) => {
        if (!kinds.length) {
          scalarRun();
          return;
        }
        const [ks, ...rest] = kinds;
        f.if(
          () => allOf(ks.map((kind, k) => () => kindIs(inp[k].s, kind))),
          () => {
            ks.forEach((kind, k) => {
              if (!kind) f.local.set(splat[k], () => f.v128.load32_splat(ptr[k]));
            });
            const loaded = ks.flatMap((kind, k) => (kind ? [ptr[k]] : []));
            mapLoop(f, loaded, po, cnt, 4, (xs) => {
              let next = 0;
              def.vec(
                f,
                ks.map((kind, k) => (kind ? xs[next++] : splat[k])),
              );
            });
          },
          () => dispatch(rest),
        );
      };
      f.block((done) => {
        f.loop((top) => {
          // this run: min(L - col, count) elements
          f.local.set(j, () => f.i32.sub(L, col));
          f.local.set(cnt, () => imin(f, j, count));
          inp.forEach((q, k) => {
            f.local.set(ptr[k], () => f.i32.add(q.p, () => f.i32.shl(() => f.i32.add(q.r, () => f.i32.mul(col, q.s)), 2)));
          });
          f.local.set(po, out);
          dispatch(vectorKinds(n));
          f.local.set(out, () => f.i32.add(out, () => f.i32.shl(cnt, 2)));
          f.local.set(count, () => f.i32.sub(count, cnt));
          f.br_if(done, () => f.i32.eqz(count));
          // the next run: the odometer over the outer axes
          const step = (d: 'd2' | 'd1' | 'd0') => {
            for (const q of inp) f.local.set(q.r, () => f.i32.add(q.r, q[d]));
          };
          f.local.set(col, 0);
          f.local.set(i2, () => f.i32.add(i2, 1));
          step('d2');
          f.if(
            () => f.i32.eq(i2, s2),
            () => {
              f.local.set(i2, 0);
              step('d1');
              f.local.set(i1, () => f.i32.add(i1, 1));
              f.if(
                () => f.i32.eq(i1, s1),
                () => {
                  f.local.set(i1, 0);
                  step('d0');
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
  for (const [op, def] of Object.entries(BINARY_DEFS)) stridedFunction(mb, `binary_${op}`, def);
  stridedFunction(mb, 'where_f32', whereDef('f32'));
  stridedFunction(mb, 'where_i32', whereDef('i32'));
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
 * A strided call's shape collapsed: size-1 axes dropped, and axis d merged into d + 1 where every
 * input's strides allow (stride[d] = stride[d + 1] * shape[d + 1]; the output is contiguous).
 * Scalars become one axis of size 1.
 */
export interface Collapsed {
  shape: number[];
  /** per input */
  strides: number[][];
}

export function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): Collapsed {
  const s: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const k = s.length - 1;
    // the previous kept axis (outer) merges with this one (inner) when it steps over it exactly
    if (k >= 0 && strides.every((x, i) => st[i][k] === x[d] * shape[d])) {
      s[k] *= shape[d];
      strides.forEach((x, i) => {
        st[i][k] = x[d];
      });
    } else {
      s.push(shape[d]);
      strides.forEach((x, i) => {
        st[i].push(x[d]);
      });
    }
  }
  if (!s.length) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: s, strides: st };
}

/** The walk's parameters (after out) from output element e0 on, for count elements: WALK, then PER_INPUT after each pointer. */
function stridedArgs(c: Collapsed, pointers: number[], e0: number, count: number): number[] {
  // padded to OUTER outer axes of size 1 in front
  const pad = OUTER + 1 - c.shape.length;
  const s = [...Array(pad).fill(1), ...c.shape];
  const st = c.strides.map((x) => [...Array(pad).fill(0), ...x]);
  const L = s[OUTER];
  const col = e0 % L;
  let row = Math.floor(e0 / L);
  const idx = [0, 0, 0];
  for (let d = OUTER - 1; d >= 0; d--) {
    idx[d] = row % s[d];
    row = Math.floor(row / s[d]);
  }
  const args = [count, col, L, s[1], s[2], idx[1], idx[2]];
  st.forEach((x, k) => {
    const r = idx[0] * x[0] + idx[1] * x[1] + idx[2] * x[2];
    args.push(pointers[k], x[OUTER], r, x[2], x[1] - s[2] * x[2], x[0] - s[1] * x[1]);
  });
  return args;
}

const sizeOf = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/** Whether the collapsed shape fits the odometer. */
const fits = (shape: readonly number[], strides: readonly (readonly number[])[]) => collapse(shape, strides).shape.length <= OUTER + 1;

function stridedRange(
  heap: WasmHeap,
  name: string,
  ins: TypedArray[],
  out: TypedArray,
  shape: number[],
  strides: number[][],
  r0: number,
  r1: number,
): void {
  if (r1 <= r0) return;
  const fn = module(heap)[name];
  const pointers = ins.map((x) => heap.offsetOf(x));
  fn(heap.offsetOf(out) + 4 * r0, ...stridedArgs(collapse(shape, strides), pointers, r0, r1 - r0));
}

const splitElements = (n: number) => (n >= SPLIT_MIN_LIGHT ? { n, align: 4 } : null);

export const binary: WasmKernel<'binary'> = {
  accepts: (ins, outs, p) => isF32(ins) && isF32(outs) && BINARY_DEFS[p.op] !== undefined && fits(p.shape, [p.aStrides, p.bStrides]),
  run: (heap, ins, outs, p) => stridedRange(heap, `binary_${p.op}`, ins, outs[0], p.shape, [p.aStrides, p.bStrides], 0, sizeOf(p.shape)),
  split: {
    range: (p) => splitElements(sizeOf(p.shape)),
    part: (heap, ins, outs, p, r0, r1) => stridedRange(heap, `binary_${p.op}`, ins, outs[0], p.shape, [p.aStrides, p.bStrides], r0, r1),
  },
};

const whereName = (cond: TypedArray) => (cond instanceof Int32Array ? 'where_i32' : 'where_f32');
const whereStrides = (p: KernelParams['where']) => [p.cStrides, p.aStrides, p.bStrides];

export const where: WasmKernel<'where'> = {
  accepts: ([cond, a, b], outs, p) =>
    (cond instanceof Int32Array ? cond.length < MAX_ELEMENTS : isF32([cond])) &&
    isF32([a, b]) &&
    isF32(outs) &&
    fits(p.shape, whereStrides(p)),
  run: (heap, ins, outs, p) => stridedRange(heap, whereName(ins[0]), ins, outs[0], p.shape, whereStrides(p), 0, sizeOf(p.shape)),
  split: {
    range: (p) => splitElements(sizeOf(p.shape)),
    part: (heap, ins, outs, p, r0, r1) => stridedRange(heap, whereName(ins[0]), ins, outs[0], p.shape, whereStrides(p), r0, r1),
  },
};
