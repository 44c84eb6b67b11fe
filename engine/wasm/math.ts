// Vectorised float32 math for the WebAssembly kernels: emitters that leave an f32x4 result on the
// stack, written on a FunctionBuilder (engine/wasm/assembler.ts). Plain SIMD128 (no fused
// multiply-add, no relaxed SIMD), so every lane is computed by the same IEEE float32 operations
// in the same order: a result depends only on its input, whatever lane or call computes it.
//
// The functions are those of engine/elementwise.ts (the definitions: the CPU backend computes them
// in float64 and rounds once), with its special cases: inf, NaN, -0, clamps. Range reduction plus a
// polynomial, the coefficients of Cephes' single-precision library (S. L. Moshier, Cephes Math
// Library, expf.c, logf.c, tanhf.c) but for exp's, fitted here in the same form:
//   exp(x)      x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts, Cody-Waite), exp(r) = 1 + r + r^2 P(r)
//               (degree 6), then 2^n applied as two factors 2^(n>>1) 2^(n - n>>1), both built from
//               the bits of the rounding of x log2e, so that results in the subnormal range round
//               once; x < -120 gives 0, x > 89 gives inf. expNormal: one factor, 0 where n <= -126.
//   log(x)      x = m 2^e, m in [sqrt(1/2), sqrt(2)), log(1 + f) = f - f^2/2 + f^3 P(f); subnormal
//               inputs scaled by 2^23 first; log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
//   log1p(y)    for y >= 0: w = 1 + y rounded, log(w) + (y - (w - 1)) / w (the rounding error
//               of 1 + y, exact, corrects the logarithm).
//   tanh(x)     |x| < 0.625: x + x^3 P(x^2); otherwise 1 - 2 / (exp(2|x|) + 1); sign of x.
//   sigmoid, silu, silu_grad from e = exp(-|x|) = p 2^n: for x < 0 the quotient p / (1 + e) is
//               formed first and 2^n applied last, so tiny and subnormal results keep their accuracy;
//               silu_grad's 1 - s is sigmoid(-x), its own quotient.
//   softplus(x) max(x, 0) + log1p(exp(-|x|)), that log1p on [0, 1] without the rounding of 1 + y
//               (1 + y = 2^e (1 + t) with t exact).
//   sqrt is f32x4.sqrt (correctly rounded: the float64 result rounded to float32 is the same
//   number); rsqrt is 1 / sqrt(x) (two roundings).
// Measured error against the float64 definition rounded to float32, every 61st float32 bit pattern
// (about 70 million inputs over both signs, zeros to NaNs) plus edge values, in units in the last
// place of the reference (ulp: the float32 spacing there, 2^-149 for subnormal references):
//   exp 1 (and every float32 in [-87.3, 88.72]), expNormal 1 (x >= -86.98997), log 1, log1p 1
//   (y >= 0), tanh 1 (and every float32 in [1e-30, 9.1]), sigmoid 2, silu 3, softplus 2, rsqrt 1, sqrt 0
//   (exact), silu_grad 3 ulp + 0.52 * 2^-24 absolute: s (1 + x (1 - s)) has a zero at x = -1.2785,
//   where 1 + x (1 - s) cancels and float32's absolute error there is many ulps of the result.
// Zeros, infinities and NaNs come out exactly as the reference's (signs of zero included; NaN
// bits aside), subnormal results within the same ulps. test/engine/wasm/math.test.ts checks these
// bounds on every 257th bit pattern.
import type { FunctionBuilder, Local, Operand } from './assembler.ts';

