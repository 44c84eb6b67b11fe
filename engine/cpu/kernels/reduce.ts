// Reductions over the middle axis of [outer, len, inner]. Accumulation is in float64 (JS numbers)
// and rounded once on store.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

export function reduce([x]: TypedArray[], [out]: TypedArray[], p: KernelParams['reduce']): void {
  const { outer, len, inner, op } = p;
  const init = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(init);
    const base = o * len * inner;
    for (let k = 0; k < len; k++) {
      const row = base + k * inner;
      if (op === 'sum') for (let i = 0; i < inner; i++) acc[i] += x[row + i];
      else if (op === 'max')
        for (let i = 0; i < inner; i++) {
          const v = x[row + i];
          if (v > acc[i] || Number.isNaN(v)) acc[i] = v;
        }
      else
        for (let i = 0; i < inner; i++) {
          const v = x[row + i];
          if (v < acc[i] || Number.isNaN(v)) acc[i] = v;
        }
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i];
  }
}

export function argmax([x]: TypedArray[], [out]: TypedArray[], p: KernelParams['argmax']): void {
  const { outer, len, inner } = p;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = -Infinity;
      let arg = 0;
      for (let k = 0; k < len; k++) {
        const v = x[(o * len + k) * inner + i];
        if (v > best) {
          best = v;
          arg = k;
        }
      }
      out[o * inner + i] = arg;
    }
  }
}
