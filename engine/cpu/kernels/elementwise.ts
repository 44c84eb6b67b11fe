// Elementwise CPU kernels: fill, unary, binary and where (broadcast through strides), and cast.
import { BINARY, UNARY } from '../../elementwise.ts';
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { stridesOf } from '../../shape.ts';
import { stridedRuns } from '../strided.ts';

export function fill(_ins: TypedArray[], [out]: TypedArray[], p: KernelParams['fill']): void {
  out.fill(p.value, 0, p.size);
}

// The hot unary ops' loops, written out for the same reason as the binary ones below: each loop
// calls its own function from its own call site, which V8 inlines. Same functions, same results.
type UnaryRun = (x: TypedArray, out: TypedArray, n: number, alpha: number, beta: number) => void;
const exp = UNARY.exp.cpu,
  neg = UNARY.neg.cpu,
  silu = UNARY.silu.cpu,
  siluGrad = UNARY.silu_grad.cpu;
const sigmoid = UNARY.sigmoid.cpu,
  softplus = UNARY.softplus.cpu,
  square = UNARY.square.cpu,
  affine = UNARY.affine.cpu;
const sqrt = UNARY.sqrt.cpu,
  rsqrt = UNARY.rsqrt.cpu,
  recip = UNARY.recip.cpu;
const UNARY_RUN: Partial<Record<KernelParams['unary']['op'], UnaryRun>> = {
  exp: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = exp(x[i]);
  },
  neg: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = neg(x[i]);
  },
  silu: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = silu(x[i]);
  },
  silu_grad: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = siluGrad(x[i]);
  },
  sigmoid: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = sigmoid(x[i]);
  },
  softplus: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = softplus(x[i]);
  },
  square: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = square(x[i]);
  },
  sqrt: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = sqrt(x[i]);
  },
  rsqrt: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = rsqrt(x[i]);
  },
  recip: (x, out, n) => {
    for (let i = 0; i < n; i++) out[i] = recip(x[i]);
  },
  affine: (x, out, n, a, b) => {
    for (let i = 0; i < n; i++) out[i] = affine(x[i], a, b);
  },
};

export function unary([x]: TypedArray[], [out]: TypedArray[], p: KernelParams['unary']): void {
  const { alpha, beta } = p;
  const run = UNARY_RUN[p.op];
  if (run) {
    run(x, out, p.size, alpha, beta);
    return;
  }
  const f = UNARY[p.op].cpu;
  for (let i = 0; i < p.size; i++) out[i] = f(x[i], alpha, beta);
}

// The arithmetic ops' same-stride runs, written out: the generic loop calls `f` through one call
// site shared by every op, which V8 cannot inline, and runs several times slower. Same results.
type Run = (a: TypedArray, b: TypedArray, out: TypedArray, ia: number, ib: number, o: number, n: number) => void;
const CONTIGUOUS_RUN: Partial<Record<KernelParams['binary']['op'], Run>> = {
  add: (a, b, out, ia, ib, o, n) => {
    for (let i = 0; i < n; i++) out[o + i] = a[ia + i] + b[ib + i];
  },
  sub: (a, b, out, ia, ib, o, n) => {
    for (let i = 0; i < n; i++) out[o + i] = a[ia + i] - b[ib + i];
  },
  mul: (a, b, out, ia, ib, o, n) => {
    for (let i = 0; i < n; i++) out[o + i] = a[ia + i] * b[ib + i];
  },
  div: (a, b, out, ia, ib, o, n) => {
    for (let i = 0; i < n; i++) out[o + i] = a[ia + i] / b[ib + i];
  },
};

export function binary([a, b]: TypedArray[], [out]: TypedArray[], p: KernelParams['binary']): void {
  const f = BINARY[p.op].cpu;
  const fast = CONTIGUOUS_RUN[p.op];
  const outStrides = stridesOf(p.shape);
  stridedRuns(p.shape, [outStrides, p.aStrides, p.bStrides], ([o, ia, ib], n, [, sa, sb]) => {
    if (sa === 1 && sb === 1 && fast) fast(a, b, out, ia, ib, o, n);
    else if (sa === 1 && sb === 1) for (let i = 0; i < n; i++) out[o + i] = f(a[ia + i], b[ib + i]);
    else if (sa === 1 && sb === 0) {
      const bv = b[ib];
      for (let i = 0; i < n; i++) out[o + i] = f(a[ia + i], bv);
    } else if (sa === 0 && sb === 1) {
      const av = a[ia];
      for (let i = 0; i < n; i++) out[o + i] = f(av, b[ib + i]);
    } else for (let i = 0; i < n; i++) out[o + i] = f(a[ia + i * sa], b[ib + i * sb]);
  });
}

export function where([c, a, b]: TypedArray[], [out]: TypedArray[], p: KernelParams['where']): void {
  const outStrides = stridesOf(p.shape);
  stridedRuns(p.shape, [outStrides, p.cStrides, p.aStrides, p.bStrides], ([o, ic, ia, ib], n, [, sc, sa, sb]) => {
    for (let i = 0; i < n; i++) out[o + i] = c[ic + i * sc] !== 0 ? a[ia + i * sa] : b[ib + i * sb];
  });
}

export function cast([x]: TypedArray[], [out]: TypedArray[], p: KernelParams['cast']): void {
  if (out instanceof Int32Array) for (let i = 0; i < p.size; i++) out[i] = Math.trunc(x[i]);
  else for (let i = 0; i < p.size; i++) out[i] = x[i];
}
