// Vectorised float32 elementary functions for the scan kernels (engine/wasm/kernels/scan.ts), as
// code emitters: each call appends the instructions computing f of a v128 operand (4 float32 lanes)
// and leaves the result on the stack. Plain SIMD128, no relaxed SIMD, no table lookups, every
// instruction one that V8 lowers to a single x64 / arm64 instruction (pmin / pmax rather than the
// NaN-propagating min / max, a magic-number rounding rather than nearest + trunc_sat): they sit in
// the scan's innermost loop. Nothing here is specific to the scan; the emitters could move to a
// shared engine/wasm math module later (exp, log1p, softplus, sigmoid, silu, silu_grad).
//
// exp(x): x is clamped to [-87.5, 89], then x = k ln2 + r with k = round(x / ln2) and
// |r| <= ln2/2 (Cody-Waite: ln2 split in two, the high part 9 bits long so k * hi is exact), and
//   exp(x) = 2^(k-1) * p(r),  p(r) ~ 2 e^r a degree-5 (or 6) minimax polynomial,
// 2^(k-1) built from k's bits: adding 1.5 * 2^23 + 126 to x / ln2 rounds it to an integer (to
// nearest, ties to even) that sits in the low mantissa bits, so shifting those bits left by 23
// gives the float32 exponent field of 2^(k-1) directly (k in [-126, 128]: the factor 2 folded
// into p makes k = 128 representable). So:
//   x >= 88.73 (exp overflows float32) gives +inf; x below about -86.99 gives 0 (k = -126, the
//   exponent field 0: the true value is below 1.7e-38, float32's normal range ends at 1.2e-38);
//   NaN gives NaN. In between the relative error measured over a sweep of 2 million points of
//   [-86.9, 88.72] against Math.exp (test/engine/wasm/scan.test.ts) is at most 2.1e-7 with degree 5
//   and 9.9e-8 with degree 6, whose constant term is exactly 2, so that exp(0) = 1 exactly (a
//   state with dt A = 0 is kept as it is). The scan uses degree 6 (codegen.ts: DEFAULT_OPTIONS,
//   about 10% slower than 5 there, measured).
// softplus, sigmoid, silu and silu' built on exp (degree 6) measured within 2.6e-7 over [-80, 80]
// (silu' relative to the size of its terms, as it crosses zero); log1p within 2.3e-7 on [0, 1].
// The polynomials were fitted by a Remez exchange on [-ln2/2, ln2/2] for relative error with the
// coefficients rounded to float32 one at a time from the constant term up, each remaining one refitted.
import type { FunctionBuilder, Local, Operand } from '../../assembler.ts';

/** 2 e^r on [-ln2/2, ln2/2], constant term first: degree 5 (error 1.2e-7 in float64, 1.9e-7 evaluated in float32). */
export const EXP_POLY5 = [2.00000024, 2.00000072, 0.999969602, 0.33329314, 0.0839103684, 0.0170488749];
/** Degree 6 (error 7e-9 in float64, 8.4e-8 evaluated in float32). */
export const EXP_POLY6 = [2.0, 2.00000024, 1.00000024, 0.333322793, 0.0833230391, 0.0167866647, 0.00286153262];
/** log1p(u) = s P(s^2), s = u / (2 + u) in [0, 1/3] for u in [0, 1]: P to degree 4 (error 4.5e-9 in float64). */
export const LOG1P_POLY4 = [2.0, 0.666664183, 0.400214404, 0.280029386, 0.280073673];

const EXP_HI = 89;
const EXP_LO = -87.5;
const LOG2E = Math.LOG2E;
const LN2_HI = 0.693359375; // 355/512
const LN2_LO = -2.1219444e-4; // ln2 - LN2_HI
/** 1.5 * 2^23 + 126: x + MAGIC rounds x to an integer k with the exponent field of 2^(k-1) in its low bits. */
const MAGIC = 12582912 + 126;

/**
 * The v128 constants of one function: each distinct value a local set once at the point of the
 * first use if hoisted (call `hoist` before the loops), else a v128.const at every use.
 */
export class VConsts {
  private readonly locals = new Map<number, Local>();
  constructor(
    private readonly f: FunctionBuilder,
    private readonly hoisted: boolean,
  ) {}

  /** Sets the locals of these values now (outside the loops that use them). */
  hoist(values: readonly number[]): void {
    if (!this.hoisted) return;
    for (const v of values) {
      const key = Math.fround(v);
      if (this.locals.has(key)) continue;
      const l = this.f.local.declare('v128');
      this.f.local.set(l, () => this.f.f32x4.const(key));
      this.locals.set(key, l);
    }
  }

  /** The constant v in all four lanes. */
  get(v: number): Operand {
    const l = this.locals.get(Math.fround(v));
    return l ?? (() => this.f.f32x4.const(v));
  }
}

/** Every constant the exp emitter uses (to hoist). */
export function expConstants(degree: 5 | 6): number[] {
  return [EXP_HI, EXP_LO, LOG2E, MAGIC, LN2_HI, LN2_LO, ...(degree === 5 ? EXP_POLY5 : EXP_POLY6)];
}

/** Every constant of softplus / sigmoid / silu (to hoist), beyond exp's. */
export function activationConstants(): number[] {
  return [0, 1, 2, 1e38, ...LOG1P_POLY4];
}

