// The strided copy that serves permute, slice, expand and concat (every shape op), on the CPU.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { stridedRuns } from '../strided.ts';

export function copy([x]: TypedArray[], [out]: TypedArray[], p: KernelParams['copy']): void {
  stridedRuns(p.shape, [p.outStrides, p.inStrides], ([o, i0], n, [so, si]) => {
    const oo = o + p.outOffset;
    const ii = i0 + p.inOffset;
    // set() pays for a subarray view per run; short runs (e.g. a conv state's last 3 steps) loop
    if (so === 1 && si === 1 && n >= 64) out.set(x.subarray(ii, ii + n), oo);
    else for (let i = 0; i < n; i++) out[oo + i * so] = x[ii + i * si];
  });
}