const LOG2E = Math.LOG2E;
const LN2_HI = 0.693359375; // ln 2 to 9 bits: n * LN2_HI is exact for |n| < 2^15
const LN2_LO = -2.1219444e-4; // ln 2 - LN2_HI
// exp(r) = 1 + r + r^2 P(r) on |r| <= ln2/2: P minimax for the relative error of exp (a linear
// program on 6001 Chebyshev points), its coefficients rounded to float32 one at a time from the
// constant term up, the others refitted each time. Its own error is 0.09 * 2^-24, Cephes' degree-7
// polynomial's 0.02 * 2^-24: float32's evaluation dominates both, and exp's error over every
// float32 in [-87.3, 88.72] is the same for both (at most 1 ulp; not correctly rounded for 0.82% of
// the inputs, against 0.81%), and so are the sampled worst errors of tanh, sigmoid, silu, silu_grad
// and softplus. Two instructions fewer: the scan's forward (its decays exp(dt A)) measured 5% faster.
const EXP_P = [1.3857281301170588e-3, 8.373072370886803e-3, 4.166782274842262e-2, 1.666647344827652e-1, 4.999999403953552e-1];
const EXP_MIN = -120; // below: exp is 0 (exp(-104) < 2^-150 already; x e^x is 0 below -110)
const EXP_MAX = 89; // above: inf (exp(88.73) > FLT_MAX)
const EXP_MIN_NORMAL = -87.5; // expNormal's clamp: round(-87.5 log2e) = -126, its smallest n
const ROUND = 1.5 * 2 ** 23;
const EXPONENT = 0x7f800000; // the float32 exponent field, as an i32 lane
const SQRT_HALF = Math.SQRT1_2;
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
  3.3333331174e-1,
];
const TANH_P = [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1];
const TANH_SMALL = 0.625;
const SIGN = -0x80000000; // the float32 sign bit, as an i32 lane
const SMALLEST_NORMAL = 2 ** -126;

/** The pieces of exp(x) = p * s1 * s2: p = exp(r) in [0.7, 1.42], s1 and s2 powers of two. */
export interface ExpParts {
  p: Local;
  s1: Local;
  s2: Local;
}

/**
 * The emitters of one function. Constants are v128.const at each use: measured, V8 runs the loops
 * no faster with them hoisted into locals.
 */
export class VecMath {
  constructor(readonly f: FunctionBuilder) {}

  /** An f32x4 constant, every lane v. */
  c(v: number): Operand {
    return () => this.f.f32x4.const(v);
  }

  /** An i32x4 constant, every lane v. */
  ci(v: number): Operand {
    return () => this.f.i32x4.const(v);
  }

  /** A new v128 local set to `value`. */
  let(value: Operand): Local {
    const l = this.f.local.declare('v128');
    this.f.local.set(l, value);
    return l;
  }

  /** x itself if it is a local (read as often as needed), else a new local holding it. */
  private own(x: Operand): Local {
    return typeof x === 'object' ? x : this.let(x);
  }

  /** Horner: ((c0 x + c1) x + c2) ... + c_last. */
  private horner(x: Local, cs: readonly number[]): void {
    const f = this.f;
    f.push(this.c(cs[0]), 'v128');
    for (let i = 1; i < cs.length; i++) f.f32x4.mul(x).f32x4.add(this.c(cs[i]));
  }

  /** copysign(mag, sgn) lanewise: mag's magnitude bits with sgn's sign bit. */
  copysign(mag: Operand, sgn: Operand): void {
    this.f.v128.bitselect(sgn, mag, this.ci(SIGN));
  }

  // ---- exp

  /**
   * The shared part of both exps: x clamped to [min, EXP_MAX] (NaN kept: pmin / pmax keep a NaN
   * first operand), t = x log2e + (ROUND + bias) and n = t - (ROUND + bias) = round(x log2e) (ties
   * to even: ROUND + bias is even), r = x - n ln2 (+ lo). The bits of t are those of ROUND + bias
   * plus n (|n| < 2^22), so its low 9 bits are n + bias (mod 2^9).
   */
  private expReduce(x: Local, min: number, bias: number, lo?: Operand): { t: Local; r: Local } {
    const f = this.f;
    const xc = this.let(() => f.f32x4.pmin(() => f.f32x4.pmax(x, this.c(min)), this.c(EXP_MAX)));
    const t = this.let(() => f.f32x4.add(() => f.f32x4.mul(xc, this.c(LOG2E)), this.c(ROUND + bias)));
    const n = this.let(() => f.f32x4.sub(t, this.c(ROUND + bias)));
    // r = x - n ln2: x - n LN2_HI is exact (n LN2_HI has at most 17 significant bits and is within
    // ln2 of x), so r carries the rounding of n LN2_LO only
    const r = this.let(() => {
      f.f32x4.sub(
        () => f.f32x4.sub(xc, () => f.f32x4.mul(n, this.c(LN2_HI))),
        () => f.f32x4.mul(n, this.c(LN2_LO)),
      );
      if (lo !== undefined) f.f32x4.add(lo);
    });
    return { t, r };
  }

