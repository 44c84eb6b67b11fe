// exp(x) in float64 without a call into the runtime: V8's Math.exp is an out-of-line C call (about
// as costly as the rest of a scan step together), while this is a few inlineable multiply-adds.
// Tang's table method: x = (64 m + j) ln2/64 + r with |r| <= ln2/128, so
//   exp(x) = 2^m * 2^(j/64) * exp(r),  exp(r) by its Taylor polynomial to r^5 (next term < 4e-17).
// Within about 1 ulp of the exact value, as Math.exp; deterministic, the same on every
// machine. Only for arguments in [-700, 700] (the scan's exp(delta A) has delta A <= 0 and far
// smaller magnitudes); outside that range, or for NaN, it falls back to Math.exp.

const INV_LN2_64 = 92.33248261689366; // 64 / ln 2
const LN2_64_HI = 0.010830417275428772; // ln2/64 to 21 bits: k * HI is exact for |k| < 2^32
const LN2_64_LO = 7.420820373486988e-9; // ln2/64 - HI
const ROUND = 6755399441055744; // 1.5 * 2^52: adding and subtracting it rounds to an integer

const POW2_J64 = new Float64Array(64);
for (let j = 0; j < 64; j++) POW2_J64[j] = 2 ** (j / 64);
/** 2^m for m in [-1100, 1100), offset by 1100 (subnormal and infinite ends included). */
const POW2_M = new Float64Array(2200);
for (let m = 0; m < 2200; m++) POW2_M[m] = 2 ** (m - 1100);

export function exp64(x: number): number {
  if (!(x > -700 && x < 700)) return Math.exp(x);
  const kd = x * INV_LN2_64 + ROUND - ROUND;
  const k = kd | 0;
  const r = x - kd * LN2_64_HI - kd * LN2_64_LO;
  // exp(r) - 1, so that 2^(j/64) exp(r) = t + t q rounds once more than the exact product, not twice
  const q = r * (1 + r * (0.5 + r * (0.16666666666666666 + r * (0.041666666666666664 + r * 0.008333333333333333))));
  const t = POW2_J64[k & 63];
  return POW2_M[(k >> 6) + 1100] * (t + t * q);
}
