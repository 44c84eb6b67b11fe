// The one table of elementwise functions. Each entry gives the CPU implementation and the WGSL
// expression of the same function, so the two backends cannot drift apart. Gradient rules live
// with the ops (engine/ops), composed from these same primitives.
//
// Unary entries see `x` and two scalar parameters `alpha`, `beta` (used by clamp, affine, powScalar).
// WGSL expressions may call the helpers in WGSL_ELEMENTWISE_PRELUDE.

export interface UnaryDef {
  cpu: (x: number, alpha: number, beta: number) => number;
  wgsl: string;
}
export interface BinaryDef {
  cpu: (a: number, b: number) => number;
  wgsl: string;
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
// softplus(x) = max(x, 0) + log1p(exp(-|x|)): no overflow for large |x|, no loss for very negative x.
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

export const UNARY = {
  neg: { cpu: (x) => -x, wgsl: '-x' },
  exp: { cpu: Math.exp, wgsl: 'exp(x)' },
  log: { cpu: Math.log, wgsl: 'log(x)' },
  sqrt: { cpu: Math.sqrt, wgsl: 'sqrt(x)' },
  rsqrt: { cpu: (x) => 1 / Math.sqrt(x), wgsl: 'inverseSqrt(x)' },
  abs: { cpu: Math.abs, wgsl: 'abs(x)' },
  sign: { cpu: Math.sign, wgsl: 'sign(x)' },
  square: { cpu: (x) => x * x, wgsl: 'x * x' },
  recip: { cpu: (x) => 1 / x, wgsl: '1.0 / x' },
  relu: { cpu: (x) => (x > 0 ? x : 0), wgsl: 'max(x, 0.0)' },
  step: { cpu: (x) => (x > 0 ? 1 : 0), wgsl: 'select(0.0, 1.0, x > 0.0)' },
  sigmoid: { cpu: sigmoid, wgsl: 'mi_sigmoid(x)' },
  silu: { cpu: (x) => x * sigmoid(x), wgsl: 'x * mi_sigmoid(x)' },
  // d/dx silu(x) = s (1 + x (1 - s)), s = sigmoid(x)
  silu_grad: {
    cpu: (x) => {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    },
    wgsl: 'mi_silu_grad(x)',
  },
  tanh: { cpu: Math.tanh, wgsl: 'mi_tanh(x)' },
  softplus: { cpu: softplus, wgsl: 'mi_softplus(x)' },
  clamp: { cpu: (x, lo, hi) => Math.min(Math.max(x, lo), hi), wgsl: 'clamp(x, alpha, beta)' },
  // 1 inside [lo, hi], 0 outside: the gradient mask of clamp
  inside: { cpu: (x, lo, hi) => (x >= lo && x <= hi ? 1 : 0), wgsl: 'select(0.0, 1.0, x >= alpha && x <= beta)' },
  affine: { cpu: (x, a, b) => a * x + b, wgsl: 'alpha * x + beta' },
  pow_scalar: { cpu: (x, p) => x ** p, wgsl: 'mi_pow(x, alpha)' },
} satisfies Record<string, UnaryDef>;

export const BINARY = {
  add: { cpu: (a, b) => a + b, wgsl: 'a + b' },
  sub: { cpu: (a, b) => a - b, wgsl: 'a - b' },
  mul: { cpu: (a, b) => a * b, wgsl: 'a * b' },
  div: { cpu: (a, b) => a / b, wgsl: 'a / b' },
  pow: { cpu: Math.pow, wgsl: 'mi_pow(a, b)' },
  maximum: { cpu: Math.max, wgsl: 'max(a, b)' },
  minimum: { cpu: Math.min, wgsl: 'min(a, b)' },
  gt: { cpu: (a, b) => (a > b ? 1 : 0), wgsl: 'mi_b2f(a > b)' },
  ge: { cpu: (a, b) => (a >= b ? 1 : 0), wgsl: 'mi_b2f(a >= b)' },
  lt: { cpu: (a, b) => (a < b ? 1 : 0), wgsl: 'mi_b2f(a < b)' },
  le: { cpu: (a, b) => (a <= b ? 1 : 0), wgsl: 'mi_b2f(a <= b)' },
  eq: { cpu: (a, b) => (a === b ? 1 : 0), wgsl: 'mi_b2f(a == b)' },
  ne: { cpu: (a, b) => (a !== b ? 1 : 0), wgsl: 'mi_b2f(a != b)' },
} satisfies Record<string, BinaryDef>;

export type UnaryOp = keyof typeof UNARY;
export type BinaryOp = keyof typeof BINARY;

/** WGSL helper functions the expressions above call (float32). */
export const WGSL_ELEMENTWISE_PRELUDE = /* wgsl */ `
fn mi_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn mi_silu_grad(x: f32) -> f32 {
  let s = mi_sigmoid(x);
  return s * (1.0 + x * (1.0 - s));
}
fn mi_tanh(x: f32) -> f32 {
  // tanh through exp of a non-positive argument: no overflow
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}
fn mi_log1p(e: f32) -> f32 {
  // log(1 + e) for e >= 0, accurate when e is tiny (where 1 + e rounds to 1)
  if (e < 1e-4) { return e * (1.0 - e * (0.5 - e / 3.0)); }
  return log(1.0 + e);
}
fn mi_softplus(x: f32) -> f32 {
  return max(x, 0.0) + mi_log1p(exp(-abs(x)));
}
fn mi_pow(a: f32, b: f32) -> f32 {
  // pow with the sign rules of Math.pow for integral exponents of negative bases
  if (b == 0.0) { return 1.0; }
  if (a >= 0.0) { return pow(a, b); }
  // NaN through a runtime value: a constant NaN bitcast is a WGSL compile error
  var nan_bits = 0x7fc00000u;
  if (fract(b) != 0.0) { return bitcast<f32>(nan_bits); }
  let m = pow(-a, b);
  if (fract(b * 0.5) != 0.0) { return -m; }
  return m;
}
fn mi_b2f(c: bool) -> f32 { return select(0.0, 1.0, c); }
`;