  /**
   * k exp(r) = k (1 + r + r^2 P(r)) for k = 1 or 2, on the stack: k = 2 doubles every
   * coefficient, r and the 1 (exactly), so every operation computes twice its k = 1 value, exactly
   * (but where r^2 is subnormal, |r| < 2^-63, and r^2 P(r) vanishes beside r either way): the
   * result is 2 exp(r) as k = 1 computes it.
   */
  private expPoly(r: Local, k: 1 | 2): void {
    const f = this.f;
    this.horner(r, k === 1 ? EXP_P : EXP_P.map((c) => 2 * c));
    f.f32x4.mul(() => f.f32x4.mul(r, r));
    if (k === 1) f.f32x4.add(r);
    else f.f32x4.add(() => f.f32x4.add(r, r));
    f.f32x4.add(this.c(k));
  }

  /**
   * exp(x + lo) as p * s1 * s2, s1 = 2^floor(n/2) and s2 = 2^(n - floor(n/2)). With t biased by
   * 254, its low 9 bits are a = n + 254 (in [81, 382] after the clamp): shifted up by 22, a's top 8
   * bits land on the exponent field, so s1 is (t << 22) masked to that field (floor(a / 2) - 127 =
   * floor(n/2)) and s2 the same of (t << 22) + 2^22 (ceil(a / 2) - 127). Below EXP_MIN, p s1 s2
   * underflows to 0 by itself (x is clamped to -120: about 2^-173).
   */
  private expScaled(x: Operand, lo?: Operand): ExpParts {
    const f = this.f;
    const { t, r } = this.expReduce(this.own(x), EXP_MIN, 254, lo);
    const p = this.let(() => this.expPoly(r, 1));
    const a = this.let(() => f.i32x4.shl(t, 22));
    const s1 = this.let(() => f.v128.and(a, this.ci(EXPONENT)));
    const s2 = this.let(() => f.v128.and(() => f.i32x4.add(a, this.ci(1 << 22)), this.ci(EXPONENT)));
    return { p, s1, s2 };
  }

  /**
   * exp(x + lo) as p * s1 * s2 (lo: an optional small correction of the argument, e.g. the low part
   * of a difference), s2 = 0 where x < EXP_MIN (and NaN): for callers that scale another number
   * than p by s1 s2, which might not underflow.
   */
  expParts(x: Operand, lo?: Operand): ExpParts {
    const f = this.f;
    const u = this.own(x);
    // false for NaN and for x < EXP_MIN (-inf included)
    const keep = this.let(() => f.f32x4.ge(u, this.c(EXP_MIN)));
    const { p, s1, s2 } = this.expScaled(u, lo);
    return { p, s1, s2: this.let(() => f.v128.and(s2, keep)) };
  }

  /** exp(x) (+ lo: see expParts). */
  exp(x: Operand, lo?: Operand): void {
    const { p, s1, s2 } = this.expScaled(x, lo);
    this.f.f32x4.mul(() => this.f.f32x4.mul(p, s1), s2);
  }

  /**
   * exp(x) (+ lo: see expParts) for loops where results below float32's normal range do not
   * matter (the scan's decays exp(dt A)): 0 where n = round(x log2e) is -126 or less (x < -86.98997,
   * exp(x) < 2^-125.5: that is its absolute error), the bits of `exp` elsewhere. The same n and r,
   * the polynomial doubled
   * (exactly: expPoly), and 2^n applied as one factor, 2 exp(r) 2^(n-1), whose exponent field
   * n + 126 is the low 9 bits of t (n in [-126, 128] after the clamp to [EXP_MIN_NORMAL,
   * EXP_MAX]; n = -126 gives the field 0, the factor 0). 24 instructions against exp's 29, and no
   * subnormal results (which x64 computes with slow microcode when they feed a product).
   */
  expNormal(x: Operand, lo?: Operand): void {
    const f = this.f;
    const { t, r } = this.expReduce(this.own(x), EXP_MIN_NORMAL, 126, lo);
    f.f32x4.mul(
      () => this.expPoly(r, 2),
      () => f.i32x4.shl(t, 23),
    );
  }

  // ---- log

