// The hidden attention of a selective scan on the CPU (maths in engine/ops/influence.ts), exact in
// float64 whatever the buffers' dtype: per (batch, channel), the decays exp(delta_t A[e,n]) are
// tabulated once (T x N), then for each source position s the impulse response of the scan is run
// forward, h = delta_s B_s at t = s and h *= exp(delta_t A) after, alpha[t, s] = C_t . h. The
// products are running products (no prefix sums of delta are differenced).
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

export function influence([delta, A, B, C]: TypedArray[], [norm, alpha]: TypedArray[], p: KernelParams['influence']): void {
  const { batch, T, E, N } = p;
  const decay = new Float64Array(T * N);
  const h = new Float64Array(N);
  const acc = new Float64Array(T * T);
  const abs = p.norm === 'mean_abs';
  for (let b = 0; b < batch; b++) {
    acc.fill(0);
    for (let e = 0; e < E; e++) {
      for (let t = 0; t < T; t++) {
        const dt = delta[(b * T + t) * E + e];
        for (let n = 0; n < N; n++) decay[t * N + n] = Math.exp(dt * A[e * N + n]);
      }
      const aOff = (b * E + e) * T * T;
      for (let s = 0; s < T; s++) {
        const ds = delta[(b * T + s) * E + e];
        const bs = (b * T + s) * N;
        for (let n = 0; n < N; n++) h[n] = ds * B[bs + n];
        for (let t = s; t < T; t++) {
          const ct = (b * T + t) * N;
          let a = 0;
          if (t > s) for (let n = 0; n < N; n++) h[n] *= decay[t * N + n];
          for (let n = 0; n < N; n++) a += C[ct + n] * h[n];
          if (alpha) alpha[aOff + t * T + s] = a;
          acc[t * T + s] += abs ? Math.abs(a) : a * a;
        }
        if (alpha) for (let t = 0; t < s; t++) alpha[aOff + t * T + s] = 0;
      }
    }
    const nOff = b * T * T;
    for (let t = 0; t < T; t++)
      for (let s = 0; s < T; s++) {
        const v = acc[t * T + s];
        norm[nOff + t * T + s] = s > t ? 0 : abs ? v / E : Math.sqrt(v);
      }
  }
}