/** Scratch v128 locals an emitter may overwrite. */
export interface VTemps {
  a: Local;
  b: Local;
  c: Local;
}

export function vtemps(f: FunctionBuilder): VTemps {
  return { a: f.local.declare('v128'), b: f.local.declare('v128'), c: f.local.declare('v128') };
}

/** Horner's rule on the value in local r: ((c_d r + c_{d-1}) r + ...) r + c_0, on the stack. */
function horner(f: FunctionBuilder, k: VConsts, r: Local, coeffs: readonly number[]): void {
  const d = coeffs.length - 1;
  f.f32x4.mul(k.get(coeffs[d]), r);
  for (let i = d - 1; i >= 1; i--) {
    f.f32x4.add(k.get(coeffs[i]));
    f.f32x4.mul(r);
  }
  f.f32x4.add(k.get(coeffs[0]));
}

/** exp(x), on the stack. Overwrites t.a, t.b, t.c (x may be one of them). */
export function emitExp(f: FunctionBuilder, k: VConsts, x: Operand, t: VTemps, degree: 5 | 6 = 5): void {
  const { a: xc, b: kb, c: kf } = t;
  // pmin / pmax keep a NaN x (pmin(a, b) = b < a ? b : a)
  f.local.set(xc, () => f.f32x4.pmax(() => f.f32x4.pmin(x, k.get(EXP_HI)), k.get(EXP_LO)));
  f.local.set(kb, () => f.f32x4.add(() => f.f32x4.mul(xc, k.get(LOG2E)), k.get(MAGIC)));
  f.local.set(kf, () => f.f32x4.sub(kb, k.get(MAGIC)));
  // r = (x - k hi) - k lo, into xc
  f.local.set(xc, () =>
    f.f32x4.sub(
      () => f.f32x4.sub(xc, () => f.f32x4.mul(kf, k.get(LN2_HI))),
      () => f.f32x4.mul(kf, k.get(LN2_LO)),
    ),
  );
  horner(f, k, xc, degree === 5 ? EXP_POLY5 : EXP_POLY6);
  f.f32x4.mul(() => f.i32x4.shl(kb, 23));
}

/** log1p(u) for u in [0, 1] (relative error a few ulp), on the stack. Overwrites t.a, t.b. */
export function emitLog1p(f: FunctionBuilder, k: VConsts, u: Operand, t: VTemps): void {
  const { a: s, b: z } = t;
  f.local.set(s, () => f.f32x4.div(u, () => f.f32x4.add(u, k.get(2))));
  f.local.set(z, () => f.f32x4.mul(s, s));
  horner(f, k, z, LOG1P_POLY4);
  f.f32x4.mul(s);
}

/**
 * softplus(x) = max(x, 0) + log1p(exp(-|x|)) (no overflow, no loss for very negative x), on the
 * stack. x must be a local other than t's; overwrites t.
 */
export function emitSoftplus(f: FunctionBuilder, k: VConsts, x: Local, t: VTemps, degree: 5 | 6 = 5): void {
  emitExp(f, k, () => f.f32x4.neg(() => f.f32x4.abs(x)), t, degree);
  f.local.set(t.c);
  f.f32x4.pmax(x, k.get(0));
  emitLog1p(f, k, t.c, t);
  f.f32x4.add();
}

/** sigmoid(x) = 1 / (1 + exp(-x)), on the stack. x must be a local other than t's; overwrites t. */
export function emitSigmoid(f: FunctionBuilder, k: VConsts, x: Local, t: VTemps, degree: 5 | 6 = 5): void {
  f.f32x4.div(k.get(1), () => {
    f.f32x4.add(k.get(1), () => emitExp(f, k, () => f.f32x4.neg(x), t, degree));
  });
}

/** silu(x) = x / (1 + exp(-x)), on the stack. x must be a local other than t's; overwrites t. */
export function emitSilu(f: FunctionBuilder, k: VConsts, x: Local, t: VTemps, degree: 5 | 6 = 5): void {
  f.f32x4.div(x, () => {
    f.f32x4.add(k.get(1), () => emitExp(f, k, () => f.f32x4.neg(x), t, degree));
  });
}

/**
 * silu'(x) = s (1 + x (1 - s)), s = sigmoid(x), on the stack, with 1 - s = e s (e = exp(-x)), not
 * the difference, which loses the relative precision of 1 - s for large x (an error of x u). e is
 * capped at 1e38 so that e s stays 1, not inf * 0, where exp(-x) overflows. x must be a local other
 * than t's; overwrites t.
 */
export function emitSiluGrad(f: FunctionBuilder, k: VConsts, x: Local, t: VTemps, degree: 5 | 6 = 5): void {
  emitExp(f, k, () => f.f32x4.neg(x), t, degree);
  f.local.set(t.c, () => f.f32x4.pmin(() => {}, k.get(1e38)));
  f.local.set(t.a, () => f.f32x4.div(k.get(1), () => f.f32x4.add(k.get(1), t.c)));
  f.f32x4.mul(t.a, () => f.f32x4.add(k.get(1), () => f.f32x4.mul(x, () => f.f32x4.mul(t.c, t.a))));
}