  /**
   * log(x) for positive normal x, without the special cases (NaN, zero, negative, subnormal and
   * infinite x give some number: callers fix those).
   */
  private logNormal(x: Local, subnormalShift?: Local): void {
    const f = this.f;
    // e = exponent - 126, m in [0.5, 1)
    const e0 = this.let(() => {
      f.i32x4.sub(() => f.i32x4.shr_u(x, 23), this.ci(126));
      if (subnormalShift) f.i32x4.sub(subnormalShift);
    });
    const m = this.let(() => f.v128.or(() => f.v128.and(x, this.ci(0x007fffff)), this.ci(0x3f000000)));
    const lt = this.let(() => f.f32x4.lt(m, this.c(SQRT_HALF)));
    // m < sqrt(1/2): e - 1 and t = 2m - 1, else t = m - 1 (both exact), t in [-0.29, 0.41]
    const fe = this.let(() => f.f32x4.convert_i32x4_s(() => f.i32x4.add(e0, lt)));
    const t = this.let(() => f.f32x4.sub(() => f.f32x4.add(m, () => f.v128.and(m, lt)), this.c(1)));
    this.logCore(t, fe);
  }

  /** e ln2 + log(1 + t) for t in [sqrt(1/2) - 1, sqrt(2) - 1] and an integer e (as a float). */
  private logCore(t: Local, fe: Local): void {
    const f = this.f;
    const z = this.let(() => f.f32x4.mul(t, t));
    // y = t^3 P(t) + e LN2_LO - t^2 / 2; log = (t + y) + e LN2_HI
    this.horner(t, LOG_P);
    f.f32x4
      .mul(t)
      .f32x4.mul(z)
      .f32x4.add(() => f.f32x4.mul(fe, this.c(LN2_LO)))
      .f32x4.add(() => f.f32x4.mul(z, this.c(-0.5)))
      .f32x4.add(t)
      .f32x4.add(() => f.f32x4.mul(fe, this.c(LN2_HI)));
  }

  /** log(x): log(0) = -inf, log(x < 0) = NaN, log(NaN) = NaN, log(inf) = inf. */
  log(x: Operand): void {
    const f = this.f;
    const u = this.own(x);
    // subnormal inputs (and zero, negatives: fixed below) scaled by 2^23
    const sub = this.let(() => f.f32x4.lt(u, this.c(SMALLEST_NORMAL)));
    const v = this.let(() => f.v128.bitselect(() => f.f32x4.mul(u, this.c(2 ** 23)), u, sub));
    const shift = this.let(() => f.v128.and(sub, this.ci(23)));
    const r = this.let(() => this.logNormal(v, shift));
    // x > 0 finite: r; x = inf: inf; x = +-0: -inf; x < 0 or NaN: NaN
    f.v128.bitselect(
      () => f.v128.bitselect(u, r, () => f.f32x4.eq(u, this.c(Infinity))),
      () => f.v128.bitselect(this.c(-Infinity), this.c(NaN), () => f.f32x4.eq(u, this.c(0))),
      () => f.f32x4.gt(u, this.c(0)),
    );
  }

  /**
   * log(1 + y) for finite y >= 0 (NaN in, NaN out; negative y and inf are not handled). The
   * rounding error of w = 1 + y, y - (w - 1), is exact (w - 1 is exact below 2^24; above, w = y).
   */
  log1p(y: Operand): void {
    const f = this.f;
    const u = this.own(y);
    const w = this.let(() => f.f32x4.add(u, this.c(1)));
    // the rounding error of 1 + y, exactly
    const c = this.let(() => f.f32x4.sub(u, () => f.f32x4.sub(w, this.c(1))));
    this.logNormal(w);
    f.f32x4.add(() => f.f32x4.div(c, w));
    // NaN: the bit tricks of logNormal make a number of NaN's bits; add the NaN back
    f.f32x4.add(() => f.f32x4.sub(u, u));
  }

  /**
   * log(1 + y) for y in [0, 1] (NaN in, NaN out): 1 + y = 2^e (1 + t) with t exact, no rounding
   * of 1 + y to correct: t = y (e = 0) below sqrt(2) - 1, else t = (y - 1) / 2 (e = 1).
   */
  private log1pUnit(y: Local): void {
    const f = this.f;
    const up = this.let(() => f.f32x4.ge(y, this.c(Math.SQRT2 - 1)));
    const t = this.let(() => f.v128.bitselect(() => f.f32x4.mul(() => f.f32x4.sub(y, this.c(1)), this.c(0.5)), y, up));
    const fe = this.let(() => f.v128.and(up, this.c(1)));
    this.logCore(t, fe);
  }

  // ---- tanh

  tanh(x: Operand): void {
    const f = this.f;
    const u = this.own(x);
    const a = this.let(() => f.f32x4.abs(u));
    const z = this.let(() => f.f32x4.mul(a, a));
    // small: a + a z P(z)
    const small = this.let(() => {
      this.horner(z, TANH_P);
      f.f32x4.mul(z).f32x4.mul(a).f32x4.add(a);
    });
    // large: 1 - 2 / (exp(2|x|) + 1) (1 for exp = inf), as Cephes: within 1 ulp for every float32
    // |x| >= 0.625, where (1 - e) / (1 + e), e = exp(-2|x|), is 2 ulp off for a few
    const e = this.let(() => this.exp(() => f.f32x4.add(a, a)));
    const large = () => f.f32x4.sub(this.c(1), () => f.f32x4.div(this.c(2), () => f.f32x4.add(e, this.c(1))));
    this.copysign(() => f.v128.bitselect(small, large, () => f.f32x4.lt(a, this.c(TANH_SMALL))), u);
  }

  // ---- sigmoid and friends

  /**
   * The pieces of sigmoid(x) = q * sc1 * sc2 with e = exp(-|x|): x >= 0: q = 1 / (1 + e), sc = 1;
   * x < 0 (and NaN): q = p / (1 + e), sc1 sc2 = 2^n (e = p 2^n). Also e itself.
   */
  private sigmoidParts(u: Local): { q: Local; sc1: Local; sc2: Local; e: Local; ge0: Local } {
    const f = this.f;
    const { p, s1, s2 } = this.expParts(() => f.v128.or(u, this.ci(SIGN)));
    const e = this.let(() => f.f32x4.mul(() => f.f32x4.mul(p, s1), s2));
    const ge0 = this.let(() => f.f32x4.ge(u, this.c(0)));
    const q = this.let(() =>
      f.f32x4.div(
        () => f.v128.bitselect(this.c(1), p, ge0),
        () => f.f32x4.add(this.c(1), e),
      ),
    );
    const sc1 = this.let(() => f.v128.bitselect(this.c(1), s1, ge0));
    const sc2 = this.let(() => f.v128.bitselect(this.c(1), s2, ge0));
    return { q, sc1, sc2, e, ge0 };
  }

  /** (v * sc1) * sc2 */
  private scale(v: Operand, sc1: Local, sc2: Local): void {
    this.f.f32x4.mul(() => this.f.f32x4.mul(v, sc1), sc2);
  }

  sigmoid(x: Operand): void {
    const { q, sc1, sc2 } = this.sigmoidParts(this.own(x));
    this.scale(q, sc1, sc2);
  }

  /** x * sigmoid(x) */
  silu(x: Operand): void {
    const u = this.own(x);
    const { q, sc1, sc2 } = this.sigmoidParts(u);
    this.scale(() => this.f.f32x4.mul(u, q), sc1, sc2);
  }

  /**
   * d/dx silu(x) = s (1 + x (1 - s)), s = sigmoid(x). 1 - s = sigmoid(-x) is its own quotient
   * (e / (1 + e) for x >= 0, 1 / (1 + e) below), not a difference: near 1, s has lost the bits
   * that x (1 - s) needs.
   */
  siluGrad(x: Operand): void {
    const f = this.f;
    const u = this.own(x);
    const { q, sc1, sc2, e, ge0 } = this.sigmoidParts(u);
    const s1m = () =>
      f.f32x4.div(
        () => f.v128.bitselect(e, this.c(1), ge0),
        () => f.f32x4.add(this.c(1), e),
      );
    const t = () => f.f32x4.add(this.c(1), () => f.f32x4.mul(u, s1m));
    this.scale(() => f.f32x4.mul(q, t), sc1, sc2);
  }

  /** max(x, 0) + log1p(exp(-|x|)) */
  softplus(x: Operand): void {
    const f = this.f;
    const u = this.own(x);
    const e = this.let(() => this.exp(() => f.v128.or(u, this.ci(SIGN))));
    const l = this.let(() => this.log1pUnit(e));
    f.f32x4.add(() => f.f32x4.pmax(u, this.c(0)), l);
  }

  /** 1 / sqrt(x) */
  rsqrt(x: Operand): void {
    this.f.f32x4.div(this.c(1), () => this.f.f32x4.sqrt(x));
  }
}
